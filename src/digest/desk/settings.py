"""config.yaml's ``desk:`` section: where the editors' desk answers and how long a
sign-in lasts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Desk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the desk's own address: its cookie is Secure when this is https, and a form posted
    # from any other origin is refused
    url: str = "http://127.0.0.1:8027"
    # a path to put the desk under, e.g. /desk: then `digest serve` answers it there too
    # (set url to the public app's origin), and `digest desk` under the same path
    path: str = ""
    session_hours: float = Field(12, gt=0, le=24 * 30)
    # sign-in failures per account (and per client address) before each further try
    # waits, twice as long each time
    free_attempts: int = Field(5, ge=1, le=100)
    # the two-person rule: a schedule asked for by one editor waits until a different
    # editor or an admin approves it; until then it is not scheduled at all
    require_approval: bool = False
    # single sign-on: the header a signing-in proxy sets to the user's email address,
    # believed only from the proxies listed in sso_proxies (addresses or networks); the
    # user must exist (digest users add) and not be disabled. None: sign in with passwords
    sso_header: str | None = None
    sso_proxies: str = "127.0.0.1"

    @field_validator("sso_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
            raise ValueError("must be a header name, e.g. X-Forwarded-Email")
        return value

    @field_validator("sso_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise ValueError("name the proxy's address, e.g. 127.0.0.1")
        for part in parts:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an address or network") from None
        return ", ".join(parts)

    def from_sso_proxy(self, host: str | None) -> bool:
        import ipaddress

        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(p.strip(), strict=False)
            for p in self.sso_proxies.split(",")
        )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the desk's http(s) address, e.g. https://desk.example.org")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be an origin only (scheme, host and port), no path")
        return value.rstrip("/")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        text = value.strip().rstrip("/")
        if text and (not text.startswith("/") or any(c in text for c in "?#%\\ ") or ".." in text):
            raise ValueError("must be a plain path such as /desk (or empty)")
        return text

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)
