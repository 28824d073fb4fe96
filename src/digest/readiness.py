"""Is this configuration ready to mail real readers?

The defaults are placeholders (a From at example.org, "1 Example Street", a local
``web.base_url``) so that digest runs on a fresh machine. Mail to subscribers through a
provider that reaches people must not carry them: an example domain cannot send or
receive mail, CAN-SPAM wants a real postal address, and Gmail and Yahoo want one-click
unsubscribe over https on the standard port. Each such setting is an error for a real
send and a warning (saying what to change) everywhere else.

A send reaches people unless it goes to the outbox, runs in the provider's test mode,
or goes to a test server on this machine: an HTTP provider whose ``base_url`` is a
loopback address, or SMTP to a loopback host on a port other than 25, 465 and 587
(those are a local mail relay's, which passes mail on).
"""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digest.config import Settings
from digest.errors import ConfigError
from digest.newsletters import Newsletter

if TYPE_CHECKING:  # checks loads lxml and Jinja2, which delivery never needs
    from digest.checks import Finding

EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net", "example.edu")
EXAMPLE_SUFFIXES = (".example", ".test", ".invalid", ".localhost")  # RFC 2606, RFC 6761
RELAY_PORTS = frozenset({25, 465, 587})
PLACEHOLDER_POSTAL = Newsletter().postal_address


def is_loopback(host: str | None) -> bool:
    name = (host or "").strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def reaches_people(settings: Settings) -> bool:
    """Whether mail sent with these settings can land in someone's inbox."""
    provider = settings.provider
    if provider.name == "outbox" or provider.test_mode:
        return False
    if provider.name == "smtp":
        smtp = provider.smtp
        return not (is_loopback(smtp.host) and smtp.port not in RELAY_PORTS)
    return not (provider.base_url and is_loopback(urlsplit(provider.base_url).hostname))


def _example_domain(address: str) -> bool:
    domain = address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")
    return (
        domain in EXAMPLE_DOMAINS
        or any(domain.endswith("." + d) for d in EXAMPLE_DOMAINS)
        or domain.endswith(EXAMPLE_SUFFIXES)
    )


def _address_problems(settings: Settings) -> list[str]:
    newsletter = settings.newsletter
    found = []
    addresses = [
        ("newsletter.from", newsletter.sender),
        ("newsletter.reply_to", newsletter.reply_to),
        ("unsubscribe.mailto", settings.unsubscribe.mailto),
    ]
    for key, value in addresses:
        address = parseaddr(value)[1] if value else ""
        if address and _example_domain(address):
            found.append(
                f"{key} ({address}) is at an example domain, where no mail is sent or "
                f"received: set {key} in config.yaml to an address on your own domain"
            )
    postal = newsletter.postal_address.strip()
    if not postal or postal == PLACEHOLDER_POSTAL or "example" in postal.lower():
        found.append(
            "newsletter.postal_address is the sample one: anti-spam law (CAN-SPAM) wants "
            "your organisation's real postal address in every footer; set it in config.yaml"
        )
    return found


def _url_problem(key: str, url: str) -> str | None:
    parts = urlsplit(url)
    if is_loopback(parts.hostname):
        return (
            f"{key} ({url}) is on this machine, so readers' unsubscribe and archive links "
            "would lead nowhere: set web.base_url in config.yaml to the public https:// "
            "address `digest serve` answers at"
        )
    if parts.scheme != "https":
        return (
            f"{key} ({url}) must be https://: Gmail and Yahoo require one-click unsubscribe "
            "over https"
        )
    if parts.port not in (None, 443):
        return (
            f"{key} ({url}) uses port {parts.port}: one-click unsubscribe must be reachable "
            "on https's standard port (443); put `digest serve` behind a proxy there"
        )
    return None


def placeholder_problems(settings: Settings) -> list[str]:
    """What to change in config.yaml before mail goes to real readers, one line each."""
    found = _address_problems(settings)
    for key, url in (
        ("web.base_url", settings.web.base_url),
        ("unsubscribe.url", settings.unsubscribe.url),
    ):
        problem = _url_problem(key, url) if url else None
        if problem:
            found.append(problem)
    return found


def send_readiness(settings: Settings, *, for_subscribers: bool = True) -> list[Finding]:
    """The placeholder problems: errors for mail to subscribers that reaches people,
    else warnings about what a real send will need."""
    from digest.checks import Finding

    level = "error" if for_subscribers and reaches_people(settings) else "warning"
    return [Finding(level, problem) for problem in placeholder_problems(settings)]


class NotReady(ConfigError):
    """Mail to subscribers would carry placeholder settings."""

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        super().__init__(
            f"not mailing subscribers with placeholder settings: {problems[0]}{more}",
            details=[f"error: {p}" for p in problems],
        )


def require_ready(settings: Settings) -> None:
    """Raise NotReady when mail to subscribers would reach people with placeholders."""
    if reaches_people(settings):
        problems = placeholder_problems(settings)
        if problems:
            raise NotReady(problems)
