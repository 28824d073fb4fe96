"""Subscribers: CSV import rules, add/remove/forget, and the store underneath."""

from __future__ import annotations

import codecs
import sqlite3
from pathlib import Path

import pytest

from digest.store.migrate import SCHEMA_VERSION
from digest.store.sqlite import MIGRATIONS, SQLiteStore
from digest.subscribers import ImportError_, import_csv
from tests.conftest import run


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "digest.sqlite3")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_store_is_wal_and_at_the_latest_schema(store: SQLiteStore) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_store_from_a_newer_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(Exception, match="newer digest"):
        SQLiteStore(path)


def test_import_reports_added_rejected_rows_and_merges_duplicates(
    store: SQLiteStore, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path / "list.csv",
        "Email,Name,City\nann@example.org,Ann,Oslo\nBOB@Example.ORG,Bob,\nnot-an-address,X,\n,Nobody,\nann@example.org,,Bergen\n",
    )
    report = import_csv(store, csv_file)
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    assert [row for row, _ in report.rejected] == [4, 5]
    assert "'not-an-address' is not a valid address" in report.rejected[0][1]
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and ann.name == "Ann" and ann.attributes == {"City": "Bergen"}
    assert store.get_subscriber("bob@example.org") is not None  # normalised to lower case


def test_import_reads_a_bom_semicolons_and_windows_encodings(
    store: SQLiteStore, tmp_path: Path
) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "email;name\nzoe@example.org;Zoë Øster\n".encode())
    assert import_csv(store, bom).added == 1
    sub = store.get_subscriber("zoe@example.org")
    assert sub is not None and sub.name == "Zoë Øster"
    legacy = write(tmp_path / "cp1252.csv", "email,name\nrene@example.org,René Müller\n", "cp1252")
    report = import_csv(store, legacy)
    assert report.encoding == "cp1252" and report.added == 1
    rene = store.get_subscriber("rene@example.org")
    assert rene is not None and rene.name == "René Müller"
    utf16 = write(tmp_path / "utf16.csv", "email,name\nyu@example.org,Yū\n", "utf-16")
    assert import_csv(store, utf16).added == 1


def test_unsubscribed_bounced_and_complained_stay_so_unless_resubscribe(
    store: SQLiteStore, tmp_path: Path
) -> None:
    csv_file = write(tmp_path / "list.csv", "email\na@example.org\nb@example.org\nc@example.org\n")
    import_csv(store, csv_file)
    store.set_status("a@example.org", "unsubscribed")
    store.set_status("b@example.org", "bounced")
    store.set_status("c@example.org", "complained")
    report = import_csv(store, csv_file)
    assert (report.added, report.updated, report.unchanged, report.kept) == (0, 0, 3, 3)
    assert store.count_subscribers() == {"unsubscribed": 1, "bounced": 1, "complained": 1}
    again = import_csv(store, csv_file, resubscribe=True)
    assert again.updated == 3 and store.count_subscribers() == {"active": 3}


def test_forget_deletes_personal_data_and_blocks_accidental_re_import(
    store: SQLiteStore, tmp_path: Path
) -> None:
    csv_file = write(tmp_path / "list.csv", "email,name\ngone@example.org,Gone Person\n")
    import_csv(store, csv_file)
    assert store.forget("gone@example.org")
    assert store.get_subscriber("gone@example.org") is None
    dump = "\n".join(store.db.iterdump())
    assert "gone@example.org" not in dump and "Gone Person" not in dump
    report = import_csv(store, csv_file)
    assert report.added == 0 and report.rejected == [
        (
            2,
            "gone@example.org was removed with --forget; import with --resubscribe to add them back",
        )
    ]
    assert import_csv(store, csv_file, resubscribe=True).added == 1


def test_a_failed_import_changes_nothing(store: SQLiteStore, tmp_path: Path) -> None:
    import_csv(store, write(tmp_path / "a.csv", "email\nfirst@example.org\n"))
    # a quote never closed: the csv reader fails on the runaway field after reading a good row
    broken = write(
        tmp_path / "b.csv",
        'email,name\nnew@example.org,New\n"unterminated@example.org,' + "x" * 200_000 + "\n",
    )
    with pytest.raises(
        ImportError_,
        match=r"b\.csv: row \d+ \(line \d+\) does not parse \(field larger than field limit",
    ):
        import_csv(store, broken)
    assert [s.email for s in store.iter_subscribers()] == ["first@example.org"]
    with pytest.raises(ImportError_, match="no email column"):
        import_csv(store, write(tmp_path / "c.csv", "address,name\nx@example.org,X\n"))
    assert store.count_subscribers() == {"active": 1}


def test_cli_import_add_remove_list_count_export(in_tmp: Path) -> None:
    write(in_tmp / "list.csv", "email,name\nann@example.org,Ann\nbad,Bad\n")
    imported = run("subscribers", "import", "list.csv")
    assert imported.exit_code == 0
    assert imported.stdout.splitlines() == [
        "row 3: 'bad' is not a valid address (An email address must have an @-sign.)",
        "added 1, updated 0, unchanged 0, rejected 1",
    ]
    assert (
        run("subscribers", "add", "Bob@Example.org", "--name", "Bob").stdout
        == "added bob@example.org\n"
    )
    assert (
        run("subscribers", "remove", "ann@example.org").stdout == "unsubscribed ann@example.org\n"
    )
    refused = run("subscribers", "add", "ann@example.org")
    assert refused.exit_code == 1 and "pass --resubscribe" in refused.stderr
    assert (
        run("subscribers", "list", "--status", "active").stdout == "bob@example.org\tactive\tBob\n"
    )
    assert "active\t1\nunsubscribed\t1" in run("subscribers", "count").stdout
    assert run("subscribers", "export", "out.csv").exit_code == 0
    exported = (in_tmp / "out.csv").read_text().splitlines()
    assert exported[0] == "email,name,status,newsletters,created_at,updated_at"
    assert exported[1].startswith("ann@example.org,Ann,unsubscribed,,")  # left: on none
    assert exported[2].startswith("bob@example.org,Bob,active,main,")
    forgot = run("subscribers", "remove", "bob@example.org", "--forget")
    assert forgot.stdout == "forgot bob@example.org\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["subscribers", "import", "missing.csv"], "missing.csv: no such file"),
        (["subscribers", "add", "not-an-address"], "'not-an-address' is not a valid email address"),
        (["subscribers", "remove", "nobody@example.org"], "nobody@example.org is not a subscriber"),
    ],
)
def test_cli_bad_input_is_one_line(in_tmp: Path, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1


def test_a_first_schema_database_migrates_with_its_list_and_ledger(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    now = "2026-11-01T07:00:00.000+00:00"
    db.execute(
        "INSERT INTO subscribers (id, email, name, status, attributes, created_at, updated_at)"
        " VALUES (1, 'ann@example.org', 'Ann', 'active', '{}', ?, ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO issues (slug, path, source_hash, send_at, status, rendered, created_at)"
        " VALUES ('old-issue', 'issues/old-issue.yaml', 'h', ?, 'sent', '{\"x\": 1}', ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO deliveries (issue, subscriber_id, status, updated_at)"
        " VALUES ('old-issue', 7, 'accepted', ?)",  # someone forgotten since, with id 7
        (now,),
    )
    db.close()
    store = SQLiteStore(path)
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and ann.id == 1 and len(ann.uid) >= 16
    issue = store.get_schedule("old-issue")
    assert issue is not None and issue.rendered_json == '{"x": 1}' and issue.status == "sent"
    assert store.delivery_counts("old-issue") == {"accepted": 1}  # the ledger carried over
    assert store.delivery_timeline("old-issue") == [("2026-11-01T07:00", "accepted", 1)]
    store.upsert_subscribers([("bob@example.org", None, {})], resubscribe=False)
    bob = store.get_subscriber("bob@example.org")
    assert bob is not None and bob.id > 7  # never an id the ledger already names
    assert len(store.list_identity()) == 32


def test_processes_opening_a_new_database_at_the_same_moment_all_get_it(tmp_path: Path) -> None:
    """Several `digest serve` workers (or deliver processes) started together on a list
    that does not exist yet: each may find the schema missing, and all must end up
    with it, none failing on a table another one made a moment before."""
    script = (
        "import sys, time\n"
        "from digest.store.sqlite import SQLiteStore\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "SQLiteStore(sys.argv[1]).close()\n"
    )
    import subprocess
    import sys
    import time

    for attempt in range(3):
        path = tmp_path / f"new-{attempt}.sqlite3"
        start = time.time() + 1.5
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path), repr(start)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), [e for e in errors if e][:1]
        assert SQLiteStore(path).schema_version() == SCHEMA_VERSION


def test_quoted_fields_import_whole_as_rfc_4180_writes_them(
    store: SQLiteStore, tmp_path: Path
) -> None:
    rows = "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(300))  # a long head
    csv_file = write(
        tmp_path / "list.csv",
        "email,name\n" + rows + 'jack@example.org,"Jack ""JJ"" O\'Brien, Jr."\n'
        'semi@example.org,"Semi; Colon"\n',
    )
    report = import_csv(store, csv_file)
    assert report.added == 302 and report.rejected == []
    jack = store.get_subscriber("jack@example.org")
    assert jack is not None and jack.name == 'Jack "JJ" O\'Brien, Jr.'
    semi = store.get_subscriber("semi@example.org")
    assert semi is not None and semi.name == "Semi; Colon"


@pytest.mark.parametrize(
    ("line", "why"),
    [("jack@example.org,Jack O'Brien, Jr.", "row 3 has 3 fields"),
     ('jack@example.org,"Jack" O\'Brien', "row 3")],
)  # fmt: skip
def test_a_row_that_does_not_parse_cleanly_refuses_the_import_rather_than_change_it(
    store: SQLiteStore, tmp_path: Path, line: str, why: str
) -> None:
    csv_file = write(tmp_path / "list.csv", f"email,name\nann@example.org,Ann\n{line}\n")
    with pytest.raises(ImportError_, match=why):
        import_csv(store, csv_file)
    assert store.count_subscribers() == {}


def test_an_exported_file_imports_back_to_the_same_addresses_and_names(in_tmp: Path) -> None:
    people = [("-jack@example.org", "=HYPERLINK(1)"), ("+plus@example.org", "@mention"),
              ("=sum@example.org", "-minus"), ("plain@example.org", "Plain")]  # fmt: skip
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    store.upsert_subscribers([(e, n, {}) for e, n in people], resubscribe=False)
    store.close()
    assert run("subscribers", "export", "out.csv").exit_code == 0
    assert "'-jack@example.org" in (in_tmp / "out.csv").read_text(encoding="utf-8")
    again = SQLiteStore(in_tmp / "again.sqlite3")
    report = import_csv(again, in_tmp / "out.csv")
    assert report.rejected == [] and report.added == 4
    assert {(s.email, s.name) for s in again.iter_subscribers()} == set(people)
    again.close()


def test_removing_a_subscriber_records_who_unsubscribed_them_and_keeps_a_bounce(
    in_tmp: Path,
) -> None:
    write(in_tmp / "list.csv", "email\nann@example.org\nbob@example.org\n")
    assert run("subscribers", "import", "list.csv").exit_code == 0
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    store.set_status("bob@example.org", "bounced")
    store.close()
    assert (
        run("subscribers", "remove", "ann@example.org").stdout == "unsubscribed ann@example.org\n"
    )
    kept = run("subscribers", "remove", "bob@example.org")
    assert kept.exit_code == 0 and kept.stdout == "bob@example.org is bounced already\n"
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    assert store.get_subscriber("bob@example.org").status == "bounced"  # type: ignore[union-attr]
    events = store.events_for("ann@example.org")
    assert [(e.kind, e.provider) for e in events] == [("unsubscribe", "operator")]


def test_a_process_stopped_while_making_a_new_list_leaves_no_half_made_database(
    tmp_path: Path,
) -> None:
    """Making a new list takes a moment (its schema is built by the migrations): a
    process stopped in that moment (a `digest serve` terminated at start-up) must not
    leave an empty file that the next command refuses as "not a digest database"."""
    import subprocess
    import sys

    path = tmp_path / "new.sqlite3"
    script = (
        "import sys\n"
        "def slow(connect):\n"
        "    connect().execute('PRAGMA journal_mode')  # the file is made, the schema not yet\n"
        "    open(sys.argv[2], 'w').close()\n"
        "    raise SystemExit(0)  # stopped, as serve is by SIGTERM, closing what it opened\n"
        "import digest.store.core as core\n"
        "core.upgrade_sqlite = slow\n"
        "from digest.store.sqlite import SQLiteStore\n"
        "SQLiteStore(sys.argv[1])\n"
    )
    started = tmp_path / "migrating"
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(started)], capture_output=True, timeout=60
    )
    assert started.exists() and done.returncode == 0, done.stderr
    assert not path.exists(), "a half-made database was left where the list belongs"
    store = SQLiteStore(path)  # the next command makes the list afresh
    assert store.schema_version() == SCHEMA_VERSION
    store.close()
