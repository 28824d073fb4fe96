"""Signed unsubscribe tokens: the subscriber's id and an HMAC-SHA256 over it.

A token is ``<id in base 36>.<signature>``; the signature is the first 128 bits of
HMAC-SHA256(key, "unsubscribe:v1:<id>"), base64url without padding. Anything altered,
truncated or signed with another key fails to verify, and the check takes the same time
whatever is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from digest.config import Settings
from digest.errors import ConfigError

SIGNATURE_BYTES = 16
MIN_KEY_LENGTH = 16


def signing_key(settings: Settings) -> bytes:
    env = settings.unsubscribe.signing_key_env
    value = os.environ.get(env, "")
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"environment variable {env} must hold the unsubscribe signing key (at least "
            f"{MIN_KEY_LENGTH} characters), e.g. export {env}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value.encode()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if number == 0:
            return out


def _signature(key: bytes, subscriber_id: int) -> str:
    mac = hmac.new(key, f"unsubscribe:v1:{subscriber_id}".encode(), hashlib.sha256).digest()[
        :SIGNATURE_BYTES
    ]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, subscriber_id: int) -> str:
    return f"{_base36(subscriber_id)}.{_signature(key, subscriber_id)}"


def read_token(key: bytes, token: str) -> int | None:
    """The subscriber id a token was made for, or None if it is not genuine."""
    ident, dot, signature = token.partition(".")
    if not dot or not ident or len(ident) > 13 or not ident.isalnum() or not ident.isascii():
        return None
    try:
        subscriber_id = int(ident, 36)
    except ValueError:
        return None
    if not hmac.compare_digest(_signature(key, subscriber_id).encode(), signature.encode()):
        return None
    return subscriber_id
