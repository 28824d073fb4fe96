"""Signed tokens: unsubscribe links and signup confirmation links.

A token is ``<uid>.<signature>``: the subscriber's random identifier (never reused, not
even after they are forgotten) and the first 128 bits of
HMAC-SHA256(key, "unsubscribe:v2:<list identity>:<uid>"), base64url without padding.
The list identity is random per database, so the same key never gives the same token in
two lists. Anything altered, truncated or signed with another key fails to verify, and
the check takes the same time whatever is wrong.

Keys rotate: the environment variable may hold several keys separated by spaces or
commas; the first signs, any of them verifies. Put a new key first and keep the old one
until the mail that carries its links is old enough to be forgotten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Sequence

from digest.config import Settings
from digest.errors import ConfigError

SIGNATURE_BYTES = 16
MIN_KEY_LENGTH = 16
TEST_TOKEN = "test-send"  # the token in a staff test send: it names nobody
_TOKEN = re.compile(r"^([A-Za-z0-9_-]{8,40})\.([A-Za-z0-9_-]{22})$")


def signing_keys(settings: Settings) -> tuple[bytes, ...]:
    """The signing keys, newest first, from the environment variable config names."""
    env = settings.unsubscribe.signing_key_env
    keys = tuple(k for k in re.split(r"[\s,]+", os.environ.get(env, "")) if k)
    if not keys or any(len(k) < MIN_KEY_LENGTH for k in keys):
        raise ConfigError(
            f"environment variable {env} must hold the unsubscribe signing key (at least "
            f"{MIN_KEY_LENGTH} characters; several keys separated by spaces while rotating), "
            f"e.g. export {env}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return tuple(k.encode() for k in keys)


def key_id(key: bytes) -> str:
    """A short name for a signing key that reveals nothing of it: which key signed the
    links of the mail last sent, so a server started with another can say so."""
    return hmac.new(key, b"digest:signing-key-id", hashlib.sha256).hexdigest()[:12]


def key_warning(keys: Sequence[bytes], recorded: str | None, env: str) -> str | None:
    """A warning when none of ``keys`` is the one that signed the links last mailed."""
    if recorded is None or recorded in {key_id(k) for k in keys}:
        return None
    return (
        f"the key in {env} did not sign the links in the last issue scheduled or sent, so "
        "every unsubscribe link already mailed will be refused (400); put that key back, "
        f"after the new one while rotating: {env}='NEW OLD'"
    )


def _signature(key: bytes, list_id: str, uid: str) -> str:
    message = f"unsubscribe:v2:{list_id}:{uid}".encode()
    mac = hmac.digest(key, message, "sha256")[:SIGNATURE_BYTES]  # one C call per token
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, list_id: str, uid: str) -> str:
    return f"{uid}.{_signature(key, list_id, uid)}"


def read_token(keys: Sequence[bytes], list_id: str, token: str) -> str | None:
    """The uid a token was made for in this list, or None if it is not genuine."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    uid, signature = match.groups()
    genuine = False
    for key in keys:  # every key is tried, so the time taken says nothing
        genuine |= hmac.compare_digest(_signature(key, list_id, uid).encode(), signature.encode())
    return uid if genuine else None


# --- confirmation tokens (double opt-in) -----------------------------------------------
#
# ``<uid>.<expiry>.<signature>``: the signup's random identifier, the Unix time the link
# stops working (base 36), and the first 128 bits of
# HMAC-SHA256(key, "confirm:v1:<list identity>:<uid>:<expiry>"). Signed with the same keys
# as unsubscribe tokens, under another purpose, so neither can stand in for the other.

_CONFIRM = re.compile(r"^([A-Za-z0-9_-]{8,40})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})$")
VALID, EXPIRED, INVALID = "valid", "expired", "invalid"


def _confirm_signature(key: bytes, list_id: str, uid: str, expiry: str) -> str:
    message = f"confirm:v1:{list_id}:{uid}:{expiry}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def make_confirm_token(key: bytes, list_id: str, uid: str, expires_at: float) -> str:
    expiry = _base36(int(expires_at))
    return f"{uid}.{expiry}.{_confirm_signature(key, list_id, uid, expiry)}"


def read_confirm_token(
    keys: Sequence[bytes], list_id: str, token: str, now: float
) -> tuple[str, str | None]:
    """(VALID, uid), (EXPIRED, None) for a genuine token past its time, or (INVALID, None)."""
    match = _CONFIRM.match(token)
    if match is None:
        return INVALID, None
    uid, expiry, signature = match.groups()
    genuine = False
    for key in keys:
        expected = _confirm_signature(key, list_id, uid, expiry)
        genuine |= hmac.compare_digest(expected.encode(), signature.encode())
    if not genuine:
        return INVALID, None
    if int(expiry, 36) <= now:
        return EXPIRED, None
    return VALID, uid
