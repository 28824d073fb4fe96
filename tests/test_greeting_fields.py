"""Greeting by a subscriber field (issue 27): "Hi {first_name}," greets those who have
the field; the others get the fallback, or no greeting line at all when the fallback is
empty; the To header keeps the full name; `digest check` says what a subscriber without
the field sees."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from digest.config import Settings
from tests.conftest import run
from tests.helpers import (
    SIGNING_ENV,
    SIGNING_KEY,
    deliver_to_outbox,
    sample_issue,
    settings,
    yaml_config,
)

FIELDS = {"fields": {"first_name": {"type": "text", "columns": ["First Name"]}}}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


def greeting_settings(folder: Path, fallback: str) -> Settings:
    extra = Settings.model_validate({
        "audience": FIELDS,
        "newsletter": {"greeting": "Hi {first_name},", "greeting_fallback": fallback},
    })  # fmt: skip
    return settings(folder).model_copy(
        update={"audience": extra.audience, "newsletter": extra.newsletter}
    )


def delivered(values: Settings, folder: Path) -> dict[str, email.message.EmailMessage]:
    people = [
        ("ann@example.org", "Ann Lee", {"first_name": "Ann"}),
        ("bo@example.org", "Bo Berg", {}),
    ]
    return deliver_to_outbox(values, folder, people)  # type: ignore[arg-type]


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_greet_by_first_name_else_nothing(tmp_path: Path) -> None:
    sent = delivered(greeting_settings(tmp_path, ""), tmp_path)
    ann, bo = sent["ann@example.org"], sent["bo@example.org"]
    assert str(ann["To"]) == "Ann Lee <ann@example.org>"  # the To header: the full name
    assert "Hi Ann," in text_of(ann) and "Hi Ann," in html_of(ann)
    for part in (text_of(bo), html_of(bo)):
        assert "Hi " not in part and "__DIGEST" not in part  # no line, no marker left


def test_greet_by_first_name_else_the_fallback(tmp_path: Path) -> None:
    sent = delivered(greeting_settings(tmp_path, "there"), tmp_path)
    assert "Hi there," in text_of(sent["bo@example.org"])
    assert "Hi Ann," in html_of(sent["ann@example.org"])


def test_a_greeting_by_an_undeclared_field_is_refused_with_its_line(in_tmp: Path) -> None:
    Path("config.yaml").write_text('newsletter:\n  greeting: "Hi {first_name},"\n')
    result = run("newsletters")
    assert result.exit_code == 1
    assert "{first_name} is not a text field of audience.fields" in result.stderr


def test_check_shows_what_a_subscriber_without_the_field_gets(in_tmp: Path) -> None:
    Path("config.yaml").write_text(yaml_config(greeting_settings(in_tmp, "")))
    issue = sample_issue(in_tmp)
    checked = run("check", str(issue))
    assert "note: a subscriber without first_name gets no greeting line" in checked.stdout
    Path("config.yaml").write_text(yaml_config(greeting_settings(in_tmp, "there")))
    checked = run("check", str(issue))
    assert "note: a subscriber without first_name gets the greeting 'Hi there,'" in checked.stdout
