"""Email addresses as the list keeps them: one spelling for one mailbox, wherever an
address comes from (an import, a signup form, the command line, a provider's event).

The domain is IDNA-decoded to Unicode (``xn--bcher-kva.example`` is ``bücher.example``),
the local part NFC-normalised (a decomposed ``josé`` is the composed one) and the whole
lower-cased, as email-validator normalises it (syntax only, no DNS).
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

# A plain ASCII local part (dot-atom): email-validator keeps such a part as it is, so it
# needs no more than this check; its domain is what costs, and domains repeat.
_PLAIN_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z"
)


@functools.lru_cache(maxsize=8192)
def _domain(domain: str) -> str:
    return str(validate_email("a@" + domain, check_deliverability=False).normalized).split("@")[1]


def normalise_email(address: str) -> str:
    """The address as stored: syntax-checked, normalised, lower-case (as email-validator
    has it, without DNS). Plain addresses take a fast path that agrees with it (tested);
    anything else, and every refusal, goes through email-validator itself."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and len(address) <= 254 and _PLAIN_LOCAL.match(local):
        try:
            return f"{local}@{_domain(domain)}".lower()
        except EmailNotValidError:
            pass  # the full check gives the reason
    result = validate_email(address, check_deliverability=False)
    return str(result.normalized).lower()


def event_address(value: str) -> str:
    """An address a provider reports, spelled as the list keeps it; an address that does
    not validate is kept lower-cased as given (recorded, matching nobody)."""
    try:
        return normalise_email(value)
    except EmailNotValidError:
        return value.strip().lower()


def checked_address(value: str) -> str:
    """``value`` normalised, or a one-line DigestError naming it and why it is no address."""
    from digest.errors import DigestError

    try:
        return normalise_email(value.strip())
    except EmailNotValidError as err:
        raise DigestError(f"{value}: not an email address ({err})") from None
