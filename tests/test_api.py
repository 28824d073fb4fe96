"""The HTTP API (issue 27): bearer tokens with a scope, JSON errors that are never a
500, writes that say nothing about who is subscribed, cursor pages, the audit log, the
rate per token, and an OpenAPI document that matches the routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from digest.config import Settings
from digest.store.sqlite import SQLiteStore
from digest.web import create_app
from tests.conftest import run

KEY = b"serve-test-key-0123456789"


class Api:
    def __init__(self, client: TestClient, store: SQLiteStore, read: str, write: str) -> None:
        self.client, self.store, self.read, self.write = client, store, read, write

    def call(self, method: str, path: str, token: str | None, **kwargs: object) -> object:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers |= kwargs.pop("headers", {})  # type: ignore[arg-type]
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def served(tmp_path: Path, **settings: object) -> Iterator[Api]:
    database = str(tmp_path / "digest.sqlite3")
    store = SQLiteStore(database)
    read, write = store.add_api_token("dashboard", "read"), store.add_api_token("cms", "write")
    values = Settings.model_validate(
        {"delivery": {"database": database}, "newsletters": {"alerts": {"name": "Alerts"}},
         "audience": {"fields": {"region": {"type": "choice", "choices": ["Asia", "Europe"]}}},
         **settings}
    )  # fmt: skip
    with TestClient(create_app(values, (KEY,))) as client:
        yield Api(client, store, read, write)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from served(tmp_path)


def test_a_write_token_adds_a_subscriber_at_once_and_a_read_token_sees_them(api: Api) -> None:
    made = api.call("POST", "/subscribers", api.write, json={
        "email": "Ann@Example.org", "name": "Ann", "double_opt_in": False,
        "newsletters": ["main", "alerts"], "attributes": {"region": "Asia", "team": "blue"},
    })  # fmt: skip
    assert made.status_code == 202 and made.json() == {"accepted": True, "double_opt_in": False}  # type: ignore[attr-defined]
    got = api.call("GET", "/subscribers/ann@example.org", api.read)
    assert got.status_code == 200  # type: ignore[attr-defined]
    body = got.json()  # type: ignore[attr-defined]
    assert body["status"] == "active" and body["newsletters"] == ["alerts", "main"]
    assert body["attributes"] == {"region": "Asia", "team": "blue"}
    audited = [(e.actor, e.action, e.subject) for e in reversed(api.store.audit_entries())]
    assert audited == [
        ("api:cms", "POST /api/v1/subscribers", "ann@example.org"),
        ("api:dashboard", "GET /api/v1/subscribers/{email}", "ann@example.org"),
    ]
    assert (
        "ann@example.org\tactive\tAnn"
        in run("subscribers", "list", "--config", str(write_config(api))).stdout
    )


def write_config(api: Api) -> Path:
    path = Path(api.store.path).with_name("config.yaml")
    path.write_text(f"delivery:\n  database: {api.store.path}\n")
    return path


def test_double_opt_in_is_the_default_and_only_records_a_signup(api: Api) -> None:
    made = api.call("POST", "/subscribers", api.write, json={"email": "bo@example.org"})
    assert made.status_code == 202  # type: ignore[attr-defined]
    api.store.apply_inbox()
    assert [s.email for s in api.store.signups()] == ["bo@example.org"]
    assert api.store.get_subscriber("bo@example.org") is None  # not until they confirm


def test_the_wrong_scope_gets_403_and_no_token_401(api: Api) -> None:
    assert api.call("GET", "/subscribers", api.write).status_code == 403  # type: ignore[attr-defined]
    refused = api.call("POST", "/subscribers", api.read, json={"email": "x@example.org"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "wrong_scope"  # type: ignore[attr-defined]
    assert api.call("GET", "/subscribers", None).status_code == 401  # type: ignore[attr-defined]
    assert api.call("GET", "/subscribers", "dgt_forged").status_code == 401  # type: ignore[attr-defined]
    in_query = api.client.get(f"/api/v1/subscribers?access_token={api.read}")
    assert in_query.status_code == 401  # Authorization: Bearer only


def test_writes_answer_alike_for_people_on_the_list_and_not(api: Api) -> None:
    api.call("POST", "/subscribers", api.write, json={"email": "ann@example.org",
                                                      "double_opt_in": False})  # fmt: skip
    answers = set()
    for email in ("ann@example.org", "nobody@example.org"):
        for method, path, body in (
            ("PATCH", f"/subscribers/{email}", {"name": "X"}),
            ("POST", f"/subscribers/{email}/unsubscribe", {"newsletter": "alerts"}),
            ("POST", "/subscribers", {"email": email}),
        ):
            response = api.call(method, path, api.write, json=body)
            answers.add((method, path.replace(email, "E"), response.status_code, response.text))  # type: ignore[attr-defined]
    assert len(answers) == 3  # one answer per endpoint, whoever the address is


def test_bad_input_gets_a_json_error_never_a_500(api: Api) -> None:
    cases = [
        ("POST", "/subscribers", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/subscribers", {"content": b"email=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
        ("POST", "/subscribers", {"json": {"email": "not an address"}}, 400),
        ("POST", "/subscribers", {"json": {"email": "a@example.org", "newsletters": ["nope"]}}, 400),
        ("POST", "/subscribers", {"json": {"email": "a@example.org", "attributes": {"region": "Mars"}}}, 400),
        ("POST", "/subscribers", {"json": {"email": "a@example.org", "surprise": 1}}, 400),
        ("POST", "/subscribers", {"json": ["a list"]}, 400),
        ("POST", "/subscribers", {"content": b"x" * 70_000, "headers": {"Content-Type": "application/json"}}, 413),
        ("PATCH", "/subscribers/%00", {"json": {"name": "x"}}, 400),
    ]  # fmt: skip
    for method, path, options, status in cases:
        answer = api.call(method, path, api.write, **options)
        assert answer.status_code == status, (path, options, answer.text)  # type: ignore[attr-defined]
        error = answer.json()["error"]  # type: ignore[attr-defined]
        assert error["code"] and error["message"]
    for path in ("/subscribers?cursor=abc", "/events?cursor=-1", "/subscribers/%20"):
        answer = api.call("GET", path, api.read)
        assert answer.status_code == 400, (path, answer.text)  # type: ignore[attr-defined]


def test_pages_follow_a_cursor_until_the_end(api: Api) -> None:
    api.store.upsert_subscribers(
        [(f"r{i:02d}@example.org", None, {}) for i in range(7)], resubscribe=False
    )
    seen, cursor = [], "0"
    while cursor is not None:
        page = api.call("GET", f"/subscribers?limit=3&cursor={cursor}", api.read).json()  # type: ignore[attr-defined]
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [f"r{i:02d}@example.org" for i in range(7)]


def test_changes_unsubscribes_and_forgetting_through_the_api(api: Api) -> None:
    api.call("POST", "/subscribers", api.write, json={
        "email": "ann@example.org", "double_opt_in": False, "newsletters": ["main", "alerts"]})  # fmt: skip
    api.call("PATCH", "/subscribers/ann@example.org", api.write,
             json={"name": "Ann Lee", "newsletters": ["alerts"]})  # fmt: skip
    body = api.call("GET", "/subscribers/ann@example.org", api.read).json()  # type: ignore[attr-defined]
    assert body["name"] == "Ann Lee" and body["newsletters"] == ["alerts"]
    api.call("POST", "/subscribers/ann@example.org/unsubscribe", api.write, json={})
    api.store.apply_inbox()
    body = api.call("GET", "/subscribers/ann@example.org", api.read).json()  # type: ignore[attr-defined]
    assert body["status"] == "unsubscribed" and body["newsletters"] == []
    assert api.call("DELETE", "/subscribers/ann@example.org", api.write).status_code == 202  # type: ignore[attr-defined]
    assert api.call("GET", "/subscribers/ann@example.org", api.read).status_code == 404  # type: ignore[attr-defined]
    assert api.store.is_suppressed("ann@example.org")


def test_newsletters_issues_and_events_are_readable(api: Api) -> None:
    newsletters = api.call("GET", "/newsletters", api.read).json()["items"]  # type: ignore[attr-defined]
    assert [n["key"] for n in newsletters] == ["main", "alerts"]
    assert api.call("GET", "/issues", api.read).json() == {"items": []}  # type: ignore[attr-defined]
    assert api.call("GET", "/issues/nope", api.read).status_code == 404  # type: ignore[attr-defined]
    assert api.call("GET", "/events", api.read).json() == {"items": [], "next_cursor": None}  # type: ignore[attr-defined]


def test_every_call_is_audited_under_the_tokens_name_never_the_token(api: Api) -> None:
    api.call("GET", "/newsletters", api.read)
    api.call("GET", "/subscribers", api.write)  # refused: not audited as done
    entries = api.store.audit_entries()
    mine = [e for e in entries if e.actor.startswith("api:")]
    assert [(e.actor, e.action) for e in mine] == [("api:dashboard", "GET /api/v1/newsletters")]
    everything = " ".join(f"{e.actor} {e.action} {e.subject} {e.detail}" for e in entries)
    assert api.read not in everything and api.write not in everything


def test_each_token_has_its_own_rate(tmp_path: Path) -> None:
    for api in served(tmp_path, api={"burst": 3, "per_second": 0.01}):
        answers = [api.call("GET", "/newsletters", api.read).status_code for _ in range(5)]  # type: ignore[attr-defined]
        assert answers[:3] == [200, 200, 200] and answers[3] == 429
        limited = api.call("GET", "/newsletters", api.read)
        assert int(limited.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]
        other = api.call("POST", "/subscribers", api.write, json={"email": "z@example.org"})
        assert other.status_code == 202  # type: ignore[attr-defined]


def test_a_revoked_token_is_refused_and_without_tokens_there_is_no_api(tmp_path: Path) -> None:
    for api in served(tmp_path):
        api.store.revoke_api_token("dashboard")
        assert api.call("GET", "/newsletters", api.read).status_code == 401  # type: ignore[attr-defined]
        api.store.revoke_api_token("cms")
        assert api.call("GET", "/newsletters", api.read).status_code == 404  # type: ignore[attr-defined]


def test_the_openapi_document_matches_the_routes(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json()
    documented = {
        (method.upper(), path) for path, operations in document["paths"].items()
        for method in operations
    }  # fmt: skip
    app = api.client.app
    while not hasattr(app, "routes"):  # inside the middleware around the app
        app = app.app  # type: ignore[attr-defined]
    routed = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/v1/")
        and not route.path.endswith("openapi.json")
        for method in (route.methods or set()) - {"HEAD"}
    }  # fmt: skip
    assert documented == routed and len(routed) >= 10
    for path, operations in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for operation in operations.values():
            assert {p["name"] for p in operation["parameters"]} == names
            assert operation["x-scope"] in {"read", "write"}


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(in_tmp: Path) -> None:
    made = run("api-tokens", "add", "cms", "--scope", "write")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("dgt_") and "cannot be shown again" in made.stderr
    assert token.encode() not in Path("digest.sqlite3").read_bytes()
    listed = run("api-tokens", "list").stdout
    assert "cms\twrite" in listed and token not in listed
    assert run("api-tokens", "add", "cms", "--scope", "read").exit_code == 1
    assert run("api-tokens", "revoke", "cms").stdout == "revoked cms\n"
    again = run("api-tokens", "revoke", "cms")
    assert again.exit_code == 1 and "no live API token named 'cms'" in again.stderr


def test_an_issue_reads_with_its_report(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from digest.schedule import schedule
    from tests.helpers import SIGNING_ENV, SIGNING_KEY, sample_issue
    from tests.helpers import settings as helper_settings

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    values = helper_settings(tmp_path)  # with the API's own store
    values = values.model_copy(
        update={"delivery": values.delivery.model_copy(update={"database": str(api.store.path)})}
    )
    frozen = schedule(api.store, sample_issue(tmp_path), values, "2030-01-01 08:00", "UTC",
                      dt.datetime.now(dt.UTC))  # fmt: skip
    listed = api.call("GET", "/issues", api.read).json()["items"]  # type: ignore[attr-defined]
    assert [(i["slug"], i["status"], i["newsletter"]) for i in listed] == [
        (frozen.slug, "scheduled", "main")
    ]
    one = api.call("GET", f"/issues/{frozen.slug}", api.read).json()  # type: ignore[attr-defined]
    assert one["report"]["slug"] == frozen.slug and one["report"]["newsletter"] == "main"
    assert "accepted" in one["report"]["ledger"]
