"""Subscriber lists: CSV import and export, and address normalisation.

An import checks every row (syntax only, no DNS), merges duplicates, and writes in one
transaction: a failure changes nothing. Someone who unsubscribed, bounced, complained or
was forgotten is never made active again unless ``resubscribe`` is asked for.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.store import Store

MAX_FIELD = 1000  # characters; a longer name or address is a broken file, not a person
EMAIL_HEADERS = ("email", "e-mail", "email address", "e-mail address", "mail")
NAME_HEADERS = ("name", "full name", "full_name")


class ImportError_(DigestError):
    """A CSV file that cannot be imported at all."""


def normalise_email(address: str) -> str:
    """The address as stored: syntax-checked, normalised, lower-case."""
    result = validate_email(address.strip(), check_deliverability=False)
    return str(result.normalized).lower()


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # unsubscribed, bounced or complained, and left so
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    encoding: str = "utf-8"

    def lines(self) -> list[str]:
        out = [f"row {row}: {reason}" for row, reason in self.rejected]
        summary = f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, rejected {len(self.rejected)}"
        if self.kept:
            summary += f" ({self.kept} of the unchanged had unsubscribed, bounced or complained: not re-activated)"
        out.append(summary)
        return out


def _decode(path: Path) -> tuple[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except OSError as err:
        raise ImportError_(f"{path}: cannot read ({err.strerror})") from None
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportError_(f"{path}: binary file, not CSV")
    for encoding in (
        ("utf-8-sig", "utf-16")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        else ("utf-8-sig",)
    ):
        try:
            return data.decode(encoding), "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    # Not UTF-8: spreadsheets on Windows write cp1252; every byte decodes there or in latin-1.
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def read_rows(
    path: Path, report: ImportReport
) -> Iterator[tuple[int, str, str | None, dict[str, str]]]:
    """(row number, email as written, name, other columns) for each data row."""
    text, report.encoding = _decode(path)
    if not text.strip():
        raise ImportError_(f"{path}: empty file")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportError_(f"{path}: empty file") from None
    lowered = [h.lower() for h in header]
    email_col = next((lowered.index(h) for h in EMAIL_HEADERS if h in lowered), None)
    if email_col is None:
        raise ImportError_(
            f"{path}: the header row has no email column (found: {', '.join(header) or 'nothing'})"
        )
    name_col = next((lowered.index(h) for h in NAME_HEADERS if h in lowered), None)
    first = lowered.index("first_name") if "first_name" in lowered else None
    last = lowered.index("last_name") if "last_name" in lowered else None
    try:
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            cells = row + [""] * (len(header) - len(row))
            unclosed_quote(path, number, [cells[i] for i in (email_col, name_col) if i is not None])
            name: str | None = cells[name_col].strip() if name_col is not None else None
            if not name and (first is not None or last is not None):
                parts = [cells[i].strip() for i in (first, last) if i is not None]
                name = " ".join(p for p in parts if p) or None
            others = {
                header[i]: cells[i].strip()
                for i in range(len(header))
                if i not in (email_col, name_col) and header[i] and cells[i].strip()
            }
            yield number, cells[email_col], name or None, others
    except csv.Error as err:
        raise ImportError_(f"{path}: line {reader.line_num}: {err}") from None


def unclosed_quote(path: Path, row: int, fields: list[str]) -> None:
    """Refuse a row whose address or name runs across lines or past any sane length: the
    sign of a quote that was opened and never closed, which swallows every row after it."""
    for value in fields:
        if "\n" in value or "\r" in value or len(value) > MAX_FIELD:
            raise ImportError_(
                f"{path}: row {row}: a field runs across lines or past {MAX_FIELD} characters "
                "(a quote opened and never closed?); nothing was imported"
            )


def import_csv(store: Store, path: Path, *, resubscribe: bool = False) -> ImportReport:
    report = ImportReport()
    merged: dict[str, tuple[int, str | None, dict[str, str]]] = {}
    for number, raw, name, others in read_rows(path, report):
        if not raw.strip():
            report.rejected.append((number, "no email address"))
            continue
        try:
            email = normalise_email(raw)
        except EmailNotValidError as err:
            report.rejected.append((number, f"{raw.strip()!r} is not a valid address ({err})"))
            continue
        if email in merged:  # a duplicate: merged into the first row
            first_row, old_name, old_others = merged[email]
            merged[email] = (first_row, old_name or name, old_others | others)
        else:
            merged[email] = (number, name, others)
    outcome = store.upsert_subscribers(
        ((email, name, others) for email, (_, name, others) in merged.items()),
        resubscribe=resubscribe,
    )
    report.added = len(outcome["added"])
    report.updated = len(outcome["updated"])
    report.kept = len(outcome["kept"])
    report.unchanged = len(outcome["unchanged"]) + report.kept
    for email in outcome["suppressed"]:
        report.rejected.append(
            (
                merged[email][0],
                f"{email} was removed with --forget; import with --resubscribe to add them back",
            )
        )
    report.rejected.sort()
    return report


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet will show as text: one that would start a formula gets a
    leading single quote (OWASP's advice for CSV injection). The store keeps the value
    as typed; only the export is changed."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_csv(store: Store, path: Path) -> int:
    """Every subscriber to ``path`` (UTF-8), cells that a spreadsheet would run defused."""
    count = 0
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "name", "status", "created_at", "updated_at"])
            for sub in store.iter_subscribers():
                row = [sub.email, sub.name or "", sub.status, sub.created_at, sub.updated_at]
                writer.writerow([spreadsheet_safe(cell) for cell in row])
                count += 1
    except OSError as err:
        raise DigestError(f"{path}: cannot write ({err.strerror})") from None
    return count
