"""config.yaml's ``desk:`` section: where the editors' desk answers and how long a
sign-in lasts."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Desk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the desk's own address: its cookie is Secure when this is https, and a form posted
    # from any other origin is refused
    url: str = "http://127.0.0.1:8027"
    session_hours: float = Field(12, gt=0, le=24 * 30)
    # sign-in failures per account (and per client address) before each further try
    # waits, twice as long each time
    free_attempts: int = Field(5, ge=1, le=100)
    # the two-person rule: a schedule asked for by one editor waits until a different
    # editor or an admin approves it; until then it is not scheduled at all
    require_approval: bool = False

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the desk's http(s) address, e.g. https://desk.example.org")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be an origin only (scheme, host and port), no path")
        return value.rstrip("/")

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
