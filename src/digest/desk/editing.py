"""Changing an issue file from the desk, the way an editor would by hand: only the values
that changed, in place, with the file's comments and key order kept, so the change reads
as a small diff in git and the CLI sees exactly what the desk saved.

A save names the version it was made from (a hash of the file's bytes); when the file
changed since (another editor, or someone on disk), the save is refused and both
versions are shown, never written over.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from digest.config import Limits
from digest.errors import DigestError, IssueFileError
from digest.issuefile import Issue, load_issue

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\Z")
ISSUE_FIELDS = ("subject", "preheader", "editor_note")
SECTION_FIELDS = ("title", "intro")
EXPERT_FIELDS = ("name", "affiliation", "headline", "excerpt")
REQUIRED = frozenset({"subject", "title", "name"})


def issue_path(folder: Path, name: str) -> Path:
    """The issue file ``name`` names, inside ``folder`` and nowhere else."""
    stem = name.removesuffix(".yaml")
    if not NAME.match(stem) or ".." in stem:
        raise IssueFileError(f"{name}: not an issue name")
    path = folder / f"{stem}.yaml"
    if path.parent.resolve() != folder.resolve() or not path.is_file():
        raise IssueFileError(f"{name}: no such issue in {folder}")
    return path


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StaleSave(DigestError):
    """The file changed since the editor opened it."""

    def __init__(self, path: Path, mine: str, theirs: str) -> None:
        self.mine, self.theirs = mine, theirs
        super().__init__(
            f"{path.name} changed since you opened it (another editor, or on disk): "
            "nothing was saved; compare the two versions below"
        )


@dataclass
class Saved:
    changed: list[str] = field(default_factory=list)  # the fields, e.g. sections[0].title
    issue: Issue | None = None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # one value per line, as digest writes them
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    return yaml


def _set(node: CommentedMap, key: str, value: str, where: str, changed: list[str]) -> None:
    old = node.get(key)
    text = value.strip()
    if not text:
        if key in REQUIRED:
            raise IssueFileError(f"{where}: must not be empty")
        if key in node:
            del node[key]
            changed.append(where)
        return
    if old is None or str(old) != text:
        node[key] = text
        changed.append(where)


def apply_edits(path: Path, base_version: str, form: dict[str, str], limits: Limits) -> Saved:
    """Write the values in ``form`` (keys like ``subject``, ``s0.title``, ``s0.e2.excerpt``)
    into the issue file, when it is still the version the editor opened."""
    data = path.read_bytes()
    if version_of(data) != base_version:
        raise StaleSave(path, _changed_text(data, form), data.decode("utf-8", "replace"))
    yaml = _yaml()
    tree = yaml.load(data.decode("utf-8"))
    if not isinstance(tree, CommentedMap):
        raise IssueFileError(f"{path.name}: not an issue file")
    changed: list[str] = []
    for key in ISSUE_FIELDS:
        if key in form:
            _set(tree, key, form[key], key, changed)
    for s, section in enumerate(tree.get("sections") or []):
        for key in SECTION_FIELDS:
            if f"s{s}.{key}" in form:
                _set(section, key, form[f"s{s}.{key}"], f"sections[{s}].{key}", changed)
        for e, expert in enumerate(section.get("experts") or []):
            for key in EXPERT_FIELDS:
                name = f"s{s}.e{e}.{key}"
                if name in form:
                    _set(expert, key, form[name], f"sections[{s}].experts[{e}].{key}", changed)
    if not changed:
        return Saved([], load_issue(path, limits))
    out = io.StringIO()
    yaml.dump(tree, out)
    text = out.getvalue()
    issue = _checked(text, path, limits)
    _replace(path, text)
    return Saved(changed, issue)


def arrange(
    path: Path,
    base_version: str,
    op: str,
    section: int,
    expert: int | None,
    limits: Limits,
    preheader_chars: int = 100,
) -> str:
    """Move an expert (or, with ``expert`` None, a conversation) up or down, set it
    aside (kept in the file under ``set_aside``, never sent) or bring it back (``section``
    or ``expert`` then counts in the set-aside list). Returns what was done, in words."""
    data = path.read_bytes()
    if version_of(data) != base_version:
        raise StaleSave(path, f"{op} sections[{section}]", data.decode("utf-8", "replace"))
    yaml = _yaml()
    tree = yaml.load(data.decode("utf-8"))
    if not isinstance(tree, CommentedMap) or not isinstance(tree.get("sections"), list):
        raise IssueFileError(f"{path.name}: not an issue file")
    sections = tree["sections"]
    before = _who_speaks(tree, preheader_chars)
    if expert is None:
        done = _move(tree, "sections", section, op, "conversation")
    elif 0 <= section < len(sections):
        done = _move(sections[section], "experts", expert, op, "expert")
    else:
        raise IssueFileError("no such conversation in this issue")
    if before and tree.get("preheader") == before:  # the composed "With …": keep it true
        tree["preheader"] = _who_speaks(tree, preheader_chars) or before
    out = io.StringIO()
    yaml.dump(tree, out)
    text = out.getvalue()
    _checked(text, path, limits)
    _replace(path, text)
    return done


def _who_speaks(tree: CommentedMap, max_chars: int) -> str | None:
    """The preheader composing writes for a one-conversation issue: who speaks."""
    from digest.excerpt import people_phrase

    sections = tree.get("sections") or []
    if len(sections) != 1:
        return None
    return people_phrase([str(e.get("name")) for e in sections[0].get("experts") or []], max_chars)


def _move(parent: CommentedMap, key: str, index: int, op: str, what: str) -> str:
    from ruamel.yaml.comments import CommentedSeq

    items = parent[key]
    if op == "restore":
        aside = parent.get("set_aside") or []
        if not 0 <= index < len(aside):
            raise IssueFileError(f"no such {what} set aside")
        item = aside.pop(index)
        items.append(item)
        if not aside:
            del parent["set_aside"]
        return f"brought back {item.get('name') or item.get('title')}"
    if not 0 <= index < len(items):
        raise IssueFileError(f"no such {what} in this issue")
    item = items[index]
    label = item.get("name") or item.get("title")
    if op in ("up", "down"):
        other = index - 1 if op == "up" else index + 1
        if not 0 <= other < len(items):
            raise IssueFileError(f"{label} is {'first' if op == 'up' else 'last'} already")
        items[index], items[other] = items[other], items[index]
        return f"moved {label} {op}"
    if op == "remove":
        if len(items) == 1:
            raise IssueFileError(f"{label} is the only {what} here; an issue needs one at least")
        aside = parent.get("set_aside")
        if aside is None:
            aside = parent["set_aside"] = CommentedSeq()
        aside.append(items.pop(index))
        return f"set aside {label}"
    raise IssueFileError(f"{op}: not something the desk can do to an {what}")


def _checked(text: str, path: Path, limits: Limits) -> Issue:
    """The edited file, read back as digest reads issue files: a save that would make it
    invalid is refused, with the reason, before anything is written."""
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / path.name
        trial.write_text(text, encoding="utf-8")
        try:
            return load_issue(trial, limits)
        except IssueFileError as err:
            raise IssueFileError(str(err).replace(str(trial), path.name)) from None


def _replace(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a crash leaves the old or the new."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _changed_text(data: bytes, form: dict[str, str]) -> str:
    """The editor's values, one per line, to show beside the file that changed."""
    return "\n".join(f"{key}: {value}" for key, value in form.items() if key != "base")
