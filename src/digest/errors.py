"""The one exception tree of digest.

    DigestError                 anything a user can act on; the CLI prints str(err) on one line
    ├── SourceError             a conversation source could not be read or understood
    ├── NothingNew              a feed has no entry that an earlier issue did not use
    ├── IssueFileError          an issue file is missing, malformed, or would be overwritten
    ├── RenderError             a template, MJML or CSS problem while rendering an issue
    ├── ProviderError           a mail provider answered in a way digest cannot use
    ├── StoreError              the database cannot be read or written (locked, full, damaged)
    ConfigError                 config.yaml or the environment is wrong (kept apart, see below)
    └── ProviderAuthError       a provider refused the credentials (401/403): stop everything

ConfigError derives from DigestError so the CLI reports it the same way, but code that
retries or skips on DigestError subclasses should never catch it by accident: a wrong
setting must stop the whole run, not one item.

Every message names the thing (a file, a URL, a config key with its line) and the reason.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base for every error digest reports to a user. ``details``: lines the CLI prints
    before the error itself (each problem, when there are several)."""

    def __init__(self, *args: object, details: list[str] | None = None) -> None:
        super().__init__(*args)
        self.details = details or []


class StoreError(DigestError):
    """The database cannot be read or written: locked, full, read-only or damaged."""


class ConfigError(DigestError):
    """config.yaml, a template folder or an environment variable is wrong."""


class SourceError(DigestError):
    """A conversation source (file or URL) could not be read or parsed."""

    def __init__(self, source: str, reason: str, *, details: list[str] | None = None) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}", details=details)


class NothingNew(DigestError):
    """A feed has nothing an earlier issue did not already use (not a failure for drafts)."""


class IssueFileError(DigestError):
    """An issue file is missing, malformed or would be overwritten."""


class RenderError(DigestError):
    """A template, MJML or CSS inlining problem while rendering an issue."""


class ProviderError(DigestError):
    """A mail provider answered in a way digest cannot use."""


class ProviderAuthError(ConfigError):
    """A provider refused the credentials: nothing more should be sent."""
