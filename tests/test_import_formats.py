"""Other tools' exports imported as they were (issue 27): names from Mailchimp's "First
Name"/"Last Name", and the people an export says had left (Mailchimp's unsubscribed and
cleaned files, Substack's email_disabled, Buttondown's type, listmonk's blocklisted)
come in unsubscribed or bounced: never active, never mailed."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.store.sqlite import SQLiteStore
from tests.conftest import FIXTURES, run

EXPORTS = FIXTURES / "exports"


def status_of(email: str) -> tuple[str, str | None]:
    store = SQLiteStore(Path("digest.sqlite3"))
    try:
        sub = store.get_subscriber(email)
        assert sub is not None, email
        return sub.status, sub.name
    finally:
        store.close()


def test_a_mailchimp_audience_comes_in_with_names_and_its_leavers_left(in_tmp: Path) -> None:
    first = run("subscribers", "import", str(EXPORTS / "mailchimp-subscribed.csv"))
    assert first.exit_code == 0, first.output
    assert "read as a Mailchimp export" in first.stdout
    assert status_of("ingrid.solberg@harbor.example") == ("active", "Ingrid Solberg")
    store = SQLiteStore(Path("digest.sqlite3"))
    ingrid = store.get_subscriber("ingrid.solberg@harbor.example")
    store.close()
    assert ingrid is not None and str(ingrid.created_at).startswith("2024-03-02")  # OPTIN_TIME
    left = run("subscribers", "import", str(EXPORTS / "mailchimp-unsubscribed.csv"))
    assert "1 came in as the file says they left" in left.stdout
    assert status_of("mara.lindqvist@harbor.example") == ("unsubscribed", "Mara Lindqvist")
    run("subscribers", "import", str(EXPORTS / "mailchimp-cleaned.csv"))
    assert status_of("old.box@harbor.example")[0] == "bounced"
    counts = run("subscribers", "count").stdout
    assert "active\t2" in counts and "unsubscribed\t1" in counts and "bounced\t1" in counts


@pytest.mark.parametrize(
    ("export", "kind", "stays", "left"),
    [
        ("substack.csv", "a Substack export", "tomas@harbor.example", "hana@harbor.example"),
        ("buttondown.csv", "a Buttondown export", "omar@harbor.example", "lucia@harbor.example"),
        ("listmonk.csv", "a listmonk export", "ravi@harbor.example", "erik@harbor.example"),
    ],
)
def test_each_tools_export_is_recognised_and_its_leavers_are_never_active(
    in_tmp: Path, export: str, kind: str, stays: str, left: str
) -> None:
    result = run("subscribers", "import", str(EXPORTS / export))
    assert result.exit_code == 0, result.output
    assert f"read as {kind}" in result.stdout
    assert status_of(stays)[0] == "active"
    assert status_of(left)[0] == "unsubscribed"


def test_an_export_of_ours_imports_back_with_every_status(in_tmp: Path) -> None:
    run("subscribers", "import", str(EXPORTS / "mailchimp-subscribed.csv"))
    run("subscribers", "import", str(EXPORTS / "mailchimp-unsubscribed.csv"))
    assert run("subscribers", "export", "all.csv").exit_code == 0
    Path("digest.sqlite3").unlink()
    for extra in Path().glob("digest.sqlite3*"):
        extra.unlink()
    result = run("subscribers", "import", "all.csv")
    assert result.exit_code == 0, result.output
    assert status_of("mara.lindqvist@harbor.example")[0] == "unsubscribed"
    assert status_of("kofi.oduya@harbor.example") == ("active", "Kofi Oduya")


def test_export_writes_every_field_with_a_column_per_attribute(in_tmp: Path) -> None:
    Path("list.csv").write_text(
        "email,name,city,plan\nann@example.org,Ann,Oslo,\nbo@example.org,Bo,,pro\n"
    )
    run("subscribers", "import", "list.csv")
    run("subscribers", "add", "cy@example.org")
    assert run("subscribers", "export", "out.csv").exit_code == 0
    lines = Path("out.csv").read_text().splitlines()
    assert lines[0] == "email,name,status,newsletters,created_at,updated_at,city,plan"
    assert lines[1].startswith("ann@example.org,Ann,active,main,") and lines[1].endswith(",Oslo,")
    assert lines[2].endswith(",,pro") and lines[3].endswith(",,")
