"""Hostile and broken inputs: one-line errors, no silent corruption, nothing fetched or
served that nobody asked for."""

from __future__ import annotations

import csv
import gzip
import os
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.store.sqlite import SQLiteStore
from tests.conftest import SAMPLE, SAMPLE_URL, run
from tests.fakes import FakePostmark, Fault
from tests.helpers import (
    KEY_ENV,
    SIGNING_ENV,
    SIGNING_KEY,
    sample_issue,
    scheduled_in_folder,
    settings,
    yaml_config,
)


def one_line_error(result: object, *words: str) -> str:
    """The result of a command that failed as the README promises: exit 1, one line on
    stderr starting ``digest: error:``, no traceback."""
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == 1, (result.stdout, stderr)  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digest: error: "), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]
    return str(lines[0])


# --- 1. spreadsheet formulas never leave in an export --------------------------------------


def test_export_neutralises_cells_a_spreadsheet_would_run_and_the_store_keeps_them(
    in_tmp: Path,
) -> None:
    dangerous = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    store.upsert_subscribers(
        [(f"p{i}@example.org", name, {"note": name}) for i, name in enumerate(dangerous)]
        + [("=1+1@example.org", "Plain", {})],
        resubscribe=False,
    )
    assert store.get_subscriber("p0@example.org").name == dangerous[0]  # type: ignore[union-attr]
    store.close()
    assert run("subscribers", "export", "out.csv").exit_code == 0
    with open("out.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    names = {row[1] for row in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in names and "'+1+1" in names
    assert any(row[0] == "'=1+1@example.org" for row in rows)


# --- 2. an unterminated quote is refused, not swallowed -------------------------------------


def test_an_unterminated_quote_refuses_the_import_naming_the_row(in_tmp: Path) -> None:
    lines = ["email,name", "first@example.org,First", 'a@example.org,"Unclosed name']
    lines += [f"reader{i}@example.org,Reader {i}" for i in range(2500)]
    Path("list.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("subscribers", "import", "list.csv")
    one_line_error(result, "list.csv", "row 3", "quote")
    assert SQLiteStore(in_tmp / "digest.sqlite3").count_subscribers() == {}


# --- 5 and 6. issue files: no aliases, bounded size and depth ----------------------------


def alias_bomb() -> str:
    """Nine levels of YAML aliases: a few hundred bytes that expand to gigabytes."""
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}]")
    return "\n".join(bomb) + "\n"


def test_yaml_aliases_in_an_issue_file_are_refused(in_tmp: Path) -> None:
    Path("bomb.yaml").write_text(alias_bomb(), encoding="utf-8")
    one_line_error(run("check", "bomb.yaml"), "bomb.yaml:1", "anchors and aliases")


def test_deeply_nested_issue_file_gets_one_line(in_tmp: Path) -> None:
    Path("deep.yaml").write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    one_line_error(run("check", "deep.yaml"), "deep.yaml", "nested")


def test_an_oversized_issue_file_is_refused_before_it_is_parsed(in_tmp: Path) -> None:
    Path("big.yaml").write_text("subject: x\n" + "# padding\n" * 300_000, encoding="utf-8")
    one_line_error(run("check", "big.yaml"), "big.yaml", "limits.issue_file_bytes")


def test_too_many_experts_are_refused_with_the_limit(in_tmp: Path) -> None:
    expert = "      - {name: N, excerpt: E, read_more: 'https://example.org/#a'}\n"
    text = "subject: S\ndate: 2026-01-01\nsections:\n  - title: T\n    experts:\n" + expert * 2000
    Path("many.yaml").write_text(text, encoding="utf-8")
    one_line_error(run("check", "many.yaml"), "many.yaml", "limits.issue_experts")


# --- 9. one-line errors for broken storage and broken answers ------------------------------


@pytest.fixture
def configured(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    (in_tmp / "config.yaml").write_text(yaml_config(settings(in_tmp)), encoding="utf-8")
    return in_tmp


COMMANDS = [
    ("subscribers", "add", "ann@example.org"),
    ("subscribers", "list"),
    ("subscribers", "count"),
    ("subscribers", "import", "list.csv"),
    ("subscribers", "export", "out.csv"),
    ("subscribers", "remove", "ann@example.org"),
    ("schedule", "--list"),
    ("schedule", "ISSUE", "--at", "now"),
    ("unschedule", "ISSUE"),
    ("deliver",),
    ("status", "ISSUE"),
]


def command(words: tuple[str, ...], issue: Path) -> list[str]:
    return [str(issue) if w == "ISSUE" else w for w in words]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w))
def test_a_zero_length_or_corrupted_database_gets_one_line(
    configured: Path, words: tuple[str, ...]
) -> None:
    Path("list.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    issue = sample_issue(configured / "issues")
    database = configured / "digest.sqlite3"
    database.write_bytes(b"")
    one_line_error(run(*command(words, issue)), "digest.sqlite3")
    assert database.stat().st_size == 0  # never silently made a new, empty list
    database.write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    one_line_error(run(*command(words, issue)), "digest.sqlite3")


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w))
def test_a_database_locked_past_the_busy_timeout_gets_one_line(
    configured: Path, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.store.sqlite as sqlite_module

    Path("list.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    issue = sample_issue(configured / "issues")
    store = SQLiteStore(configured / "digest.sqlite3")
    store.upsert_subscribers([("ann@example.org", None, {})], resubscribe=False)
    store.close()
    original = sqlite_module.SQLiteStore.__init__

    def impatient(self: SQLiteStore, path: object, *, busy_seconds: float = 30.0) -> None:
        original(self, path, busy_seconds=0.2)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_module.SQLiteStore, "__init__", impatient)
    holder = sqlite3.connect(configured / "digest.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run(*command(words, issue))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    if result.exit_code != 0:  # reads still work beside a writer (WAL); writes must wait
        one_line_error(result)


def test_a_read_only_database_gets_one_line(configured: Path) -> None:
    store = SQLiteStore(configured / "digest.sqlite3")
    store.close()
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only files; the full-disk test covers root")
    (configured / "digest.sqlite3").chmod(0o444)
    one_line_error(run("subscribers", "add", "ann@example.org"), "read-only")


def test_a_provider_answer_with_a_broken_gzip_body_leaves_nothing_in_flight(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakePostmark() as fake:
        monkeypatch.setenv(KEY_ENV, fake.key)
        monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
        values = settings(in_tmp, "postmark", fake, batch_size=10, max_attempts=1)
        store, issue = scheduled_in_folder(in_tmp, values, 10)
        broken = gzip.compress(b'[{"ErrorCode": 0}]')[:-6] + b"garbage"
        fake.faults.append(
            Fault(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, broken)
        )
        result = run("deliver")
        assert "Traceback" not in result.stderr
        assert store.inflight_batches(issue.stem) == []
        counts = store.delivery_counts(issue.stem)
        assert counts == {"unknown": 10}  # sent, answer unreadable: never guessed


# --- 10. the preview answers only to its own host names -----------------------------------


def test_the_preview_refuses_other_host_headers(tmp_path: Path) -> None:
    from digest.compose import compose
    from digest.config import Settings
    from digest.issuefile import dump_issue, write_issue
    from digest.preview import create_app

    issue, path = compose([str(SAMPLE)], Settings(), url=SAMPLE_URL, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=False)
    app = create_app(path, None, watch_interval=0.05)
    with TestClient(app, base_url="http://127.0.0.1:8025") as client:
        assert client.get("/state").status_code == 200
        assert client.get("/state", headers={"Host": "localhost:8025"}).status_code == 200
        rebound = client.get("/state", headers={"Host": "attacker.example:8025"})
        assert rebound.status_code == 400
        assert client.get("/html", headers={"Host": "attacker.example"}).status_code == 400


# --- 9. a full disk and a read-only filesystem: every command, one line -------------------

FULL_DISK_SCRIPT = r"""
set -e
mount -t tmpfs -o size=3m tmpfs "$ROOT_DIR"
cp -r "$SEED_DIR"/. "$ROOT_DIR"/
cd "$ROOT_DIR"
dd if=/dev/zero of=filler bs=64k 2>/dev/null || true
if [ "$READ_ONLY" = 1 ]; then rm -f filler; mount -o remount,ro "$ROOT_DIR"; fi
i=0
while IFS= read -r line; do
  i=$((i + 1))
  set +e
  eval "$PYTHON -m digest $line" >"$OUT_DIR/$i.out" 2>"$OUT_DIR/$i.err"
  echo $? >"$OUT_DIR/$i.code"
  set -e
done <"$OUT_DIR/commands"
"""

ALL_COMMANDS = [
    *(" ".join(words) for words in COMMANDS),
    "compose SAMPLE --url https://example.org/x --force",
    "render ISSUE",
    "send ISSUE --test",
]


@pytest.mark.parametrize("read_only", [False, True], ids=["full-disk", "read-only"])
def test_every_command_on_a_full_or_read_only_disk_gets_one_line_and_no_traceback(
    tmp_path: Path, read_only: bool
) -> None:
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small filesystem")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {probe.stderr.decode().strip()}")
    seed, root, out = tmp_path / "seed", tmp_path / "root", tmp_path / "out"
    for folder in (seed, root, out):
        folder.mkdir()
    values = settings(seed)
    data = yaml_config(values).replace(str(seed), ".")
    (seed / "config.yaml").write_text(data, encoding="utf-8")
    (seed / "list.csv").write_text(
        "email,name\n" + "".join(f"n{i}@example.org,N {i}\n" for i in range(300)),
        encoding="utf-8",
    )
    issue = sample_issue(seed / "issues")
    shutil.copy(SAMPLE, seed / "sample.md")
    store = SQLiteStore(seed / "digest.sqlite3")
    store.upsert_subscribers([("ann@example.org", "Ann", {})], resubscribe=False)
    store.close()
    relative_issue = f"issues/{issue.name}"
    (out / "commands").write_text(
        "".join(
            c.replace("ISSUE", relative_issue).replace("SAMPLE", "sample.md") + "\n"
            for c in ALL_COMMANDS
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        SIGNING_ENV: SIGNING_KEY,
        "ROOT_DIR": str(root),
        "SEED_DIR": str(seed),
        "OUT_DIR": str(out),
        "PYTHON": sys.executable,
        "READ_ONLY": "1" if read_only else "0",
    }
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", FULL_DISK_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    failures = 0
    for number, line in enumerate(ALL_COMMANDS, start=1):
        code = int((out / f"{number}.code").read_text())
        err = (out / f"{number}.err").read_text()
        assert "Traceback" not in err, (line, err)
        if code != 0:
            failures += 1
            last = err.strip().splitlines()[-1] if err.strip() else ""
            reported = (
                last.startswith("digest: error: ")
                or "failed " in (out / f"{number}.out").read_text()
            )
            assert reported, (line, err)
    assert failures >= 6  # every command that writes was refused, and said so


# --- 3. encodings: detected with confidence, said aloud, or refused ------------------------

CHINESE = ["李明华", "王小红", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"]
TRADITIONAL = ["李明華", "王小紅", "張偉", "劉洋", "陳靜", "楊帆", "趙磊", "黃敏"]
JAPANESE = ["山田太郎", "田中花子", "佐藤健", "鈴木一郎", "高橋美咲", "伊藤翔", "渡辺愛", "中村優"]


def names_csv(names: list[str]) -> str:
    return "email,name\n" + "".join(f"reader{i}@example.org,{n}\n" for i, n in enumerate(names))


@pytest.mark.parametrize(
    ("encoding", "names"),
    [
        ("gb18030", CHINESE),
        ("big5", TRADITIONAL),
        ("shift_jis", JAPANESE),
        ("utf-16-le", CHINESE),
        ("utf-16-be", TRADITIONAL),
    ],
)
def test_chinese_and_japanese_names_import_intact_from_their_encodings(
    in_tmp: Path, encoding: str, names: list[str]
) -> None:
    Path("list.csv").write_bytes(names_csv(names).encode(encoding))
    result = run("subscribers", "import", "list.csv")
    assert result.exit_code == 0, result.output
    assert "encoding" in result.stderr  # the choice is said, so a wrong guess is seen
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    got = [store.get_subscriber(f"reader{i}@example.org") for i in range(len(names))]
    assert [s.name if s else None for s in got] == names


def test_an_encoding_can_be_named(in_tmp: Path) -> None:
    Path("list.csv").write_bytes(names_csv(CHINESE[:2]).encode("gb18030"))
    result = run("subscribers", "import", "list.csv", "--encoding", "gb18030")
    assert result.exit_code == 0, result.output
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    assert store.get_subscriber("reader0@example.org").name == "李明华"  # type: ignore[union-attr]
    one_line_error(run("subscribers", "import", "list.csv", "--encoding", "klingon"), "klingon")


def test_utf8_with_one_stray_windows_byte_is_refused_naming_the_line(in_tmp: Path) -> None:
    text = names_csv(["José", "Zoë", "李明"]).encode() + "x@example.org,Café – bar\n".encode(
        "cp1252"
    )
    Path("list.csv").write_bytes(text)
    one_line_error(run("subscribers", "import", "list.csv"), "line 5", "--encoding")
    assert SQLiteStore(in_tmp / "digest.sqlite3").count_subscribers() == {}


def test_a_file_whose_encoding_cannot_be_told_is_refused_naming_the_option(in_tmp: Path) -> None:
    noise = bytes(range(0x80, 0x100)) * 3
    Path("list.csv").write_bytes(b"email,name\nx@example.org," + noise + b"\n")
    one_line_error(run("subscribers", "import", "list.csv"), "--encoding")
    assert SQLiteStore(in_tmp / "digest.sqlite3").count_subscribers() == {}


# --- 4. the fast address check agrees with email-validator --------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.org",
        "Ann.Lee+news@Example.ORG",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a@localhost",
        "a@example",
        "a@-example.org",
        "a@example-.org",
        "a@exa_mple.org",
        "a@example.123",
        "a@example.test",
        "a@example.local",
        "a@example.invalid",
        "x" * 65 + "@example.org",
        "a@" + "b" * 64 + ".org",
        "a@" + ("b" * 60 + ".") * 5 + "org",
        "李@例子.中国",
        "josé@example.org",
        '"quoted"@example.org',
        "a b@example.org",
        "a@b@example.org",
        "=1+1@example.org",
        "a@[127.0.0.1]",
        "user@xn--bcher-kva.example",
        "user@bücher.example",
    ],
)
def test_the_fast_address_check_agrees_with_email_validator(address: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    from digest.addresses import normalise_email

    try:
        expected: str | None = str(
            validate_email(address, check_deliverability=False).normalized
        ).lower()
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalise_email(address)
    except EmailNotValidError:
        got = None
    assert got == expected


def test_a_file_that_breaks_part_way_through_the_stream_changes_nothing(in_tmp: Path) -> None:
    rows = "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(5000))
    Path("list.csv").write_bytes(("email,name\n" + rows + "late@example.org,Zoë\n").encode())
    one_line_error(run("subscribers", "import", "list.csv", "--encoding", "ascii"), "ascii")
    assert SQLiteStore(in_tmp / "digest.sqlite3").count_subscribers() == {}


def test_duplicates_across_a_long_file_are_merged_into_their_first_row(in_tmp: Path) -> None:
    rows = "".join(f"reader{i}@example.org,Reader {i},\n" for i in range(2500))
    again = "reader7@example.org,Someone Else,Oslo\nREADER7@example.org,,\n"
    Path("list.csv").write_text("email,name,city\n" + rows + again, encoding="utf-8")
    result = run("subscribers", "import", "list.csv")
    assert "added 2500, updated 0, unchanged 0, rejected 0" in result.stdout
    reader = SQLiteStore(in_tmp / "digest.sqlite3").get_subscriber("reader7@example.org")
    assert (
        reader is not None and reader.name == "Reader 7" and reader.attributes == {"city": "Oslo"}
    )


def test_a_disk_that_fills_mid_delivery_stops_with_one_line_and_loses_no_outcome(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's max_page_count gives the real SQLITE_FULL a full disk gives."""
    import collections

    import digest.store.sqlite as sqlite_module

    with FakePostmark() as fake:
        fake.keep_bodies = False
        monkeypatch.setenv(KEY_ENV, fake.key)
        monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
        values = settings(in_tmp, "postmark", fake, batch_size=50, delivery={"concurrency": 1})
        store, issue = scheduled_in_folder(in_tmp, values, 3000)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        original = sqlite_module.SQLiteStore.__init__

        def nearly_full(self: SQLiteStore, path: object, *, busy_seconds: float = 30.0) -> None:
            original(self, path, busy_seconds=busy_seconds)  # type: ignore[arg-type]
            self.db.execute(f"PRAGMA max_page_count = {pages + 40}")

        monkeypatch.setattr(sqlite_module.SQLiteStore, "__init__", nearly_full)
        stopped = run("deliver")  # progress lines, then the one error line
        assert stopped.exit_code == 1 and "Traceback" not in stopped.stderr
        assert stopped.stderr.strip().splitlines()[-1].startswith("digest: error: ")
        assert "disk is full" in stopped.stderr
        monkeypatch.setattr(sqlite_module.SQLiteStore, "__init__", original)
        sent_before = len(fake.deliveries)
        assert 0 < sent_before < 3000
        again = run("deliver")
        counts = store.delivery_counts(issue.stem)
        if counts.get("unknown"):  # a batch in flight when the disk filled: never called sent
            assert again.exit_code == 1 and "--resend-unknown" in again.stderr, again.output
        else:
            assert again.exit_code == 0, again.output
        assert counts.get("accepted", 0) + counts.get("unknown", 0) == 3000, counts
        twice = [a for a, n in collections.Counter(fake.delivered_to()).items() if n > 1]
        assert twice == []


def test_a_mistyped_database_path_makes_no_folders_and_no_empty_list(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "config.yaml").write_text(
        "delivery:\n  database: data/typo/digest.sqlite3\n", encoding="utf-8"
    )
    result = run("subscribers", "count")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the folder data/typo does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (in_tmp / "data").exists()


def test_a_folder_digest_may_not_write_in_says_how_to_give_it_the_folder(tmp_path: Path) -> None:
    """As in a container running as uid 10001 with a host folder someone else owns."""
    import shutil
    import subprocess
    import sys

    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run digest as another user")
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    result = subprocess.run(
        ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups",
         sys.executable, "-m", "digest", "subscribers", "count"],
        cwd=folder, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "Permission denied" in line and "digest runs as user 10001" in line
    assert "chown 10001 ." in line and "--user $(id -u):$(id -g)" in line
    assert "named volume" in line and not (folder / "digest.sqlite3").exists()


def test_yaml_aliases_in_config_yaml_are_refused_before_they_expand(in_tmp: Path) -> None:
    Path("config.yaml").write_text(alias_bomb(), encoding="utf-8")
    one_line_error(run("subscribers", "count"), "config.yaml:1", "anchors and aliases")


def test_an_issue_file_of_a_hundred_thousand_keys_is_refused_quickly(in_tmp: Path) -> None:
    lines = ["subject: x", "date: 2026-03-04", "extra:"]
    lines += [f"  k{i}: v" for i in range(100_000)]
    Path("keys.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Path("keys.yaml").stat().st_size < 2_000_000  # under the byte limit
    one_line_error(run("check", "keys.yaml"), "keys.yaml:", "more than 20,000 keys and values")


@pytest.mark.parametrize(
    ("line", "char"), [("subject: [Weekly] Harbors", "["), ("subject: *New* harbors", "*"),
                       ("subject: @desk picks", "@")],
)  # fmt: skip
def test_a_yaml_value_that_starts_with_syntax_says_to_quote_it(
    in_tmp: Path, line: str, char: str
) -> None:
    Path("quote.yaml").write_text(f"{line}\ndate: 2026-03-04\n", encoding="utf-8")
    one_line_error(run("check", "quote.yaml"), f"a value starting with {char} must be quoted")
