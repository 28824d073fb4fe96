"""config.yaml -> validated, frozen settings.

Every setting has an embedded default, so digest runs with no config file at all.
A file that exists is validated strictly: an unknown key, a wrong type or a bad value
is reported as ``config.yaml:LINE: key.path: reason``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from digest.api.settings import Api
from digest.brand import Brand
from digest.desk.settings import Desk
from digest.errors import ConfigError
from digest.fields import Audience
from digest.headerchars import has_line_break
from digest.newsletters import Newsletter, NewsletterOverride, merged, newsletter_key
from digest.storeconfig import DEFAULT_DATABASE, read_config
from digest.yamlio import validate


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_local_url(url: str) -> bool:
    """An http:// address on this machine: fine to try things, useless in mail to people."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in {"127.0.0.1", "localhost", "::1"}


def _public_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if not (parts.scheme == "https" or is_local_url(value)) or not parts.hostname:
        raise ValueError(f"must be an https:// URL{what} (http:// only for 127.0.0.1 or localhost)")
    return value


def proxy_list(value: str) -> str:
    """Comma-separated IP addresses or networks (or * for any, behind a proxy that strips
    the headers clients send), checked; the same list, tidied."""
    import ipaddress

    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("name at least one proxy address or network, e.g. 127.0.0.1")
    for part in parts:
        if part == "*":
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(
                f"{part!r} is not an IP address or network (e.g. 10.0.0.5 or 172.16.0.0/12)"
            ) from None
    return ",".join(parts)


class Web(_Section):
    """The public app `digest serve` runs: where readers reach it, signup and archive."""

    # every public link is made from this: unsubscribe, confirm, archive, webhooks
    base_url: str = "http://127.0.0.1:8026"
    # when an issue's web version appears: once its first message is sent, or as soon
    # as it is scheduled
    publish: Literal["sent", "scheduled"] = "sent"
    confirm_days: float = Field(7, gt=0, le=90)  # a confirmation link expires after this
    signups_per_ip_per_hour: int = Field(10, ge=1)
    latest_issues: int = Field(5, ge=0, le=100)  # listed on the home page
    # addresses or networks of the reverse proxies whose X-Forwarded-For/-Proto count
    # (with `digest serve --proxy-headers`); comma-separated
    trusted_proxies: str = "127.0.0.1"
    # connections `digest serve` holds at once (each process); more are closed at once
    max_connections: int = Field(1000, ge=16, le=100_000)
    # seconds a connection gets to send a request's headers before it is closed
    header_timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        _public_url(value, "")
        if urlsplit(value).query or urlsplit(value).fragment:
            raise ValueError("must not have a ?query or #fragment")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        return proxy_list(value)

    def url(self, path: str) -> str:
        """The public address of ``path`` (which starts with /)."""
        return self.base_url + path


class Unsubscribe(_Section):
    url: str | None = None  # None: <web.base_url>/unsubscribe/{token}
    mailto: str = "unsubscribe@example.org"
    signing_key_env: str = "DIGEST_SIGNING_KEY"

    @field_validator("mailto")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        local, at, domain = value.strip().rpartition("@")
        if not (local and at and domain) or has_line_break(value) or " " in value.strip():
            raise ValueError("must be an email address, e.g. unsubscribe@example.org")
        return value.strip()

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None:
            _public_url(value, " containing {token}")
            if "{token}" not in value:
                raise ValueError("must be an https:// URL containing {token}")
        return value


class Render(_Section):
    templates: str | None = None
    out_dir: str = "build"
    font_family: str = "Georgia, 'Times New Roman', Times, serif"
    fonts: dict[str, str] = {}
    sample_recipient: str = "reader@example.org"
    sample_name: str | None = "Sample Reader"

    @field_validator("sample_recipient")
    @classmethod
    def _sample_address(cls, value: str) -> str:
        local, at, domain = value.strip().rpartition("@")
        if not (local and at and "." in domain) or has_line_break(value) or " " in value.strip():
            raise ValueError("must be an email address, e.g. reader@example.org")
        return value.strip()

    @field_validator("sample_name", "font_family")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and has_line_break(value):
            raise ValueError("must be one line (no line breaks or control characters)")
        return value


class Excerpt(_Section):
    words: int = Field(70, ge=10, le=1000)
    intro_words: int = Field(60, ge=10, le=1000)
    preheader_chars: int = Field(100, ge=20, le=300)


class Utm(_Section):
    source: str = "digest"
    medium: str = "email"
    campaign: str = "{slug}"


class Compose(_Section):
    issues_dir: str = "issues"
    excerpt: Excerpt = Excerpt()
    read_more: str = "{url}#{anchor}"
    utm: Utm | None = Utm()

    @field_validator("read_more")
    @classmethod
    def _has_url(cls, value: str) -> str:
        if "{url}" not in value:
            raise ValueError("must contain {url} (and may contain {anchor})")
        return value


def _networks(value: bool | tuple[str, ...]) -> bool | tuple[str, ...]:
    import ipaddress

    if not isinstance(value, bool):
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return value


class Fetch(_Section):
    connect_timeout: float = Field(5.0, gt=0, le=120)
    read_timeout: float = Field(15.0, gt=0, le=600)
    max_bytes: int = Field(5_000_000, ge=1_000)
    max_redirects: int = Field(5, ge=0, le=20)
    total_timeout: float = Field(30.0, gt=0, le=3600)
    allow_private_addresses: bool | tuple[str, ...] = False

    _check_networks = field_validator("allow_private_addresses")(_networks)
    user_agent: str = (
        "digest/0.1 (newsletter composer; +https://github.com/digest-newsletter/digest)"
    )


class Webhooks(_Section):
    """`digest serve` /webhooks/<provider>: the environment variables holding each
    provider's secret (a provider whose variable is unset has no webhook), and what
    events do."""

    postmark_auth_env: str = "DIGEST_POSTMARK_WEBHOOK_AUTH"  # "user:password"
    sendgrid_key_env: str = "DIGEST_SENDGRID_WEBHOOK_KEY"  # the verification public key
    mailgun_key_env: str = "DIGEST_MAILGUN_WEBHOOK_KEY"  # the HTTP webhook signing key
    resend_secret_env: str = "DIGEST_RESEND_WEBHOOK_SECRET"  # whsec_…
    max_age_seconds: float = Field(300, ge=10, le=86_400)
    max_body_bytes: int = Field(10_000_000, ge=10_000)
    soft_bounce_limit: int = Field(3, ge=1, le=100)
    soft_bounce_days: float = Field(30, gt=0, le=365)

    def secret_env(self, provider: str) -> str:
        return {
            "postmark": self.postmark_auth_env,
            "sendgrid": self.sendgrid_key_env,
            "mailgun": self.mailgun_key_env,
            "resend": self.resend_secret_env,
        }[provider]


class Draft(_Section):
    """`digest draft`: the feeds a draft is composed from, and how much goes in."""

    feeds: tuple[str, ...] = ()
    max_conversations: int | None = Field(None, ge=1)
    match: str | None = None


class Limits(_Section):
    """Bounds on an issue file, so a broken or hostile one fails fast with one line."""

    issue_file_bytes: int = Field(2_000_000, ge=1_000)
    issue_sections: int = Field(50, ge=1)
    issue_experts: int = Field(500, ge=1)
    yaml_depth: int = Field(20, ge=4, le=1000)
    yaml_nodes: int = Field(20_000, ge=100)  # keys and values in an issue file


class SiteSelectors(_Section):
    host: str
    comment: str
    author: str
    affiliation: str | None = None
    body: str | None = None
    title: str | None = None  # the headline, when the page's <h1> is not it
    date: str | None = None  # an element with the date (its datetime attribute or text)
    intro: str | None = None  # the editors' question
    drop: tuple[str, ...] = ()  # elements to remove before anything is read


class Smtp(_Section):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    envelope_sender: str | None = None  # MAIL FROM (the Return-Path): where bounces go

    @field_validator("envelope_sender")
    @classmethod
    def _bare_address(cls, value: str | None) -> str | None:
        from email.utils import parseaddr

        if value is not None and (parseaddr(value)[1] != value or "@" not in value):
            raise ValueError("must be a bare email address, e.g. bounces@example.org")
        return value


class Provider(_Section):
    name: str = Field("outbox", pattern=r"^[a-z][a-z0-9_]*$")
    api_key_env: str | None = None
    base_url: str | None = None
    outbox_dir: str = "outbox"
    message_stream: str = "broadcast"
    domain: str | None = None
    test_mode: bool = False
    timeout: float = Field(30.0, gt=0, le=600)
    max_attempts: int = Field(4, ge=1, le=20)
    retry_delay: float = Field(1.0, ge=0, le=600)
    max_retry_delay: float = Field(60.0, ge=0, le=3600)
    batch_size: int | None = Field(None, ge=1)
    tracking: bool = False  # the provider's open and click tracking (off: privacy)
    smtp: Smtp = Smtp()

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value


class Delivery(_Section):
    database: str = DEFAULT_DATABASE  # a file (SQLite) or postgresql://user@host/db
    password_env: str | None = None  # PostgreSQL's password; else libpq's own (~/.pgpass)
    timezone: str = "UTC"
    concurrency: int = Field(2, ge=1, le=32)
    rate_limit: float = Field(0, ge=0)
    max_consecutive_failures: int = Field(5, ge=1)
    lease_seconds: float = Field(60, ge=1)
    watch_interval: float = Field(30, ge=0.1)
    stop_grace_seconds: float = Field(30, ge=0, le=3600)
    # the reputation guard: judged once this many recipients of an issue were answered
    guard_after: int = Field(1000, ge=0)  # 0: no guard
    guard_hard_bounce_rate: float = Field(0.02, gt=0, le=1)
    guard_complaint_rate: float = Field(0.003, gt=0, le=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use a name like Europe/London)"
            ) from None
        return value


class Settings(_Section):
    newsletter: Newsletter = Newsletter()  # the default newsletter
    newsletters: dict[str, NewsletterOverride] = {}  # more, by key: what differs from it
    # in settings made for another newsletter (for_newsletter): the configured default
    _default: Newsletter | None = PrivateAttr(None)
    audience: Audience = Audience()  # subscriber fields, import columns, saved segments
    unsubscribe: Unsubscribe = Unsubscribe()
    render: Render = Render()
    brand: Brand = Brand()
    compose: Compose = Compose()
    fetch: Fetch = Fetch()
    sites: tuple[SiteSelectors, ...] = ()
    provider: Provider = Provider()
    staff: tuple[str, ...] = ("staff@example.org",)
    delivery: Delivery = Delivery()
    limits: Limits = Limits()
    draft: Draft = Draft()
    webhooks: Webhooks = Webhooks()
    web: Web = Web()
    desk: Desk = Desk()
    api: Api = Api()

    @field_validator("newsletters")
    @classmethod
    def _each_newsletter(
        cls, value: dict[str, NewsletterOverride], info: ValidationInfo
    ) -> dict[str, NewsletterOverride]:
        default = info.data.get("newsletter", Newsletter())
        for key, override in value.items():
            newsletter_key(key)
            if key == default.key:
                raise ValueError(
                    f"{key!r} is the default newsletter's key (newsletter.key); "
                    "give the others keys of their own"
                )
            try:
                merged(default, key, override)
            except ValidationError as err:
                problem = err.errors()[0]
                where = ".".join(str(p) for p in problem["loc"])
                message = str(problem["msg"]).removeprefix("Value error, ")
                raise ValueError(f"{key}.{where}: {message}") from None
        return value

    @model_validator(mode="after")
    def _greeting_fields(self) -> Settings:
        """A greeting by a field greets by a declared text or choice field."""
        for key in self.newsletter_keys:
            field = self.newsletter_for(key).greeting_field
            spec = self.audience.fields.get(field)
            if field != "name" and (spec is None or spec.type not in {"text", "choice"}):
                where = "newsletter" if key == self.newsletter.key else f"newsletters.{key}"
                raise ValueError(
                    f"{where}.greeting: {{{field}}} is not a text field of audience.fields "
                    "(declare it there, or greet by {name})"
                )
        return self

    @property
    def default_newsletter(self) -> Newsletter:
        """The configured default newsletter, also in settings made for another one."""
        return self._default or self.newsletter

    @property
    def newsletter_keys(self) -> tuple[str, ...]:
        """Every newsletter's key, the default first."""
        return (self.default_newsletter.key, *self.newsletters)

    def newsletter_for(self, key: str | None) -> Newsletter:
        """The newsletter ``key`` (None: the default), or a ConfigError naming the keys."""
        default = self.default_newsletter
        if key is None or key == default.key:
            return default
        if key == self.newsletter.key:
            return self.newsletter
        if key not in self.newsletters:
            raise ConfigError(
                f"newsletter {key!r} is not declared in config.yaml "
                f"(declared: {', '.join(self.newsletter_keys)})"
            )
        return merged(default, key, self.newsletters[key])

    def for_newsletter(self, key: str | None) -> Settings:
        """These settings with the newsletter ``key`` in place of the default: what
        rendering, checks and headers of an issue for that newsletter read. They still
        know the default and every declared newsletter."""
        chosen = self.newsletter_for(key)
        if chosen is self.newsletter:
            return self
        made = self.model_copy(update={"newsletter": chosen})
        made._default = self.default_newsletter
        return made

    @property
    def unsubscribe_url(self) -> str:
        """The personal unsubscribe page, with {token}: configured, or under web.base_url."""
        return self.unsubscribe.url or self.web.url("/unsubscribe/{token}")

    def selectors_for(self, host: str) -> SiteSelectors | None:
        host = host.lower()
        for site in self.sites:
            wanted = site.host.lower()
            if host == wanted or host.endswith("." + wanted):
                return site
        return None


def load_settings(path: Path | None) -> Settings:
    """Read settings from ``path``; ``None`` means embedded defaults only."""
    if path is None:
        return Settings()
    data = read_config(path)  # screened like an issue file
    if data is None:
        return Settings()
    return validate(Settings, data, path, ConfigError)
