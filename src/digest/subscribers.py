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
from typing import BinaryIO, NamedTuple, TextIO

from email_validator import EmailNotValidError

from digest.addresses import normalise_email
from digest.defaultkey import DEFAULT_KEY
from digest.errors import DigestError
from digest.fields import Audience
from digest.listformats import recognise
from digest.store import Store, Subscriber, UpsertReport

NO_FIELDS = Audience()
OWN_COLUMNS = frozenset({"status", "newsletters"})
MAX_FIELD = 1000  # characters; a longer name or address is a broken file, not a person
EMAIL_HEADERS = ("email", "e-mail", "email address", "e-mail address", "email_address", "mail")
NAME_HEADERS = ("name", "full name", "full_name")


class ImportError_(DigestError):
    """A CSV file that cannot be imported at all."""


@dataclass
class ImportReport(UpsertReport):
    """The store's counts (``unchanged`` here includes ``kept``), every rejected row with
    its reason, and the encoding the file was read with."""

    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    encoding: str = "utf-8"
    kind: str = "a CSV file"  # the export recognised by its header: "a Mailchimp export"

    def lines(self) -> list[str]:
        out = [f"row {row}: {reason}" for row, reason in self.rejected]
        if self.kind != "a CSV file":
            out.append(f"read as {self.kind}")
        summary = f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, rejected {len(self.rejected)}"
        if self.kept:
            summary += f" ({self.kept} of the unchanged had unsubscribed, bounced or complained: not re-activated)"
        out.append(summary)
        if self.left:
            out.append(
                f"{self.left} came in as the file says they left (unsubscribed, bounced or "
                "complained): never active, never mailed"
            )
        return out


SAMPLE_BYTES = 1 << 20  # what encoding detection looks at
CHUNK = 1 << 20


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except OSError as err:
        raise ImportError_(f"{path}: cannot read ({err.strerror})") from None


def _utf8_problem(path: Path) -> tuple[int, int, bool] | None:
    """Where the file stops being UTF-8: (line, bad byte, whether valid multi-byte UTF-8
    came before it), or None when all of it is UTF-8. Read in chunks: memory stays flat."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, multibyte = 1, False
    with _open(path) as handle:
        while chunk := handle.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                before = chunk[: err.start]
                multibyte = multibyte or not before.isascii()
                return lines + before.count(b"\n"), chunk[err.start], multibyte
            lines += chunk.count(b"\n")
            multibyte = multibyte or not chunk.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines, 0, multibyte
    return None


# Where detection finds several readings about as clean, the first of these wins: this
# newsletter's readers and experts often have Chinese and Japanese names, and Windows-1252
# is what spreadsheets in the West write. The choice is always printed.
PREFERRED = ("utf-8", "gb18030", "big5", "cp932", "cp949", "cp1252")
SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949"}


def _plausible(text: str) -> bool:
    """Whether the non-ASCII characters of a reading look like names: letters, mostly."""
    wide = [c for c in text if ord(c) > 127]
    return not wide or sum(c.isalpha() for c in wide) >= 0.9 * len(wide)


def _detect(path: Path, sample: bytes) -> str:
    """A legacy encoding charset-normalizer is confident of, or a one-line refusal."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        raise ImportError_(
            f"{path}: cannot tell which text encoding this file uses; "
            "pass --encoding NAME (e.g. --encoding gb18030)"
        )
    cleanest = min(m.chaos for m in matches)
    near: dict[str, object] = {}
    for match in matches:
        name = codecs.lookup(match.encoding).name
        name = SUPERSETS.get(name, name)
        if match.chaos <= cleanest + 0.1 and _plausible(str(match)):
            near.setdefault(name, match)
    if "cp1252" not in near:  # detection may not list it though it reads cleanly
        western = from_bytes(sample, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= cleanest + 0.01 and _plausible(str(western)):
            near["cp1252"] = western
    for name in PREFERRED:
        if name in near:
            return name
    if near:
        return next(iter(near))
    return SUPERSETS.get(codecs.lookup(matches[0].encoding).name, matches[0].encoding)


def choose_encoding(path: Path, named: str | None) -> str:
    """The encoding to read ``path`` with: ``named`` if given; UTF-8 (with or without a
    BOM) or UTF-16 with a BOM when the bytes say so; else a confident detection. A file
    that is UTF-8 but for a stray byte is refused with the line, not decoded whole as
    something else."""
    if named:
        try:
            return codecs.lookup(named).name
        except LookupError:
            raise ImportError_(f"--encoding {named!r}: no such text encoding") from None
    with _open(path) as handle:
        sample = handle.read(SAMPLE_BYTES)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" not in sample:
        problem = _utf8_problem(path)
        if problem is None:
            return "utf-8"
        line, byte, multibyte = problem
        if multibyte:
            raise ImportError_(
                f"{path}: line {line} is not UTF-8 (byte 0x{byte:02x}) though the lines before "
                "it are; fix that line, or pass --encoding NAME to read the whole file so"
            )
    encoding = _detect(path, sample)
    if b"\x00" in sample and not encoding.startswith("utf-16"):
        raise ImportError_(f"{path}: binary file, not CSV")
    return encoding


def _text_stream(path: Path, encoding: str) -> TextIO:
    return io.TextIOWrapper(_open(path), encoding=encoding, errors="strict", newline="")


class Row(NamedTuple):
    number: int
    email: str  # as written
    name: str | None
    attributes: dict[str, object]
    left: str | None  # the status the file says its person left with
    problem: str | None  # why a value cannot be taken
    joined: str | None  # YYYY-MM-DD: when they subscribed, where the export says


def read_rows(
    path: Path, report: ImportReport, encoding: str | None = None, audience: Audience = NO_FIELDS
) -> Iterator[Row]:
    """Each data row, read from the file as a stream (one row in memory at a time).
    Columns the declared fields name are typed and kept under the field's name; the
    others as text."""
    report.encoding = choose_encoding(path, encoding)
    with _text_stream(path, report.encoding) as stream:
        try:
            yield from _rows(path, stream, report, audience)
        except UnicodeDecodeError as err:
            raise ImportError_(
                f"{path}: cannot be read as {report.encoding} ({err.reason}); pass --encoding NAME"
            ) from None


def _rows(path: Path, stream: TextIO, report: ImportReport, audience: Audience) -> Iterator[Row]:
    first_line = stream.readline()
    if not first_line.strip():
        raise ImportError_(f"{path}: empty file")
    stream.seek(0)
    # the delimiter is the header's; quoting is RFC 4180's, read strictly: a row that
    # does not parse cleanly refuses the file rather than being imported changed
    reader = csv.reader(stream, delimiter=header_delimiter(first_line), strict=True)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise ImportError_(f"{path}: empty file") from None
    lowered = [h.lower() for h in header]
    email_col = next((lowered.index(h) for h in EMAIL_HEADERS if h in lowered), None)
    if email_col is None:
        raise ImportError_(
            f"{path}: the header row has no email column (found: {', '.join(header) or 'nothing'})"
        )
    name_col = next((lowered.index(h) for h in NAME_HEADERS if h in lowered), None)
    kind = recognise(lowered)
    report.kind = kind.name
    first, last = kind.first, kind.last
    width = len(header)
    checked = [i for i in (email_col, name_col) if i is not None]
    # digest's own export's status and newsletters are what the import decides, not
    # attributes to keep (the newsletters come from --newsletter)
    other_cols = [
        (i, header[i]) for i in range(width)
        if i not in (email_col, name_col) and header[i] and lowered[i] not in OWN_COLUMNS
    ]  # fmt: skip
    fields = audience.column_map()
    if audience.unknown_columns == "refuse":
        unknown = [c for i, c in other_cols if c.lower() not in fields and i not in (first, last)]
        if unknown:
            raise ImportError_(
                f"{path}: no field takes the column(s) {', '.join(unknown)} "
                "(audience.unknown_columns is refuse: declare them in audience.fields, "
                "or remove them); nothing was imported"
            )
    number = 1
    try:
        for number, row in enumerate(reader, start=2):
            if not "".join(row).strip():
                continue
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                raise ImportError_(
                    f"{path}: row {number} has {len(row)} fields, the header has {width} "
                    "(a delimiter inside a value that is not quoted?); nothing was imported"
                )
            cells = [unguarded(c) for c in row[:width]] + [""] * max(0, width - len(row))
            for i in checked:
                value = cells[i]
                if len(value) > MAX_FIELD or "\n" in value or "\r" in value:
                    unclosed_quote(path, number, [value])
            name: str | None = cells[name_col].strip() if name_col is not None else None
            if not name and (first is not None or last is not None):
                parts = [cells[i].strip() for i in (first, last) if i is not None]
                name = " ".join(p for p in parts if p) or None
            others: dict[str, object] = {}
            problem = None
            for i, column in other_cols:
                value = cells[i].strip()
                field = fields.get(column.lower())
                if field is None:
                    if value:
                        others[column] = value
                    continue
                try:
                    typed = field[1].convert(value)
                except ValueError as err:
                    problem = f"{field[0]} (column {column}): {err}"
                    break
                if typed is not None:
                    others.setdefault(field[0], typed)
            yield Row(number, cells[email_col], name or None, others, kind.left(cells),
                      problem, kind.joined_on(cells))  # fmt: skip
    except csv.Error as err:
        raise ImportError_(
            f"{path}: row {number + 1} (line {reader.line_num}) does not parse ({err}; a quote "
            "opened and never closed, or text after a closing quote?); nothing was imported"
        ) from None


def header_delimiter(line: str) -> str:
    """The header line's delimiter: the commonest of comma, semicolon and tab in it."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def unguarded(cell: str) -> str:
    """A cell as typed, without the quote an export put before a formula-like start
    (see spreadsheet_safe): an exported file imports back unchanged."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in FORMULA_STARTS and cell[1:] else cell


def unclosed_quote(path: Path, row: int, fields: list[str]) -> None:
    """Refuse a row whose address or name runs across lines or past any sane length: the
    sign of a quote that was opened and never closed, which swallows every row after it."""
    for value in fields:
        if "\n" in value or "\r" in value or len(value) > MAX_FIELD:
            raise ImportError_(
                f"{path}: row {row}: a field runs across lines or past {MAX_FIELD} characters "
                "(a quote opened and never closed?); nothing was imported"
            )


def import_csv(
    store: Store,
    path: Path,
    *,
    resubscribe: bool = False,
    encoding: str | None = None,
    newsletters: tuple[str, ...] = (DEFAULT_KEY,),
    audience: Audience = NO_FIELDS,
) -> ImportReport:
    """Import ``path`` in one transaction, streaming it: memory stays flat however long
    the file. A file that turns out broken part-way changes nothing. The active people
    are subscribed to ``newsletters``; those the file says had left come in with their
    status (listformats.py)."""
    report = ImportReport()
    leaving: dict[str, str] = {}  # filled as the store reads the rows
    joined: dict[str, str] = {}

    def valid_rows() -> Iterator[tuple[str, str | None, dict[str, object], int]]:
        for number, raw, name, others, left, problem, joined_on in read_rows(
            path, report, encoding, audience
        ):
            if problem is not None:
                report.rejected.append((number, problem))
                continue
            if not raw.strip():
                report.rejected.append((number, "no email address"))
                continue
            try:
                email = normalise_email(raw)
            except EmailNotValidError as err:
                report.rejected.append((number, f"{raw.strip()!r} is not a valid address ({err})"))
                continue
            if left is not None:
                leaving[email] = left
            if joined_on is not None:
                joined[email] = joined_on
            yield email, name, others, number

    outcome = store.upsert_subscribers(
        valid_rows(), resubscribe=resubscribe, newsletters=newsletters, leaving=leaving,
        joined=joined,
    )  # fmt: skip
    report.added, report.updated, report.kept = outcome.added, outcome.updated, outcome.kept
    report.left = outcome.left
    report.unchanged = outcome.unchanged + outcome.kept
    for number, email in outcome.suppressed:
        report.rejected.append(
            (
                number,
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


EXPORT_PAGE = 1000


def export_csv(store: Store, path: Path) -> int:
    """Every subscriber to ``path`` (UTF-8) with every field: status, the newsletters
    they get (space-separated keys) and a column per attribute any of them has; cells
    that a spreadsheet would run defused. Two passes over the list: the attributes'
    names first, so the header is complete; memory stays one page of subscribers."""
    names = sorted({key for sub in store.iter_subscribers() for key in sub.attributes})
    count = 0
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["email", "name", "status", "newsletters", "created_at", "updated_at", *names]
            )
            page: list[Subscriber] = []

            def flush() -> None:
                if not page:
                    return
                subscribed = store.subscribed_to([sub.id for sub in page])
                for sub in page:
                    row = [sub.email, sub.name or "", sub.status, " ".join(subscribed[sub.id]),
                           sub.created_at, sub.updated_at,
                           *(str(sub.attributes.get(key, "")) for key in names)]  # fmt: skip
                    writer.writerow([spreadsheet_safe(cell) for cell in row])
                page.clear()

            for sub in store.iter_subscribers():
                page.append(sub)
                count += 1
                if len(page) == EXPORT_PAGE:
                    flush()
            flush()
    except OSError as err:
        raise DigestError(f"{path}: cannot write ({err.strerror})") from None
    return count
