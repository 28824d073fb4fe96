"""Segments (issue 27): a small expression over typed subscriber fields, parsed (never
pasted into SQL), evaluated in the database, counted before scheduling, and recorded
with the issue; typed fields filled by imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.config import Settings
from digest.segments import SegmentError, parse_segment
from digest.store.segments import segment_json
from digest.store.sqlite import SQLiteStore
from tests.conftest import run
from tests.helpers import SIGNING_ENV, SIGNING_KEY, sample_issue, settings, yaml_config

AUDIENCE = {
    "fields": {
        "region": {"type": "choice", "choices": ["Asia", "Europe", "Americas"],
                   "columns": ["Region"]},
        "score": {"type": "number"},
        "vip": {"type": "boolean"},
        "joined_on": {"type": "date", "columns": ["OPTIN_TIME"]},
    },
    "segments": {"asia": "region = 'Asia'"},
}  # fmt: skip
FIELDS = Settings(audience=AUDIENCE).audience.segment_fields()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "empty"),
        ("country = 'Japan'", "no field 'country'"),
        ("region = 'Mars'", "'Mars' is not one of region's choices"),
        ("region > 'Asia'", "compare it with = or !="),
        ("score = 'high'", "score is a number field"),
        ("joined >= 2025-13-40", "is not a date"),
        ("region = 'Asia' and", "at its end: expected a field name"),
        ("region = 'Asia'; DROP TABLE subscribers", "cannot read ';"),
        ("(region = 'Asia'", "expected ')'"),
        ("region = 'Asia' score > 1", "expected 'and', 'or' or the end"),
        ("vip = maybe", "vip is a boolean field"),
    ],
)
def test_a_bad_segment_is_refused_with_what_is_wrong_and_where(text: str, said: str) -> None:
    with pytest.raises(SegmentError) as refused:
        parse_segment(text, FIELDS)
    assert said in str(refused.value)


def fill(store: SQLiteStore) -> None:
    store.upsert_subscribers(
        [("ann@example.org", "Ann", {"region": "Asia", "score": 5, "vip": True}),
         ("bob@example.org", "Bob", {"region": "Europe", "score": 2, "vip": False}),
         ("cy@example.org", "Cy", {"region": "Asia", "score": 1}),
         ("dee@example.org", None, {"score": 9}),
         ("o'hara@example.org", "O'Hara", {"region": "Americas"})],
        resubscribe=False,
    )  # fmt: skip


def count(store: SQLiteStore, text: str) -> int:
    return store.count_recipients("main", segment_json(text, parse_segment(text, FIELDS)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("region = 'Asia'", 2),
        ("region = 'Asia' and score >= 2", 1),
        ("region = 'Asia' or score > 8", 3),
        ("not (region = 'Asia')", 3),  # Bob, Dee (no region) and O'Hara
        ("region is not set", 1),
        ("region in ('Europe', 'Americas')", 2),
        ("vip = true", 1),
        ("name = 'O''Hara'", 1),
        ("joined >= 2000-01-01 and email != 'ann@example.org'", 4),
    ],
)
def test_a_segment_counts_the_same_on_both_stores(
    text: str, expected: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from digest.store import open_database

    for database in (str(tmp_path / "s.sqlite3"), request.getfixturevalue("postgres_url")):
        store = open_database(database)
        try:
            fill(store)  # type: ignore[arg-type]
            assert count(store, text) == expected, (database, text)  # type: ignore[arg-type]
        finally:
            store.close()


def test_schedule_to_a_segment_counts_it_records_it_and_delivers_to_it_only(
    in_tmp: Path,
) -> None:
    values = settings(in_tmp).model_copy(update={"audience": Settings(audience=AUDIENCE).audience})
    Path("config.yaml").write_text(yaml_config(values))
    fill(SQLiteStore(values.delivery.database))
    issue = sample_issue(in_tmp)
    scheduled = run("schedule", str(issue), "--at", "now", "--segment", "asia")
    assert scheduled.exit_code == 0, scheduled.output
    assert "to 2 subscriber(s) of main as of now, in the segment 'asia'" in scheduled.stdout
    store = SQLiteStore(values.delivery.database)
    [frozen] = store.list_schedules()
    assert json.loads(frozen.segment or "{}")["text"] == "region = 'Asia'"  # the ledger says
    assert run("deliver").exit_code == 0
    sent = sorted(p.read_text() for p in Path("outbox").glob("**/*.eml"))
    recipients = sorted(
        line.split("<")[-1].rstrip(">") for text in sent for line in text.splitlines()
        if line.startswith("To:")
    )  # fmt: skip
    assert recipients == ["ann@example.org", "cy@example.org"]


def test_schedule_refuses_a_bad_segment_in_one_line_and_schedules_nothing(in_tmp: Path) -> None:
    values = settings(in_tmp).model_copy(update={"audience": Settings(audience=AUDIENCE).audience})
    Path("config.yaml").write_text(yaml_config(values))
    issue = sample_issue(in_tmp)
    refused = run("schedule", str(issue), "--at", "now", "--segment", "region = 'Mars'")
    assert refused.exit_code == 1
    [line] = refused.stderr.strip().splitlines()
    assert "'Mars' is not one of region's choices" in line
    assert SQLiteStore(values.delivery.database).list_schedules() == []


def test_imported_columns_fill_typed_fields_and_a_bad_value_rejects_its_row(in_tmp: Path) -> None:
    values = settings(in_tmp).model_copy(update={"audience": Settings(audience=AUDIENCE).audience})
    Path("config.yaml").write_text(yaml_config(values))
    Path("list.csv").write_text(
        "email,Region,score,vip,OPTIN_TIME,team\n"
        "ann@example.org,Asia,5,yes,2024-03-02 10:11:12,blue\n"
        "bob@example.org,Mars,1,no,,\n"
        "cy@example.org,Europe,lots,no,,\n"
    )
    result = run("subscribers", "import", "list.csv")
    assert result.exit_code == 0, result.output
    assert (
        "row 3: region (column Region): 'Mars' is not one of Asia, Europe, Americas"
        in result.stdout
    )
    assert "row 4: score (column score): 'lots' is not a number" in result.stdout
    ann = SQLiteStore(values.delivery.database).get_subscriber("ann@example.org")
    assert ann is not None and ann.attributes == {
        "region": "Asia", "score": 5, "vip": True, "joined_on": "2024-03-02", "team": "blue",
    }  # fmt: skip


def test_unknown_columns_can_be_refused(in_tmp: Path) -> None:
    audience = dict(AUDIENCE, unknown_columns="refuse")
    values = settings(in_tmp).model_copy(update={"audience": Settings(audience=audience).audience})
    Path("config.yaml").write_text(yaml_config(values))
    Path("list.csv").write_text("email,Region,team\nann@example.org,Asia,blue\n")
    refused = run("subscribers", "import", "list.csv")
    assert refused.exit_code == 1 and "no field takes the column(s) team" in refused.stderr
    assert SQLiteStore(values.delivery.database).count_subscribers() == {}


def test_a_saved_segment_that_does_not_parse_is_a_config_error(in_tmp: Path) -> None:
    Path("config.yaml").write_text('audience:\n  segments:\n    bad: "region = 1"\n')
    result = run("newsletters")
    assert result.exit_code == 1 and "segments.bad" in result.stderr
    assert "no field 'region'" in result.stderr


def test_delivering_to_a_segment_never_loads_sqlalchemy(in_tmp: Path) -> None:
    """The segment's clause is made when the issue is scheduled: forming each batch
    reads it, and the deliver process stays as small and quick to start as without one
    (SQLAlchemy is about 15 MB and a third of a second)."""
    import subprocess
    import sys

    values = settings(in_tmp).model_copy(update={"audience": Settings(audience=AUDIENCE).audience})
    Path("config.yaml").write_text(yaml_config(values))
    fill(SQLiteStore(values.delivery.database))
    issue = sample_issue(in_tmp)
    assert run("schedule", str(issue), "--at", "now", "--segment", "asia").exit_code == 0
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "sys.argv = ['digest', 'deliver']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded sqlalchemy' if 'sqlalchemy' in sys.modules else 'no sqlalchemy')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=in_tmp,
        env={**__import__("os").environ, SIGNING_ENV: SIGNING_KEY},
    )  # fmt: skip
    assert done.stdout.strip().endswith("no sqlalchemy"), done.stdout + done.stderr
    assert len(list(Path("outbox").glob("**/*.eml"))) == 2  # Ann and Cy, in Asia
