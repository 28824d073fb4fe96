"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second choice), never
the password itself in a file, a log or an error."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from digest.errors import DigestError

MIN_LENGTH = 12


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise DigestError(f"the password is too short: use at least {MIN_LENGTH} characters")
    return _hasher().hash(password)


@functools.cache
def _stand_in() -> str:
    """A hash to check against when the address is unknown, so that an unknown address
    takes as long to refuse as a wrong password."""
    return _hasher().hash("no such user, no such password")


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _stand_in(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False
