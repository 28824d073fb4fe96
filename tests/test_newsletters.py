"""Several newsletters (issue 27): declared in config.yaml, a status per subscriber and
newsletter, an issue for one newsletter reaching its subscribers only, with its own
List-Id, and an unsubscribe link that leaves that newsletter only."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from digest.config import Settings
from digest.delivery import QuietProgress, deliver_due
from digest.errors import IssueFileError
from digest.providers import make_http_client
from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from tests.conftest import run
from tests.helpers import SIGNING_ENV, SIGNING_KEY, sample_issue, settings, yaml_config

ALERTS = {"alerts": {"name": "Harbor Alerts", "description": "One email per new conversation"}}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


def two_newsletters(folder: Path) -> Settings:
    base = settings(folder)
    return base.model_copy(update={"newsletters": Settings(newsletters=ALERTS).newsletters})


def issue_for(folder: Path, newsletter: str | None, name: str) -> Path:
    """The sample issue, under another file name, for ``newsletter``."""
    composed = sample_issue(folder / name)
    path = composed.with_name(f"{name}-{composed.name}")  # the slug: one per issue
    composed.rename(path)
    if newsletter is not None:
        yaml = YAML()
        data = yaml.load(path.read_text(encoding="utf-8"))
        data.insert(1, "newsletter", newsletter)
        with path.open("w", encoding="utf-8") as handle:
            yaml.dump(data, handle)
    return path


def delivered_to(values: Settings, store: SQLiteStore, path: Path) -> dict[str, object]:
    """Schedule ``path`` now, deliver it to the outbox: each recipient's message."""
    outbox = Path(values.provider.outbox_dir)
    before = set(outbox.glob("**/*.eml")) if outbox.exists() else set()
    schedule(store, path, values, "now", "UTC", dt.datetime.now(dt.UTC))
    with make_http_client(values) as client:
        deliver_due(store, values, client=client, progress=QuietProgress())
    messages = {}
    for eml in set(outbox.glob("**/*.eml")) - before:
        message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        messages[str(message["To"]).split("<")[-1].rstrip(">")] = message
    return messages


def test_each_newsletter_reaches_only_its_own_subscribers(tmp_path: Path) -> None:
    values = two_newsletters(tmp_path)
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers([("ann@example.org", "Ann", {})], resubscribe=False)
    store.upsert_subscribers(
        [("bob@example.org", "Bob", {})], resubscribe=False, newsletters=("main", "alerts")
    )
    store.upsert_subscribers(
        [("cy@example.org", "Cy", {})], resubscribe=False, newsletters=("alerts",)
    )
    weekly = delivered_to(values, store, issue_for(tmp_path, None, "weekly"))
    alerts = delivered_to(values, store, issue_for(tmp_path, "alerts", "alerts"))
    assert sorted(weekly) == ["ann@example.org", "bob@example.org"]
    assert sorted(alerts) == ["bob@example.org", "cy@example.org"]
    # each newsletter names itself to mailbox providers, in its From and its footer
    assert weekly["ann@example.org"]["List-Id"] != alerts["cy@example.org"]["List-Id"]
    assert "Harbor Alerts" in str(alerts["cy@example.org"]["List-Id"])
    text = alerts["cy@example.org"].get_body(("plain",)).get_content()
    assert "because you subscribed to Harbor Alerts" in text
    # the unsubscribe link of an alert leaves the alerts only
    unsubscribe = str(alerts["cy@example.org"]["List-Unsubscribe"])
    assert "newsletter=alerts" in unsubscribe
    assert "Manage your subscription: https://example.org/unsubscribe/" in text


def test_leaving_one_newsletter_keeps_the_other(tmp_path: Path) -> None:
    values = two_newsletters(tmp_path)
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(
        [("bob@example.org", "Bob", {}), ("cy@example.org", "Cy", {})],
        resubscribe=False, newsletters=("main", "alerts"),
    )  # fmt: skip
    bob = store.get_subscriber("bob@example.org")
    assert bob is not None
    store.request_unsubscribe(bob.uid, "one-click", "alerts")
    store.apply_inbox()
    assert sorted(delivered_to(values, store, issue_for(tmp_path, "alerts", "a"))) == [
        "cy@example.org"
    ]
    assert sorted(delivered_to(values, store, issue_for(tmp_path, None, "w"))) == [
        "bob@example.org", "cy@example.org",
    ]  # fmt: skip
    assert store.count_subscribers() == {"active": 2}  # still on the list, for the weekly


def test_a_single_newsletter_install_keeps_its_links_and_one_click_leaves_the_list(
    tmp_path: Path,
) -> None:
    values = settings(tmp_path)
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers([("ann@example.org", "Ann", {})], resubscribe=False)
    [message] = delivered_to(values, store, issue_for(tmp_path, None, "w")).values()
    assert "newsletter=" not in str(message["List-Unsubscribe"])  # type: ignore[index]


def test_an_issue_for_an_undeclared_newsletter_is_refused_by_name(
    tmp_path: Path,
) -> None:
    values = two_newsletters(tmp_path)
    store = SQLiteStore(values.delivery.database)
    path = issue_for(tmp_path, "asia", "asia")
    with pytest.raises(IssueFileError) as refused:
        schedule(store, path, values, "now", "UTC", dt.datetime.now(dt.UTC))
    assert "newsletter 'asia' is not declared" in str(refused.value)
    assert "main, alerts" in str(refused.value)


def test_config_refuses_a_bad_newsletter_with_its_line(in_tmp: Path) -> None:
    Path("config.yaml").write_text(
        "newsletters:\n  alerts:\n    name: Alerts\n    from: not an address\n"
    )
    result = run("newsletters")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("digest: error: ") and "config.yaml:4" in line
    assert "alerts.from" in line and "email address" in line


def test_newsletters_lists_each_with_its_subscribers(in_tmp: Path) -> None:
    values = two_newsletters(in_tmp)
    Path("config.yaml").write_text(yaml_config(values))
    assert run("subscribers", "add", "ann@example.org").exit_code == 0
    added = run("subscribers", "add", "bob@example.org", "--newsletter", "alerts")
    assert added.exit_code == 0, added.output
    out = run("newsletters").stdout
    assert "main (default): The Conversation Digest, 1 subscribed" in out
    assert "alerts: Harbor Alerts, 1 subscribed" in out
    refused = run("subscribers", "add", "cy@example.org", "--newsletter", "asia")
    assert refused.exit_code == 1 and "newsletter 'asia' is not declared" in refused.stderr


@pytest.mark.filterwarnings("ignore:Unnamed CHECK constraint")  # the downgrade to 0011 only
def test_a_database_from_before_newsletters_has_everyone_on_the_default(tmp_path: Path) -> None:
    """Migrating: active people are subscribed to `main`, the others recorded as having
    left it, and nobody's status changes."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from digest.store.migrate import MIGRATIONS_FOLDER

    path = tmp_path / "old.sqlite3"
    store = SQLiteStore(path)
    store.upsert_subscribers(
        [("ann@example.org", "Ann", {}), ("bob@example.org", "Bob", {})], resubscribe=False
    )
    store.set_status("bob@example.org", "unsubscribed")
    store.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:  # back to the schema before newsletters
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_FOLDER))
        config.attributes["connection"] = connection
        command.downgrade(config, "0011")
        connection.exec_driver_sql("PRAGMA user_version = 11")
        assert "subscriptions" not in sa.inspect(connection).get_table_names()
    engine.dispose()
    store = SQLiteStore(path)  # opening migrates
    rows = store.db.execute(
        "SELECT s.email, s.status, x.newsletter, x.status AS sub FROM subscribers s"
        " JOIN subscriptions x ON x.subscriber_id = s.id ORDER BY s.email"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("ann@example.org", "active", "main", "subscribed"),
        ("bob@example.org", "unsubscribed", "main", "unsubscribed"),
    ]


def test_status_counts_what_is_left_of_the_issues_own_newsletter(tmp_path: Path) -> None:
    values = two_newsletters(tmp_path)
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers([(f"w{i}@example.org", None, {}) for i in range(5)], resubscribe=False)
    store.upsert_subscribers(
        [("cy@example.org", "Cy", {})], resubscribe=False, newsletters=("alerts",)
    )
    path = issue_for(tmp_path, "alerts", "later")
    frozen = schedule(store, path, values, "2030-01-01 08:00", "UTC", dt.datetime.now(dt.UTC))
    assert store.remaining(frozen.slug) == 1  # Cy, not the weekly's five
    assert store.count_recipients("alerts") == 1 and store.count_recipients("main") == 5


def test_an_issues_report_counts_unsubscribes_from_its_newsletter_not_another(
    tmp_path: Path,
) -> None:
    from digest.report import as_text, make_report

    values = two_newsletters(tmp_path)
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(
        [("bob@example.org", "Bob", {}), ("cy@example.org", "Cy", {}),
         ("dee@example.org", "Dee", {})],
        resubscribe=False, newsletters=("main", "alerts"),
    )  # fmt: skip
    path = issue_for(tmp_path, "alerts", "a")
    delivered_to(values, store, path)
    slug = path.stem
    for address, newsletter in (("bob@example.org", "alerts"), ("cy@example.org", "main"),
                                ("dee@example.org", None)):  # fmt: skip
        sub = store.get_subscriber(address)
        assert sub is not None
        store.request_unsubscribe(sub.uid, "one-click", newsletter)
    store.apply_inbox()
    report = make_report(store, slug, slug)
    assert report.unsubscribes == {"one-click": 2}  # from the alerts, and from everything
    assert "sent to: newsletter alerts" in as_text(report)


def test_a_newsletter_can_have_templates_of_its_own(tmp_path: Path) -> None:
    from digest.build import build
    from digest.errors import ConfigError
    from digest.render.templates import bundled_templates

    own = tmp_path / "alert-templates"
    own.mkdir()
    for name in ("email.mjml.j2", "email.txt.j2"):
        text = (bundled_templates() / name).read_text(encoding="utf-8")
        if name.endswith(".txt.j2"):
            text = "BREAKING: a new conversation\n" + text
        (own / name).write_text(text, encoding="utf-8")
    values = Settings(newsletters={"alerts": {"name": "Alerts", "templates": str(own)}})
    alert = build(issue_for(tmp_path, "alerts", "a"), values)
    weekly = build(issue_for(tmp_path, None, "w"), values)
    assert alert.sample.text.startswith("BREAKING: a new conversation")
    assert "BREAKING" not in weekly.sample.text
    broken = Settings(newsletters={"alerts": {"templates": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError) as refused:
        build(issue_for(tmp_path, "alerts", "b"), broken)
    assert "the alerts newsletter's templates" in str(refused.value)


def test_settings_for_one_newsletter_still_know_every_newsletter() -> None:
    """Rendering an alert works on settings with the alerts in place of the default; they
    must still count and find every declared newsletter (the unsubscribe link names the
    newsletter only where there are several)."""
    values = Settings(newsletters=ALERTS)
    alert = values.for_newsletter("alerts")
    assert alert.newsletter.name == "Harbor Alerts"
    assert alert.newsletter_keys == ("main", "alerts")
    assert alert.newsletter_for("main").name == "The Conversation Digest"
    assert alert.newsletter_for("alerts").name == "Harbor Alerts"
