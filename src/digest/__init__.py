"""digest: turn a multi-expert conversation article into an email newsletter.

The package reads as the data flows:

    sources/   a page or file          -> Conversation (model.py)
    excerpt    Conversation            -> excerpts and read-more links
    issuefile  excerpts                -> an editable issue file (YAML)
    render     issue file              -> HTML, text and .eml   (later issues)
    providers  personalised messages   -> a mail provider        (later issues)
"""

from digest.errors import ConfigError, DigestError, IssueFileError, RenderError, SourceError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DigestError",
    "IssueFileError",
    "RenderError",
    "SourceError",
    "__version__",
]
