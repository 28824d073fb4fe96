"""The editors' desk in process (Starlette's TestClient) over a real SQLite store and real
issue files: signing in, sessions and CSRF, the roles, saving (comments kept, stale saves
refused), test sends to the outbox, scheduling, and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.config import Settings
from digest.desk.app import create_desk_app
from digest.desk.passwords import hash_password
from digest.desk.settings import Desk
from digest.store.sqlite import SQLiteStore
from tests.conftest import FIXTURES, run
from tests.helpers import SIGNING_KEY, sample_issue
from tests.helpers import settings as helper_settings
from tests.pages import PageServer

DESK = "http://127.0.0.1:8027"
PASSWORD = "correct horse battery"
ROLES = ("contributor", "editor", "admin")


class Desk_:
    def __init__(self, folder: Path, values: Settings, store: SQLiteStore) -> None:
        self.folder, self.settings, self.store = folder, values, store
        self.issue = sample_issue(folder / "issues")
        self.name = self.issue.stem

    def client(self) -> TestClient:
        return TestClient(create_desk_app(self.settings, self.store), base_url=DESK)

    def signed_in(self, role: str) -> TestClient:
        client = self.client()
        answer = client.post(
            "/sign-in", data={"email": f"{role}@example.org", "password": PASSWORD}
        )
        assert answer.status_code == 200 and "Sign out" in answer.text, answer.text[-500:]
        return client

    def form_of(self, client: TestClient) -> tuple[str, str]:
        page = client.get(f"/issues/{self.name}").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        base = re.search(r'name="base" value="([^"]+)"', page)
        assert csrf and base, page[-800:]
        return csrf.group(1), base.group(1)


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk_]:
    monkeypatch.setenv("DIGEST_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.chdir(tmp_path)
    values = helper_settings(tmp_path)
    values = values.model_copy(
        update={
            "compose": values.compose.model_copy(update={"issues_dir": str(tmp_path / "issues")}),
            "unsubscribe": values.unsubscribe.model_copy(
                update={"signing_key_env": "DIGEST_SIGNING_KEY"}
            ),
        }
    )
    store = SQLiteStore(values.delivery.database)
    hashed = hash_password(PASSWORD)
    for role in ROLES:
        store.add_user(f"{role}@example.org", role.title(), role, hashed)
    yield Desk_(tmp_path, values, store)
    store.close()


def test_the_same_refusal_for_an_unknown_address_and_a_wrong_password(desk: Desk_) -> None:
    client = desk.client()
    unknown = client.post("/sign-in", data={"email": "nobody@example.org", "password": PASSWORD})
    wrong = client.post(
        "/sign-in", data={"email": "editor@example.org", "password": "not it at all"}
    )
    assert unknown.status_code == wrong.status_code == 400
    assert unknown.text.replace("nobody@example.org", "X") == wrong.text.replace(
        "editor@example.org", "X"
    )
    assert "digest_desk" not in client.cookies


def test_signing_in_sets_a_guarded_cookie_and_starts_a_new_session(desk: Desk_) -> None:
    client = desk.client()
    client.cookies.set("digest_desk", "planted-by-someone-else")
    answer = client.post(
        "/sign-in",
        data={"email": "editor@example.org", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    token = re.search(r"digest_desk=([^;]+)", cookie)
    assert token and token.group(1) != "planted-by-someone-else"
    secure = desk.settings.model_copy(update={"desk": Desk(url="https://desk.example.org")})
    with TestClient(create_desk_app(secure, desk.store), base_url="https://desk.example.org") as c:
        answer = c.post(
            "/sign-in",
            data={"email": "editor@example.org", "password": PASSWORD},
            follow_redirects=False,
        )
        assert "Secure" in answer.headers["set-cookie"]


def test_signing_out_ends_the_session_on_the_server(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    token = client.cookies["digest_desk"]
    csrf, _ = desk.form_of(client)
    client.post("/sign-out", data={"csrf": csrf})
    replay = desk.client()
    replay.cookies.set("digest_desk", token)
    assert replay.get("/", follow_redirects=False).headers["location"] == "/sign-in"


def test_a_form_without_the_csrf_token_or_from_another_origin_is_refused(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    csrf, base = desk.form_of(client)
    before = desk.issue.read_bytes()
    forged = {"base": base, "subject": "Forged"}
    assert client.post(f"/issues/{desk.name}", data=forged).status_code == 403
    assert (
        client.post(
            f"/issues/{desk.name}",
            data=forged | {"csrf": csrf},
            headers={"Origin": "https://evil.example.net"},
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/issues/{desk.name}/schedule", data={"csrf": "guess", "at": "now"}
        ).status_code
        == 403
    )
    assert desk.issue.read_bytes() == before
    assert desk.store.get_schedule(desk.name) is None


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_do_what_it_should_and_nothing_more(desk: Desk_, role: str) -> None:
    client = desk.signed_in(role)
    csrf, base = desk.form_of(client)
    may_send_staff = role != "contributor"
    answer = client.post(f"/issues/{desk.name}/test-send", data={"csrf": csrf, "to": "staff"})
    assert (answer.status_code == 200) is may_send_staff, answer.text[-300:]
    answer = client.post(f"/issues/{desk.name}/test-send", data={"csrf": csrf, "to": "self"})
    assert answer.status_code == 200 and f"{role}@example.org: accepted" in answer.text
    saved = client.post(
        f"/issues/{desk.name}", data={"csrf": csrf, "base": base, "subject": f"By {role}"}
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    scheduled = client.post(
        f"/issues/{desk.name}/schedule",
        data={"csrf": csrf, "at": "2099-01-05T08:00", "zone": "UTC"},
    )
    assert (scheduled.status_code == 200) is (role != "contributor")
    assert (desk.store.get_schedule(desk.name) is not None) is (role != "contributor")
    audit = client.get("/audit")
    assert (audit.status_code == 200) is (role != "contributor")


def test_a_contributor_cannot_change_a_scheduled_issue_by_crafting_a_request(desk: Desk_) -> None:
    editor = desk.signed_in("editor")
    csrf, _ = desk.form_of(editor)
    editor.post(f"/issues/{desk.name}/schedule", data={"csrf": csrf, "at": "2099-01-05T08:00"})
    contributor = desk.signed_in("contributor")
    csrf, base = desk.form_of(contributor)
    before = desk.issue.read_bytes()
    answer = contributor.post(
        f"/issues/{desk.name}", data={"csrf": csrf, "base": base, "subject": "Mine"}
    )
    assert answer.status_code == 403 and desk.issue.read_bytes() == before
    answer = contributor.post(f"/issues/{desk.name}/unschedule", data={"csrf": csrf})
    assert answer.status_code == 403
    assert desk.store.get_schedule(desk.name).status == "scheduled"  # type: ignore[union-attr]


def test_a_save_changes_only_the_edited_lines_and_keeps_the_files_comments(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    csrf, base = desk.form_of(client)
    before = desk.issue.read_text(encoding="utf-8").splitlines()
    answer = client.post(
        f"/issues/{desk.name}",
        data={
            "csrf": csrf,
            "base": base,
            "subject": "[Weekly] Harbors: who pays?",  # a YAML syntax error if written bare
            "s0.e1.excerpt": "The engineering is the easy part.",
        },
    )
    assert answer.status_code == 200 and "Saved." in answer.text
    after = desk.issue.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [b for _, b in changed] == [
        "subject: '[Weekly] Harbors: who pays?'",
        "        excerpt: The engineering is the easy part.",
    ]
    assert after[0].startswith("# digest issue file")
    assert run("check", str(desk.issue)).exit_code == 0  # the CLI reads what the desk wrote


def test_saving_over_a_file_changed_since_it_was_opened_is_refused_showing_both(
    desk: Desk_,
) -> None:
    client = desk.signed_in("editor")
    csrf, base = desk.form_of(client)
    on_disk = desk.issue.read_text(encoding="utf-8").replace(
        "subject: Can Harbor", "subject: Changed on disk - Can Harbor"
    )
    desk.issue.write_text(on_disk, encoding="utf-8")
    answer = client.post(
        f"/issues/{desk.name}", data={"csrf": csrf, "base": base, "subject": "Mine"}
    )
    assert answer.status_code == 409
    assert "Changed on disk" in answer.text and "subject: Mine" in answer.text
    assert desk.issue.read_text(encoding="utf-8") == on_disk


def test_an_invalid_edit_is_refused_at_its_field_and_the_typed_values_are_kept(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    csrf, base = desk.form_of(client)
    before = desk.issue.read_bytes()
    answer = client.post(
        f"/issues/{desk.name}",
        data={"csrf": csrf, "base": base, "s0.title": " ", "preheader": "Kept as typed"},
    )
    assert answer.status_code == 400
    assert 'id="e-s0.title"' in answer.text and 'value="Kept as typed"' in answer.text
    assert desk.issue.read_bytes() == before


@pytest.mark.parametrize(
    "name", ["..%2Fconfig", "../config", "%2e%2e%2fdigest.sqlite3", "nope", ".hidden"]
)
def test_issue_names_cannot_reach_outside_the_issues_folder(desk: Desk_, name: str) -> None:
    (desk.folder / "config.yaml").write_text("subject: SECRET-CONFIG-CONTENT\n", encoding="utf-8")
    client = desk.signed_in("admin")
    answer = client.get(f"/issues/{name}")
    assert answer.status_code == 404, answer.text[-300:]
    assert "SECRET-CONFIG-CONTENT" not in answer.text


def test_text_from_source_pages_is_escaped_on_the_desk(desk: Desk_) -> None:
    text = desk.issue.read_text(encoding="utf-8").replace(
        "excerpt: Walls buy time", "excerpt: <script>alert(1)</script> Walls buy time"
    )
    desk.issue.write_text(text, encoding="utf-8")
    page = desk.signed_in("editor").get(f"/issues/{desk.name}")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_sign_in_is_throttled_per_account_even_with_the_right_password(desk: Desk_) -> None:
    client = desk.client()
    for _ in range(desk.settings.desk.free_attempts):
        client.post("/sign-in", data={"email": "admin@example.org", "password": "wrong password!"})
    answer = client.post("/sign-in", data={"email": "admin@example.org", "password": PASSWORD})
    assert answer.status_code == 429 and "Too many tries" in answer.text


def test_a_disabled_user_is_signed_out_at_once(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    assert client.get("/", follow_redirects=False).status_code == 200
    desk.store.update_user("editor@example.org", disabled=True)
    assert client.get("/", follow_redirects=False).headers["location"] == "/sign-in"


def test_scheduling_takes_the_editors_zone_shows_utc_and_refuses_the_past(desk: Desk_) -> None:
    client = desk.signed_in("editor")
    csrf, _ = desk.form_of(client)
    past = client.post(
        f"/issues/{desk.name}/schedule",
        data={"csrf": csrf, "at": "2020-01-05T08:00", "zone": "Europe/Berlin"},
    )
    assert past.status_code == 400 and "in the past" in past.text
    answer = client.post(
        f"/issues/{desk.name}/schedule",
        data={"csrf": csrf, "at": "2099-07-05T08:00", "zone": "Europe/Berlin"},
    )
    assert answer.status_code == 200
    assert "08:00 CEST in Europe/Berlin (2099-07-05 06:00 UTC)" in answer.text
    unscheduled = client.post(f"/issues/{desk.name}/unschedule", data={"csrf": csrf})
    assert unscheduled.status_code == 200 and "Unscheduled." in unscheduled.text


def test_the_audit_log_records_who_did_what_in_the_desk_and_the_cli(
    desk: Desk_, in_tmp: Path
) -> None:
    client = desk.signed_in("editor")
    csrf, base = desk.form_of(client)
    client.post(f"/issues/{desk.name}", data={"csrf": csrf, "base": base, "subject": "Audited"})
    client.post(f"/issues/{desk.name}/test-send", data={"csrf": csrf, "to": "self"})
    actions = [(e.actor, e.action) for e in desk.store.audit_entries()]
    for expected in ("signed in", "edited", "test-sent"):
        assert ("editor@example.org", expected) in actions
    page = client.get("/audit").text
    assert "edited" in page and "fields: [&#39;subject&#39;]" in page
    (in_tmp / "config.yaml").write_text(
        f"delivery:\n  database: {desk.settings.delivery.database}\n", encoding="utf-8"
    )
    printed = run("audit").output
    assert "editor@example.org  edited" in printed and "fields=['subject']" in printed


def test_a_new_issue_is_composed_from_pasted_addresses_and_opened(
    desk: Desk_, page_server: PageServer
) -> None:
    lights = page_server.add("/lights", (FIXTURES / "conversation-page.html").read_bytes())
    fetch = desk.settings.fetch.model_copy(update={"allow_private_addresses": ["127.0.0.1"]})
    desk.settings = desk.settings.model_copy(update={"fetch": fetch})
    client = desk.signed_in("contributor")
    csrf, _ = desk.form_of(client)
    answer = client.post("/new", data={"csrf": csrf, "sources": f"\n{lights}\n"})
    assert answer.status_code == 200 and "Composed." in answer.text
    assert "Should Lighthouses" in answer.text
    created = [p for p in (desk.folder / "issues").glob("*.yaml") if p != desk.issue]
    assert len(created) == 1 and "lighthouses" in created[0].name
    assert ("contributor@example.org", "composed") in [
        (e.actor, e.action) for e in desk.store.audit_entries()
    ]


@pytest.mark.parametrize("source", ["/etc/passwd", "config.yaml", "file:///etc/passwd"])
def test_a_new_issue_never_reads_a_file_on_the_server(desk: Desk_, source: str) -> None:
    client = desk.signed_in("admin")
    csrf, _ = desk.form_of(client)
    answer = client.post("/new", data={"csrf": csrf, "sources": source})
    assert answer.status_code == 400 and "not a web address" in answer.text
    assert [p.name for p in (desk.folder / "issues").glob("*.yaml")] == [desk.issue.name]


def test_a_sent_issues_report_is_a_page_titled_by_the_issue_with_its_charts(
    desk: Desk_,
) -> None:
    from digest.delivery import QuietProgress, deliver_due
    from digest.providers import make_http_client
    from digest.schedule import schedule
    from tests.helpers import NOW

    desk.store.upsert_subscribers(
        [(f"reader{i}@example.org", None, {}) for i in range(3)], resubscribe=False
    )
    schedule(desk.store, desk.issue, desk.settings, "now", "UTC", NOW)
    with make_http_client(desk.settings) as http:
        deliver_due(
            desk.store, desk.settings, client=http, progress=QuietProgress(), clock=lambda: NOW
        )
    client = desk.signed_in("contributor")
    listing = client.get("/").text
    assert f'href="/issues/{desk.name}/report"' in listing
    page = client.get(f"/issues/{desk.name}/report")
    assert page.status_code == 200
    assert "<h1>Can Harbor Cities Hold the Line Against the Sea?</h1>" in page.text
    assert "<svg" in page.text and "accepted: 3" in page.text
    assert client.get("/issues/..%2Fx/report").status_code == 404
    assert client.get("/issues/never-scheduled/report").status_code == 404


def test_with_approval_required_a_schedule_waits_for_a_second_person(desk: Desk_) -> None:
    from digest.delivery import QuietProgress, deliver_due
    from digest.providers import make_http_client

    desk.settings = desk.settings.model_copy(update={"desk": Desk(require_approval=True)})
    desk.store.upsert_subscribers([("reader@example.org", None, {})], resubscribe=False)
    editor = desk.signed_in("editor")
    csrf, _ = desk.form_of(editor)
    asked = editor.post(
        f"/issues/{desk.name}/schedule",
        data={"csrf": csrf, "at": "2099-07-05T08:00", "zone": "UTC"},
    )
    assert asked.status_code == 200 and "must approve it" in asked.text
    assert desk.store.get_schedule(desk.name) is None  # nothing any delivery could claim
    with make_http_client(desk.settings) as http:
        assert deliver_due(desk.store, desk.settings, client=http, progress=QuietProgress()) == []
    own = editor.post(f"/issues/{desk.name}/approve", data={"csrf": csrf})
    assert own.status_code == 400 and "asked for this schedule yourself" in own.text
    assert desk.store.get_schedule(desk.name) is None
    listing = desk.signed_in("contributor").get("/").text
    assert "awaiting approval" in listing
    contributor = desk.signed_in("contributor")
    c_csrf, _ = desk.form_of(contributor)
    assert (
        contributor.post(f"/issues/{desk.name}/approve", data={"csrf": c_csrf}).status_code == 403
    )

    admin = desk.signed_in("admin")
    a_csrf, _ = desk.form_of(admin)
    approved = admin.post(f"/issues/{desk.name}/approve", data={"csrf": a_csrf})
    assert approved.status_code == 200 and "Approved: scheduled for" in approved.text
    scheduled = desk.store.get_schedule(desk.name)
    assert scheduled is not None and scheduled.status == "scheduled"
    actions = [(e.actor, e.action) for e in desk.store.audit_entries()]
    assert ("editor@example.org", "schedule requested") in actions
    assert ("admin@example.org", "approved") in actions


def test_an_approval_is_refused_when_the_issue_changed_since_it_was_asked_for(
    desk: Desk_,
) -> None:
    desk.settings = desk.settings.model_copy(update={"desk": Desk(require_approval=True)})
    editor = desk.signed_in("editor")
    csrf, _ = desk.form_of(editor)
    editor.post(f"/issues/{desk.name}/schedule", data={"csrf": csrf, "at": "2099-07-05T08:00"})
    desk.issue.write_text(
        desk.issue.read_text(encoding="utf-8").replace("subject: Can", "subject: Late edit, Can"),
        encoding="utf-8",
    )
    admin = desk.signed_in("admin")
    a_csrf, _ = desk.form_of(admin)
    refused = admin.post(f"/issues/{desk.name}/approve", data={"csrf": a_csrf})
    assert refused.status_code == 400 and "changed since editor@example.org asked" in refused.text
    assert desk.store.get_schedule(desk.name) is None


def test_with_approval_required_the_cli_cannot_schedule_around_it(
    desk: Desk_, in_tmp: Path
) -> None:
    (in_tmp / "config.yaml").write_text(
        f"desk:\n  require_approval: true\ndelivery:\n  database: {desk.settings.delivery.database}\n",
        encoding="utf-8",
    )
    result = run("schedule", str(desk.issue), "--at", "now")
    assert result.exit_code == 1 and "desk.require_approval is on" in result.output
    assert desk.store.get_schedule(desk.name) is None


def keep_comments(desk: Desk_) -> list[list[str]]:
    """Compose the sample as `digest compose` does, keeping each whole comment."""
    from digest.comments import comments_for, write_comments
    from digest.compose import compose_read
    from tests.conftest import SAMPLE, SAMPLE_URL

    issue, _, read = compose_read([str(SAMPLE)], Settings(), url=SAMPLE_URL)
    write_comments(desk.issue, comments_for(read, issue))
    kept = comments_for(read, issue)[issue.sections[0].experts[0].read_more]["paragraphs"]
    return [s for p in kept for s in p]


def test_an_excerpt_is_chosen_from_the_experts_own_whole_sentences(desk: Desk_) -> None:
    sentences = keep_comments(desk)
    assert len(sentences) >= 4
    client = desk.signed_in("contributor")
    page = client.get(f"/issues/{desk.name}").text
    assert "Choose the excerpt from Ana Lúcia Ferreira" in page
    assert 'form="pick-s0.e0"' in page and 'id="pick-s0.e0"' in page
    csrf, base = desk.form_of(client)
    before = desk.issue.read_text(encoding="utf-8").splitlines()
    answer = client.post(
        f"/issues/{desk.name}/excerpt",
        data={"csrf": csrf, "base": base, "s": "0", "e": "0", "from": "2", "to": "3"},
    )
    assert answer.status_code == 200 and "Saved." in answer.text
    after = desk.issue.read_text(encoding="utf-8").splitlines()
    changed = [b for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [f"        excerpt: {sentences[1]} {sentences[2]}"]
    refused = client.post(
        f"/issues/{desk.name}/excerpt",
        data={"csrf": desk.form_of(client)[0], "base": desk.form_of(client)[1], "s": "0",
              "e": "0", "from": "3", "to": "99"},
    )  # fmt: skip
    assert refused.status_code == 400 and "choose sentences between 1 and" in refused.text


def test_composing_keeps_each_whole_comment_beside_the_issue_file(in_tmp: Path) -> None:
    from digest.comments import comments_path, read_comments
    from tests.conftest import SAMPLE, SAMPLE_URL

    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    path = Path(result.stdout.strip().splitlines()[-1])
    kept = read_comments(path)
    assert comments_path(path).parent.name == ".comments"
    assert [v["name"] for v in kept.values()] == [
        "Ana Lúcia Ferreira", "Tomás R. Okafor", "Selin Aydın",
    ]  # fmt: skip
    assert run("check", str(path)).exit_code == 0


def test_experts_are_reordered_set_aside_and_brought_back_without_being_lost(
    desk: Desk_,
) -> None:
    from digest.build import build
    from digest.issuefile import load_issue

    client = desk.signed_in("contributor")

    def names() -> list[str]:
        return [e.name for e in load_issue(desk.issue).sections[0].experts]

    def arrange(**fields: str) -> int:
        csrf, base = desk.form_of(client)
        answer = client.post(
            f"/issues/{desk.name}/arrange", data={"csrf": csrf, "base": base, "s": "0", **fields}
        )
        return answer.status_code

    assert names() == ["Ana Lúcia Ferreira", "Tomás R. Okafor", "Selin Aydın"]
    assert arrange(e="0", op="down") == 200
    assert names() == ["Tomás R. Okafor", "Ana Lúcia Ferreira", "Selin Aydın"]
    assert arrange(e="2", op="remove") == 200
    assert names() == ["Tomás R. Okafor", "Ana Lúcia Ferreira"]
    html = build(desk.issue, desk.settings).sample.html
    assert "Selin Aydın" not in html and "Tomás R. Okafor" in html  # set aside: never sent
    assert load_issue(desk.issue).preheader == "With Tomás R. Okafor and Ana Lúcia Ferreira"
    assert "Selin Aydın" in desk.issue.read_text(encoding="utf-8")  # but kept in the file
    page = client.get(f"/issues/{desk.name}").text
    assert "Set aside (not sent):" in page and 'form="restore-s0"' in page
    assert arrange(e="0", op="restore") == 200
    assert names() == ["Tomás R. Okafor", "Ana Lúcia Ferreira", "Selin Aydın"]
    assert "set_aside" not in desk.issue.read_text(encoding="utf-8")
    assert arrange(e="0", op="up") == 400  # first already
    for _ in range(2):
        assert arrange(e="0", op="remove") == 200
    assert arrange(e="0", op="remove") == 400  # the last one stays: a section needs one
    assert len(names()) == 1
    assert run("check", str(desk.issue)).exit_code == 0
    arranged = [e.detail.get("what") for e in desk.store.audit_entries() if e.action == "arranged"]
    assert "set aside Selin Aydın" in arranged


def test_the_public_app_serves_the_desk_only_under_the_path_the_operator_gives(
    desk: Desk_,
) -> None:
    from digest.web import create_app

    keys = (SIGNING_KEY.encode(),)
    with TestClient(create_app(desk.settings, keys), base_url="http://127.0.0.1:8026") as public:
        for path in ("/sign-in", "/desk/sign-in", "/audit", "/desk/"):
            assert public.get(path, follow_redirects=False).status_code == 404, path
    mounted = desk.settings.model_copy(
        update={"desk": Desk(url="http://127.0.0.1:8026", path="/desk")}
    )
    with TestClient(create_app(mounted, keys), base_url="http://127.0.0.1:8026") as public:
        assert public.get("/desk/", follow_redirects=False).headers["location"] == "/desk/sign-in"
        answer = public.post(
            "/desk/sign-in",
            data={"email": "editor@example.org", "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/desk/"
        assert "Path=/desk" in answer.headers["set-cookie"]
        page = public.get("/desk/").text
        assert f'href="/desk/issues/{desk.name}"' in page and 'action="/desk/sign-out"' in page
        assert public.get("/subscribe").status_code == 200  # the public pages as before


def test_a_single_sign_on_header_counts_only_when_configured_and_from_the_proxy(
    desk: Desk_,
) -> None:
    header = {"X-Forwarded-Email": "editor@example.org"}
    # off by default: the header is just a header
    with TestClient(
        create_desk_app(desk.settings, desk.store), base_url=DESK, client=("127.0.0.1", 5000)
    ) as plain:
        assert plain.get("/", headers=header, follow_redirects=False).status_code == 303
    sso = desk.settings.model_copy(
        update={"desk": Desk(sso_header="X-Forwarded-Email", sso_proxies="10.0.0.5")}
    )
    app = create_desk_app(sso, desk.store)
    with TestClient(app, base_url=DESK, client=("10.0.0.9", 5000)) as elsewhere:
        assert elsewhere.get("/", headers=header, follow_redirects=False).status_code == 303
    with TestClient(app, base_url=DESK, client=("10.0.0.5", 5000)) as proxied:
        unknown = {"X-Forwarded-Email": "stranger@example.org"}
        assert proxied.get("/", headers=unknown, follow_redirects=False).status_code == 303
        page = proxied.get("/", headers=header, follow_redirects=False)
        assert page.status_code == 200 and "Editor (editor)" in page.text
        assert "digest_desk=" in page.headers["set-cookie"]  # a session, for its CSRF token
    desk.store.update_user("editor@example.org", disabled=True)
    with TestClient(app, base_url=DESK, client=("10.0.0.5", 5000)) as proxied:
        assert proxied.get("/", headers=header, follow_redirects=False).status_code == 303


def test_a_new_issue_is_composed_from_the_feed_entries_an_editor_ticks(
    desk: Desk_, page_server: PageServer
) -> None:
    from digest.issuefile import load_issue
    from tests.test_feeds import GRID, rss

    page_server.add("/c/grid", GRID)
    page_server.add("/c/lighthouses", (FIXTURES / "conversation-page.html").read_bytes())
    page_server.add("/c/old", GRID.replace("Grid?", "Old Grid?"))
    page_server.add(
        "/feed.rss",
        rss(page_server.base, private=False, broken=False),
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
    )
    fetch = desk.settings.fetch.model_copy(update={"allow_private_addresses": ["127.0.0.1"]})
    draft = desk.settings.draft.model_copy(update={"feeds": (page_server.url("/feed.rss"),)})
    desk.settings = desk.settings.model_copy(update={"fetch": fetch, "draft": draft})
    client = desk.signed_in("contributor")
    page = client.get("/new").text
    boxes = re.findall(r'name="(entry-\d+)" value="([^"]+)"> <span>([^<]+)<', page)
    titles = [title for _, _, title in boxes]
    assert any("Lighthouses" in t for t in titles) and any("Grid" in t for t in titles), titles
    name, value, _ = next(b for b in boxes if "Lighthouses" in b[2])
    csrf, _ = desk.form_of(client)
    answer = client.post("/new", data={"csrf": csrf, name: value})
    assert answer.status_code == 200 and "Composed." in answer.text
    [made] = [p for p in (desk.folder / "issues").glob("*.yaml") if p != desk.issue]
    sections = load_issue(made).sections
    assert [s.title for s in sections] == ["Should Lighthouses Be Museums?"]
    again = client.get("/new").text  # what an issue used is not offered again
    assert f'value="{value}"' not in again


def test_a_checks_finding_is_shown_at_the_field_it_concerns(desk: Desk_) -> None:
    text = desk.issue.read_text(encoding="utf-8").replace(
        "        affiliation: Chief Engineer, Gulf Coast Port Authority (ret.)\n", ""
    )
    desk.issue.write_text(text, encoding="utf-8")
    page = desk.signed_in("editor").get(f"/issues/{desk.name}").text
    field = page.index('id="f-s0.e1.affiliation"')
    note = page.index("has no affiliation", field)
    assert note < page.index('id="f-s0.e1.headline"')  # right under that field


def test_only_an_admin_manages_users_and_never_their_own_access(desk: Desk_) -> None:
    editor = desk.signed_in("editor")
    assert editor.get("/users").status_code == 403
    admin = desk.signed_in("admin")
    page = admin.get("/users")
    assert page.status_code == 200 and "editor@example.org" in page.text
    csrf, _ = desk.form_of(admin)
    added = admin.post(
        "/users",
        data={"csrf": csrf, "action": "add", "email": "New.Person@Example.org",
              "role": "contributor", "password": "a first long password"},
    )  # fmt: skip
    assert added.status_code == 200 and "Added new.person@example.org" in added.text
    newcomer = desk.client()
    signed = newcomer.post(
        "/sign-in", data={"email": "new.person@example.org", "password": "a first long password"}
    )
    assert "Sign out" in signed.text
    admin.post(
        "/users", data={"csrf": csrf, "action": "disable", "email": "new.person@example.org"}
    )
    assert newcomer.get("/", follow_redirects=False).status_code == 303  # out at once
    own = admin.post(
        "/users", data={"csrf": csrf, "action": "disable", "email": "admin@example.org"}
    )
    assert own.status_code == 400 and not desk.store.user_by_email("admin@example.org").disabled  # type: ignore[union-attr]
    admin.post(
        "/users",
        data={"csrf": csrf, "action": "role", "email": "editor@example.org", "role": "admin"},
    )
    assert desk.store.user_by_email("editor@example.org").role == "admin"  # type: ignore[union-attr]
    actions = {(e.action, e.subject) for e in desk.store.audit_entries()}
    assert {("user added", "new.person@example.org"), ("user disabled", "new.person@example.org"),
            ("role changed", "editor@example.org")} <= actions  # fmt: skip


def test_the_preview_shows_the_text_part_too_and_runs_nothing(desk: Desk_) -> None:
    client = desk.signed_in("contributor")
    page = client.get(f"/issues/{desk.name}").text
    assert "the budget is 70" in page and 'id="view-phone"' in page
    text = client.get(f"/issues/{desk.name}/preview?part=text")
    assert text.headers["content-type"].startswith("text/plain")
    assert "Read more:" in text.text and "<" not in text.text.split("\n")[0]
    assert "sandbox" in text.headers["content-security-policy"]
    headers = client.get(f"/issues/{desk.name}/preview?part=headers").text
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in headers


def test_composing_a_conversation_that_has_an_issue_already_keeps_that_issue(
    desk: Desk_, page_server: PageServer
) -> None:
    from tests.conftest import SAMPLE

    page = page_server.add(
        "/harbor.md", SAMPLE.read_bytes(), headers={"Content-Type": "text/markdown; charset=utf-8"}
    )
    fetch = desk.settings.fetch.model_copy(update={"allow_private_addresses": ["127.0.0.1"]})
    desk.settings = desk.settings.model_copy(update={"fetch": fetch})
    text = desk.issue.read_text(encoding="utf-8").replace("subject: Can", "subject: Edited Can")
    desk.issue.write_text(text, encoding="utf-8")
    client = desk.signed_in("editor")
    csrf, _ = desk.form_of(client)
    answer = client.post("/new", data={"csrf": csrf, "sources": page})
    assert answer.status_code == 400 and "exists already" in answer.text
    assert "--force" not in answer.text
    assert desk.issue.read_text(encoding="utf-8") == text


def test_send_times_show_in_the_zone_each_editor_last_scheduled_in(desk: Desk_) -> None:
    editor = desk.signed_in("editor")
    csrf, _ = desk.form_of(editor)
    editor.post(
        f"/issues/{desk.name}/schedule",
        data={"csrf": csrf, "at": "2099-01-05T09:30", "zone": "Europe/Berlin"},
    )
    assert "2099-01-05 09:30 CET" in editor.get("/").text
    page = editor.get(f"/issues/{desk.name}").text
    assert "sends 2099-01-05 09:30 CET (2099-01-05 08:30 UTC)" in page
    assert 'name="zone" value="Europe/Berlin"' in page  # offered again next time
    admin = desk.signed_in("admin")  # has scheduled nothing: the list's own zone
    assert "2099-01-05 08:30 UTC" in admin.get("/").text


def test_the_preview_shows_a_reader_without_fields_where_the_templates_use_them(
    desk: Desk_,
) -> None:
    """The editor sees the sample reader with audience.sample's fields, a view as a
    reader without any (each fallback in place), and what each use gives them."""
    from tests.test_subscriber_fields import templates_with

    folder = templates_with(
        desk.folder / "custom",
        html_uses="Hello {{ subscriber.get('city', 'friend') }}.",
        text_uses="",
    )
    extra = Settings.model_validate(
        {
            "audience": {"fields": {"city": {"type": "text"}}, "sample": {"city": "Quito"}},
            "render": {"templates": str(folder)},
        }
    )
    desk.settings = desk.settings.model_copy(
        update={"audience": extra.audience, "render": extra.render}
    )
    client = desk.signed_in("contributor")
    page = client.get(f"/issues/{desk.name}").text
    assert 'id="view-bare"' in page
    assert "a subscriber without city gets &#39;friend&#39; in place of subscriber.city" in page
    assert "Hello Quito." in client.get(f"/issues/{desk.name}/preview").text
    bare = client.get(f"/issues/{desk.name}/preview?part=bare")
    assert "Hello friend." in bare.text and "sandbox" in bare.headers["content-security-policy"]


def test_an_issue_whose_templates_use_no_field_offers_no_such_view(desk: Desk_) -> None:
    page = desk.signed_in("contributor").get(f"/issues/{desk.name}").text
    assert 'id="view-bare"' not in page and "Subscriber fields" not in page
