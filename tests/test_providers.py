"""Each provider over real HTTP against a fake that speaks its documented contract."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.build import build
from digest.compose import compose
from digest.config import Provider as ProviderSettings
from digest.config import Settings
from digest.errors import ConfigError, ProviderAuthError
from digest.issuefile import dump_issue, write_issue
from digest.providers import Batch, available, create_provider, make_http_client, send_with_retries
from digest.providers.base import retry_delay
from digest.render import RenderedIssue
from digest.render.message import Recipient
from tests.conftest import SAMPLE, SAMPLE_URL
from tests.fakes import (
    FakeMailgun,
    FakePostmark,
    FakeProvider,
    FakeResend,
    FakeSendGrid,
    Fault,
    multipart_form,
)

KEY_ENV = "DIGEST_TEST_PROVIDER_KEY"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> RenderedIssue:
    folder = tmp_path_factory.mktemp("issue")
    issue, path = compose([str(SAMPLE)], Settings(), url=SAMPLE_URL, out_dir=folder)
    write_issue(dump_issue(issue), path, force=False)
    return build(path, Settings()).rendered


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_http_client(Settings(provider=ProviderSettings(timeout=2.0))) as http:
        yield http


def people(*emails: str) -> tuple[Recipient, ...]:
    return tuple(Recipient(e, f"Reader {i}", f"tok-{i}") for i, e in enumerate(emails))


def settings_for(
    name: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> Settings:
    monkeypatch.setenv(KEY_ENV, fake.key)
    options = {
        "name": name,
        "base_url": fake.url,
        "api_key_env": KEY_ENV,
        "retry_delay": 0.01,
        **extra,
    }
    return Settings(provider=ProviderSettings(**options))


@pytest.fixture
def postmark() -> Iterator[FakePostmark]:
    with FakePostmark() as fake:
        yield fake


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def mailgun() -> Iterator[FakeMailgun]:
    with FakeMailgun() as fake:
        yield fake


@pytest.fixture
def resend() -> Iterator[FakeResend]:
    with FakeResend() as fake:
        yield fake


def test_every_provider_module_is_discovered() -> None:
    assert available() == ["mailgun", "outbox", "postmark", "resend", "sendgrid", "smtp"]


def test_unknown_provider_is_a_config_error_listing_the_choices(client: httpx.Client) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown provider 'mailchimp' \(available: mailgun, outbox"
    ):
        create_provider(Settings(provider=ProviderSettings(name="mailchimp")), client)


@pytest.mark.parametrize(
    "name, env",
    [
        ("postmark", "POSTMARK_SERVER_TOKEN"),
        ("sendgrid", "SENDGRID_API_KEY"),
        ("resend", "RESEND_API_KEY"),
    ],
)
def test_missing_api_key_names_the_environment_variable(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, name: str, env: str
) -> None:
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(ConfigError, match=f"environment variable {env} is not set"):
        create_provider(Settings(provider=ProviderSettings(name=name)), client)


# --- Postmark ---------------------------------------------------------------------------


def test_postmark_batch_sends_one_personal_message_each_with_headers_tag_and_stream(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("postmark", postmark, monkeypatch), client)
    outcomes = provider.send(Batch(rendered, people("a@example.org", "b@example.org"), key="k"))
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert all(o.message_id for o in outcomes)
    assert [p for _, p, _ in postmark.requests] == ["/email/batch"]
    first = postmark.deliveries[0]
    assert first.headers["List-Unsubscribe"] == (
        "<http://127.0.0.1:8026/unsubscribe/tok-0>, <mailto:unsubscribe@example.org?subject=unsubscribe%20tok-0>"
    )
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "http://127.0.0.1:8026/unsubscribe/tok-1" in postmark.deliveries[1].html


def test_postmark_single_message_uses_the_single_endpoint(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("postmark", postmark, monkeypatch), client)
    assert provider.send(Batch(rendered, people("a@example.org")))[0].status == "accepted"
    assert [p for _, p, _ in postmark.requests] == ["/email"]


def test_postmark_reads_each_item_of_a_200_batch(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postmark.inactive.add("gone@example.org")
    provider = create_provider(settings_for("postmark", postmark, monkeypatch), client)
    outcomes = provider.send(
        Batch(rendered, people("a@example.org", "gone@example.org", "c@example.org"))
    )
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted"]
    assert outcomes[1].reason and outcomes[1].reason.startswith(
        "postmark 406: You tried to send to recipient(s) that have been marked as inactive"
    )
    assert postmark.delivered_to() == ["a@example.org", "c@example.org"]


def test_postmark_test_mode_uses_the_test_token_and_delivers_nothing(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("postmark", postmark, monkeypatch, test_mode=True), client
    )
    outcomes = provider.send(Batch(rendered, people("a@example.org", "b@example.org")))
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert postmark.requests[0][2]["x-postmark-server-token"] == "POSTMARK_API_TEST"
    assert postmark.test_accepted == 2 and postmark.deliveries == []


def test_postmark_stream_must_exist(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("postmark", postmark, monkeypatch, message_stream="nope"), client
    )
    outcomes = provider.send(Batch(rendered, people("a@example.org", "b@example.org")))
    assert all(
        o.status == "failed" and not o.retryable and "1235" in (o.reason or "") for o in outcomes
    )


@pytest.mark.parametrize(
    "fault",
    [
        Fault(429),
        Fault(503, headers={"Retry-After": "0"}),
        Fault(drop=True),
        Fault(delay=3.0, status=200),
    ],
    ids=["429", "503", "dropped-connection", "timeout"],
)
def test_temporary_failures_are_retried_and_then_succeed(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
) -> None:
    provider = create_provider(settings_for("postmark", postmark, monkeypatch), client)
    postmark.faults.append(fault)
    batch = Batch(rendered, people("a@example.org", "b@example.org"))
    first = provider.send(batch)
    assert all(o.status == "failed" and o.retryable for o in first)
    outcomes = send_with_retries(provider, batch, attempts=3, base_delay=0.01, sleep=lambda s: None)
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert sorted(postmark.delivered_to()) == ["a@example.org", "b@example.org"]


def test_retries_are_bounded_when_the_provider_keeps_failing(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("postmark", postmark, monkeypatch), client)
    postmark.faults.extend(Fault(503) for _ in range(10))
    waits: list[float] = []
    outcomes = send_with_retries(
        provider,
        Batch(rendered, people("a@example.org")),
        attempts=4,
        base_delay=1.0,
        max_delay=5.0,
        sleep=waits.append,
    )
    assert outcomes[0].status == "failed" and "HTTP 503" in (outcomes[0].reason or "")
    assert len(postmark.requests) == 4 and len(waits) == 3
    assert all(0.5 <= w <= 5.0 for w in waits) and waits[2] >= waits[0]


def test_wrong_key_stops_with_a_configuration_error_naming_the_variable(
    rendered: RenderedIssue,
    client: httpx.Client,
    postmark: FakePostmark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for("postmark", postmark, monkeypatch)
    monkeypatch.setenv(KEY_ENV, "sk-WRONG-secret-value")
    provider = create_provider(settings, client)
    with pytest.raises(ProviderAuthError) as err:
        provider.send(Batch(rendered, people("a@example.org")))
    assert f"environment variable {KEY_ENV}" in str(err.value)
    assert "sk-WRONG-secret-value" not in str(err.value)


# --- SendGrid ---------------------------------------------------------------------------


def test_sendgrid_sends_one_body_with_a_personalization_per_recipient(
    rendered: RenderedIssue,
    client: httpx.Client,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("sendgrid", sendgrid, monkeypatch), client)
    recipients = people(*(f"r{i}@example.org" for i in range(5)))
    outcomes = provider.send(Batch(rendered, recipients))
    assert {o.status for o in outcomes} == {"accepted"}
    assert all(o.message_id for o in outcomes)
    for i, delivery in enumerate(sendgrid.deliveries):
        assert f"http://127.0.0.1:8026/unsubscribe/tok-{i}" in delivery.html
        assert f"http://127.0.0.1:8026/unsubscribe/tok-{i}" in delivery.text
        assert delivery.headers["List-Unsubscribe"].startswith(
            f"<http://127.0.0.1:8026/unsubscribe/tok-{i}>"
        )
    assert "-digest_" not in "".join(d.html for d in sendgrid.deliveries)


def test_sendgrid_request_carries_the_html_once(
    rendered: RenderedIssue,
    client: httpx.Client,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digest.providers.sendgrid import SendGrid

    provider = create_provider(settings_for("sendgrid", sendgrid, monkeypatch), client)
    assert isinstance(provider, SendGrid)
    payload = provider.request(Batch(rendered, people(*(f"r{i}@example.org" for i in range(50)))))[
        "json"
    ]
    assert len(payload["content"]) == 2 and len(payload["personalizations"]) == 50
    assert len(json.dumps(payload)) < 2 * len(rendered.html) + 50 * 2000
    assert payload["custom_args"] == {"issue": rendered.slug}


def test_sendgrid_sandbox_mode_accepts_without_delivering(
    rendered: RenderedIssue,
    client: httpx.Client,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("sendgrid", sendgrid, monkeypatch, test_mode=True), client
    )
    assert provider.send(Batch(rendered, people("a@example.org")))[0].status == "accepted"
    assert sendgrid.deliveries == []


def test_sendgrid_413_html_page_is_reported_not_parsed(
    rendered: RenderedIssue, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSendGrid(max_body=10_000)
    try:
        provider = create_provider(settings_for("sendgrid", fake, monkeypatch), client)
        outcomes = provider.send(Batch(rendered, people("a@example.org")))
        assert outcomes[0].status == "failed" and not outcomes[0].retryable
        assert "HTTP 413" in (outcomes[0].reason or "")
    finally:
        fake.close()


def test_sendgrid_bad_address_is_rejected_and_the_rest_delivered(
    rendered: RenderedIssue,
    client: httpx.Client,
    sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("sendgrid", sendgrid, monkeypatch), client)
    batch = Batch(rendered, people("a@example.org", "not-an-address", "c@example.org"))
    outcomes = send_with_retries(provider, batch, attempts=3, base_delay=0, sleep=lambda s: None)
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted"]
    assert outcomes[1].reason == "sendgrid: Does not contain a valid address."
    assert sorted(sendgrid.delivered_to()) == ["a@example.org", "c@example.org"]


def test_sendgrid_429_waits_until_the_rate_limit_reset() -> None:
    response = httpx.Response(
        429,
        headers={
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000030",
        },
    )
    assert retry_delay(response, now=lambda: 1_700_000_000.0) == 30.0
    assert retry_delay(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_delay(httpx.Response(429, headers={"ratelimit-reset": "3"})) == 3.0


# --- Mailgun ----------------------------------------------------------------------------


def test_mailgun_sends_one_call_with_recipient_variables(
    rendered: RenderedIssue,
    client: httpx.Client,
    mailgun: FakeMailgun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for("mailgun", mailgun, monkeypatch, domain="mg.example.org")
    provider = create_provider(settings, client)
    outcomes = provider.send(
        Batch(rendered, people("a@example.org", "b@example.org", "c@example.org"))
    )
    assert {o.status for o in outcomes} == {"accepted"}
    assert len({o.message_id for o in outcomes}) == 1 and len(mailgun.requests) == 1
    for i, delivery in enumerate(mailgun.deliveries):
        assert f"unsubscribe/tok-{i}" in delivery.html and f"unsubscribe/tok-{i}" in delivery.text
        assert delivery.headers["List-Unsubscribe"].startswith(
            f"<http://127.0.0.1:8026/unsubscribe/tok-{i}>"
        )
        assert "%recipient." not in delivery.html


def test_mailgun_one_bad_address_fails_the_call_so_it_is_dropped_and_the_rest_resent(
    rendered: RenderedIssue,
    client: httpx.Client,
    mailgun: FakeMailgun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("mailgun", mailgun, monkeypatch, domain="mg.example.org"), client
    )
    batch = Batch(rendered, people("a@example.org", "bad@@example", "c@example.org"))
    outcomes = send_with_retries(provider, batch, attempts=3, base_delay=0, sleep=lambda s: None)
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted"]
    assert len(mailgun.requests) == 2
    assert sorted(mailgun.delivered_to()) == ["a@example.org", "c@example.org"]


def test_mailgun_unknown_domain_is_a_configuration_error(
    rendered: RenderedIssue,
    client: httpx.Client,
    mailgun: FakeMailgun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("mailgun", mailgun, monkeypatch, domain="wrong.example.org"), client
    )
    with pytest.raises(
        ConfigError, match=r"Domain not found: wrong\.example\.org.*provider\.domain"
    ):
        provider.send(Batch(rendered, people("a@example.org")))


def test_mailgun_test_mode_accepts_without_delivering(
    rendered: RenderedIssue,
    client: httpx.Client,
    mailgun: FakeMailgun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(
        settings_for("mailgun", mailgun, monkeypatch, domain="mg.example.org", test_mode=True),
        client,
    )
    assert provider.send(Batch(rendered, people("a@example.org")))[0].status == "accepted"
    assert mailgun.testmode_accepted == 1 and mailgun.deliveries == []


def test_mailgun_needs_a_domain(
    client: httpx.Client, mailgun: FakeMailgun, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"provider\.domain"):
        create_provider(settings_for("mailgun", mailgun, monkeypatch), client)


# --- Resend -----------------------------------------------------------------------------


def test_resend_sends_every_request_with_an_idempotency_key(
    rendered: RenderedIssue,
    client: httpx.Client,
    resend: FakeResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("resend", resend, monkeypatch), client)
    provider.send(Batch(rendered, people("a@example.org", "b@example.org"), key="issue-7-batch-0"))
    provider.send(Batch(rendered, people("c@example.org"), key="issue-7-batch-1"))
    keys = [h.get("idempotency-key") for _, _, h in resend.requests]
    assert all(keys) and len(set(keys)) == 2
    assert [p for _, p, _ in resend.requests] == ["/emails/batch", "/emails"]


def test_resend_replays_a_lost_answer_without_sending_twice(
    rendered: RenderedIssue,
    client: httpx.Client,
    resend: FakeResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("resend", resend, monkeypatch), client)
    resend.faults.append(Fault(drop=True, after=True))  # sent, but the answer is lost
    batch = Batch(rendered, people("a@example.org", "b@example.org"), key="issue-7-batch-0")
    outcomes = send_with_retries(provider, batch, attempts=3, base_delay=0, sleep=lambda s: None)
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert sorted(resend.delivered_to()) == ["a@example.org", "b@example.org"]
    assert len(resend.requests) == 2


def test_resend_daily_quota_is_not_retried(
    rendered: RenderedIssue,
    client: httpx.Client,
    resend: FakeResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("resend", resend, monkeypatch), client)
    body = json.dumps(
        {
            "statusCode": 429,
            "name": "daily_quota_exceeded",
            "message": "You have reached your daily email sending quota.",
        }
    ).encode()
    resend.faults.append(Fault(429, {"Content-Type": "application/json"}, body))
    outcomes = send_with_retries(
        provider,
        Batch(rendered, people("a@example.org")),
        attempts=3,
        base_delay=0,
        sleep=lambda s: None,
    )
    assert outcomes[0].status == "failed" and not outcomes[0].retryable
    assert len(resend.requests) == 1


def test_resend_429_honours_retry_after(
    rendered: RenderedIssue,
    client: httpx.Client,
    resend: FakeResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = create_provider(settings_for("resend", resend, monkeypatch), client)
    body = json.dumps(
        {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests."}
    ).encode()
    resend.faults.append(
        Fault(
            429,
            {"Content-Type": "application/json", "retry-after": "2", "ratelimit-reset": "2"},
            body,
        )
    )
    waits: list[float] = []
    outcomes = send_with_retries(
        provider,
        Batch(rendered, people("a@example.org")),
        attempts=3,
        base_delay=0.01,
        sleep=waits.append,
    )
    assert outcomes[0].status == "accepted" and waits == [2.0]


def test_batch_sizes_stay_within_each_providers_limit(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, limit in [("postmark", 500), ("sendgrid", 1000), ("mailgun", 1000), ("resend", 100)]:
        monkeypatch.setenv(KEY_ENV, "k")
        settings = Settings(
            provider=ProviderSettings(
                name=name, api_key_env=KEY_ENV, domain="mg.example.org", batch_size=5000
            )
        )
        assert create_provider(settings, client).batch_size == limit


@pytest.mark.parametrize("name", ["postmark", "resend"])
def test_spliced_json_bodies_equal_the_personalised_message(
    rendered: RenderedIssue, client: httpx.Client, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from digest.render.message import personalise

    monkeypatch.setenv(KEY_ENV, "k")
    settings = Settings(provider=ProviderSettings(name=name, api_key_env=KEY_ENV))
    provider = create_provider(settings, client)
    recipients = (
        Recipient("a@example.org", 'Ann "Q" <&>', "t/1"),
        Recipient("b@example.org", None, "t2"),
    )
    request = provider.request(Batch(rendered, recipients, "[TEST] "))  # type: ignore[attr-defined]
    body = b"".join(request["content"])
    assert int(request["headers"]["Content-Length"]) == len(body)
    payload = json.loads(body)
    html_key, text_key = ("HtmlBody", "TextBody") if name == "postmark" else ("html", "text")
    for item, recipient in zip(payload, recipients, strict=True):
        expected = personalise(rendered, recipient, subject_prefix="[TEST] ")
        assert item[html_key] == expected.html and item[text_key] == expected.text


# --- What every provider carries ---------------------------------------------------------


@pytest.mark.parametrize("name", ["postmark", "sendgrid", "mailgun", "resend"])
def test_every_provider_sends_list_id_feedback_id_and_the_same_issue_id_as_metadata(
    rendered: RenderedIssue,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    name: str,
) -> None:
    fake = request.getfixturevalue(name)
    extra = {"domain": "mg.example.org"} if name == "mailgun" else {}
    provider = create_provider(settings_for(name, fake, monkeypatch, **extra), client)
    provider.send(Batch(rendered, people("a@example.org", "b@example.org"), key="k"))
    assert len(fake.deliveries) == 2
    for delivery in fake.deliveries:
        assert delivery.headers["List-Id"] == (
            "The Conversation Digest <the-conversation-digest.example.org>"
        )
        feedback = delivery.headers["Feedback-ID"]
        assert feedback == f"{rendered.slug}:issue:the-conversation-digest:example-org"
        assert delivery.metadata["issue"] == feedback.split(":")[0] == rendered.slug
        assert "Precedence" not in delivery.headers


@pytest.mark.parametrize("tracking", [False, True])
def test_open_and_click_tracking_is_off_unless_asked_for(
    rendered: RenderedIssue, client: httpx.Client, monkeypatch: pytest.MonkeyPatch, tracking: bool
) -> None:
    monkeypatch.setenv(KEY_ENV, "k")
    batch = Batch(rendered, people("a@example.org"), key="k")

    def request(name: str, **extra: Any) -> dict[str, Any]:
        options = {"name": name, "api_key_env": KEY_ENV, "tracking": tracking, **extra}
        provider = create_provider(Settings(provider=ProviderSettings(**options)), client)
        return provider.request(batch)  # type: ignore[attr-defined, no-any-return]

    postmark = json.loads(b"".join(request("postmark")["content"]))
    assert postmark["TrackOpens"] is tracking
    assert postmark["TrackLinks"] == ("HtmlOnly" if tracking else "None")
    sendgrid = request("sendgrid")["json"]["tracking_settings"]
    assert sendgrid == {
        "click_tracking": {"enable": tracking},
        "open_tracking": {"enable": tracking},
    }
    sent = request("mailgun", domain="mg.example.org")
    mailgun = multipart_form(sent["headers"]["Content-Type"], sent["content"])
    assert mailgun["o:tracking"] == ["yes" if tracking else "no"]


def test_mailgun_posts_multipart_form_data_not_urlencoded(
    rendered: RenderedIssue,
    client: httpx.Client,
    mailgun: FakeMailgun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # urlencoding a batch's bodies and 1,000 recipient variables cost about 40 µs a
    # recipient; multipart sends the same fields as they are (benchmarks/deliver.py)
    settings = settings_for("mailgun", mailgun, monkeypatch, domain="mg.example.org")
    provider = create_provider(settings, client)
    outcomes = provider.send(Batch(rendered, people("a@example.org", "b@example.org")))
    assert {o.status for o in outcomes} == {"accepted"}
    ((_, _, headers),) = mailgun.requests
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [d.email for d in mailgun.deliveries] == ["a@example.org", "b@example.org"]
    assert "Ana Lúcia Ferreira" in mailgun.deliveries[0].html
    assert (
        mailgun.deliveries[1]
        .headers["List-Unsubscribe"]
        .startswith("<http://127.0.0.1:8026/unsubscribe/tok-1>")
    )


@pytest.mark.parametrize("name", ["postmark", "sendgrid", "mailgun", "resend"])
def test_a_signup_confirmation_is_a_message_to_one_person_not_list_mail(
    name: str, client: httpx.Client, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from digest.signup import confirmation

    fake: FakeProvider = (
        FakePostmark(streams=("outbound",))  # a server with no broadcast stream
        if name == "postmark"
        else request.getfixturevalue(name)
    )
    with fake if name == "postmark" else contextlib.nullcontext(fake):
        extra = {"domain": "mg.example.org"} if name == "mailgun" else {}
        values = settings_for(name, fake, monkeypatch, **extra)
        provider = create_provider(values, client)
        mail = confirmation(values)
        outcomes = provider.send(Batch(mail, people("new@example.org"), key="confirm-1"))
        assert [o.status for o in outcomes] == ["accepted"]
        [delivered] = fake.deliveries
    assert "List-Unsubscribe" not in delivered.headers
    assert "List-Unsubscribe-Post" not in delivered.headers
    assert "http://127.0.0.1:8026/confirm/tok-0" in delivered.html
    assert "http://127.0.0.1:8026/confirm/tok-0" in delivered.text
    assert delivered.subject == "Confirm your subscription to The Conversation Digest"


@pytest.mark.parametrize("name", ["postmark", "sendgrid", "mailgun", "resend"])
def test_each_message_says_in_its_footer_which_address_it_was_sent_to(
    rendered: RenderedIssue,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    name: str,
) -> None:
    """A reader with several addresses (or a forwarded copy) can tell whose it is: the
    footer names the recipient's own address, in HTML (escaped) and text, never another's."""
    fake = request.getfixturevalue(name)
    extra = {"domain": "mg.example.org"} if name == "mailgun" else {}
    provider = create_provider(settings_for(name, fake, monkeypatch, **extra), client)
    readers = ("ann@example.org", "o'brien&co@example.org")
    provider.send(Batch(rendered, people(*readers), key="k"))
    assert sorted(d.email for d in fake.deliveries) == sorted(readers)
    for delivery in fake.deliveries:
        other = next(r for r in readers if r != delivery.email)
        escaped = delivery.email.replace("&", "&amp;").replace("'", "&#x27;")
        assert f"Sent to {escaped}" in delivery.html, delivery.html[-1500:]
        assert f"Sent to {delivery.email}" in delivery.text
        assert other not in delivery.html + delivery.text.replace(delivery.email, "")
        assert "__DIGEST_" not in delivery.html + delivery.text


@pytest.mark.parametrize("name", ["postmark", "sendgrid", "mailgun", "resend"])
@pytest.mark.parametrize("by_field", [False, True])
def test_every_provider_greets_each_reader_with_the_whole_greeting_line(
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    by_field: bool,
) -> None:
    """ "Dear {name}," reaches each reader whole, with their own name; a greeting by a
    field with an empty fallback leaves the line out for a reader without the field."""
    greeting = {"greeting": "Hi {first_name},", "greeting_fallback": ""} if by_field else {
        "greeting": "Dear {name},"}  # fmt: skip
    values = Settings.model_validate(
        {"newsletter": greeting, "audience": {"fields": {"first_name": {"type": "text"}}}}
    )
    issue, path = compose([str(SAMPLE)], values, url=SAMPLE_URL, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=False)
    greeted = build(path, values).rendered
    fake = request.getfixturevalue(name)
    extra = {"domain": "mg.example.org"} if name == "mailgun" else {}
    provider = create_provider(settings_for(name, fake, monkeypatch, **extra), client)
    readers = (
        Recipient("ann@example.org", "Ann Lee", "tok-0", "Ann"),
        Recipient("bo@example.org", "Bo Berg", "tok-1", None),
    )
    provider.send(Batch(greeted, readers, key="k"))
    got = {d.email: d for d in fake.deliveries}
    ann, bo = got["ann@example.org"], got["bo@example.org"]
    if by_field:
        assert "Hi Ann," in ann.html and "Hi Ann," in ann.text
        assert "Hi " not in bo.html + bo.text
    else:
        assert "Dear Ann Lee," in ann.html and "Dear Ann Lee," in ann.text
        assert "Dear Bo Berg," in bo.html and "Dear Bo Berg," in bo.text
    assert "__DIGEST_" not in ann.html + ann.text + bo.html + bo.text


@pytest.mark.parametrize("name", ["postmark", "sendgrid", "mailgun", "resend"])
@pytest.mark.parametrize("plain", [True, False])
def test_every_provider_fills_each_readers_fields_where_the_template_puts_them(
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    name: str,
    plain: bool,
) -> None:
    """``subscriber.get`` and ``subscriber.line`` reach each reader with their own
    values, escaped in HTML, the fallback where they have none; a batch whose address
    needs escaping takes Mailgun's other path, which must fill them alike."""
    from tests.test_subscriber_fields import templates_with

    folder = templates_with(
        tmp_path,
        html_uses="Hello {{ subscriber.get('city', 'friend') }}. "
        "{{ subscriber.line('Desk: {region}.', fallback='') }}",
        text_uses="Hello {{ subscriber.get('city', 'friend') }}.",
    )
    values = Settings.model_validate(
        {
            "audience": {"fields": {"city": {"type": "text"}, "region": {"type": "text"}}},
            "render": {"templates": str(folder)},
        }
    )
    issue, path = compose([str(SAMPLE)], values, url=SAMPLE_URL, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=False)
    rendered = build(path, values).rendered
    fake = request.getfixturevalue(name)
    extra = {"domain": "mg.example.org"} if name == "mailgun" else {}
    provider = create_provider(settings_for(name, fake, monkeypatch, **extra), client)
    bo = "bo@example.org" if plain else "bo&co@example.org"
    readers = (
        Recipient("ann@example.org", "Ann", "tok-0", None, {"city": "Ōsaka <Umeda>",
                                                             "region": "Asia"}),
        Recipient(bo, "Bo", "tok-1", None, {}),
    )  # fmt: skip
    provider.send(Batch(rendered, readers, key="k"))
    got = {d.email: d for d in fake.deliveries}
    ann, bo_mail = got["ann@example.org"], got[bo]
    assert "Hello Ōsaka &lt;Umeda&gt;. Desk: Asia." in ann.html
    assert "Hello Ōsaka <Umeda>." in ann.text
    assert "Hello friend." in bo_mail.html
    assert "Desk:" not in bo_mail.html and "Hello friend." in bo_mail.text
    assert "__DIGEST_" not in ann.html + ann.text + bo_mail.html + bo_mail.text
