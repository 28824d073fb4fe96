"""Newsletter issues as editable YAML files in ``issues/``.

An issue file is the editor's: every later command reads it back and none rewrites it.
Reading validates it strictly and reports ``file:LINE: key: reason``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from digest.config import Limits
from digest.errors import IssueFileError
from digest.headerchars import has_line_break
from digest.slugs import issue_slug as issue_slug  # re-exported
from digest.yamlio import read_yaml, validate

HEADER = """\
digest issue file: edit freely. Excerpts and intros are inline Markdown
(*emphasis*, **bold**, [links](https://…)); reorder or delete experts as you like.
editor_note, when set, is a short inline-Markdown note shown above the conversations.
Check it with `digest check FILE`; nothing digest does rewrites this file.
"""


def _absolute_http(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return value


# What digest's per-reader markers begin with (digest.render): text from a page or an
# issue file never carries one, or a reader's own link, address or fields would be put
# in its place. A zero-width space after the underscores keeps the words as they read.
# (in any case: a changed marker, "__digest_f0__", is what a template's | lower makes)
RESERVED = re.compile(r"__(digest_)", re.IGNORECASE)
DEFANGED = "__\u200b\\1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_markers(cls, value: object) -> object:
        if isinstance(value, str) and "_" in value:
            return RESERVED.sub(DEFANGED, value)
        return value


class Expert(_Strict):
    name: str = Field(min_length=1)
    affiliation: str | None = None
    headline: str | None = None
    excerpt: str = ""  # an empty one is reported by `digest check`, with where it is
    read_more: str = ""
    anchor_from_name: bool = False  # the link's #anchor was made up, not found on the page


class Section(_Strict):
    title: str = Field(min_length=1)
    url: str | None = None
    date: dt.date | None = None
    series: str | None = None
    intro: str | None = None
    experts: tuple[Expert, ...] = Field(min_length=1)
    feed_entry: str | None = None  # the feed entry's id, when composed from a feed
    # experts taken out of the issue (in the desk), kept to bring back; never sent
    set_aside: tuple[Expert, ...] = ()

    _check_url = field_validator("url")(_absolute_http)


class Issue(_Strict):
    subject: str = Field(min_length=1)
    newsletter: str | None = None  # its key in config.yaml; None: the default newsletter
    preheader: str | None = None
    date: dt.date
    editor_note: str | None = None  # inline Markdown, shown above the conversations
    sections: tuple[Section, ...] = Field(min_length=1)
    feeds: tuple[str, ...] = ()  # the feeds the issue was composed from
    # conversations taken out of the issue (in the desk), kept to bring back; never sent
    set_aside: tuple[Section, ...] = ()

    @field_validator("subject", "preheader")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and has_line_break(value):
            raise ValueError("must be one line (it goes in a mail header or the inbox snippet)")
        return value


def load_issue(path: Path, limits: Limits | None = None) -> Issue:
    limits = limits or Limits()
    data = read_yaml(
        path,
        IssueFileError,
        missing="issue file not found",
        max_bytes=limits.issue_file_bytes,
        max_depth=limits.yaml_depth,
        max_nodes=limits.yaml_nodes,
        limits_name="limits.issue_file_bytes",
    )
    if not isinstance(data, dict):
        raise IssueFileError(f"{path}:1: an issue file is a mapping (subject, date, sections)")
    sections = data.get("sections")
    if isinstance(sections, list):
        if len(sections) > limits.issue_sections:
            raise IssueFileError(
                f"{path}: {len(sections)} sections, over the limit of {limits.issue_sections} "
                "(limits.issue_sections)"
            )
        experts = sum(
            len(s["experts"])
            for s in sections
            if isinstance(s, dict) and isinstance(s.get("experts"), list)
        )
        if experts > limits.issue_experts:
            raise IssueFileError(
                f"{path}: {experts} experts, over the limit of {limits.issue_experts} "
                "(limits.issue_experts)"
            )
    return validate(Issue, data, path, IssueFileError)


def _commented(issue: Issue) -> CommentedMap:
    """The YAML document, in the key order an editor expects."""

    def mapping(values: dict[str, Any]) -> CommentedMap:
        out = CommentedMap()
        for key, value in values.items():
            out[key] = value
        return out

    sections = CommentedSeq()
    for section in issue.sections:
        experts = CommentedSeq()
        for expert in section.experts:
            values: dict[str, Any] = {"name": expert.name, "affiliation": expert.affiliation}
            if expert.headline:
                values["headline"] = expert.headline
            values |= {"excerpt": expert.excerpt, "read_more": expert.read_more}
            if expert.anchor_from_name:
                values["anchor_from_name"] = True
            experts.append(mapping(values))
        values = {"title": section.title, "url": section.url, "date": section.date}
        if section.series:
            values["series"] = section.series
        values |= {"intro": section.intro, "experts": experts}
        if section.feed_entry:
            values["feed_entry"] = section.feed_entry
        sections.append(mapping(values))
    top: dict[str, Any] = {"subject": issue.subject}
    if issue.newsletter:
        top["newsletter"] = issue.newsletter
    top |= {"preheader": issue.preheader, "date": issue.date}
    if issue.editor_note or len(issue.sections) > 1:
        top["editor_note"] = issue.editor_note  # an invitation to write one
    top["sections"] = sections
    if issue.feeds:
        top["feeds"] = list(issue.feeds)
    doc = mapping(top)
    doc.yaml_set_start_comment(HEADER)
    return doc


def dump_issue(issue: Issue) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 4096  # one line per value: easy to edit, clean diffs
    yaml.representer.ignore_aliases = lambda *_: True  # equal dates stay plain, no &id001
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    stream = io.StringIO()
    yaml.dump(_commented(issue), stream)
    return stream.getvalue()


def write_issue(text: str, path: Path, *, force: bool) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never half."""
    if path.exists() and not force:
        raise IssueFileError(f"{path}: already exists; pass --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise IssueFileError(f"{path}: cannot write ({err.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise IssueFileError(f"{path}: cannot write ({err.strerror})") from None
