"""Bad input gets one line, never a traceback: the cases found from outside, each by
hand, and generated issue files and config values (Hypothesis) through check, render and
a test send."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import main
from tests.conftest import SAMPLE, SAMPLE_URL, run
from tests.test_hostile_inputs import one_line_error

ISSUE = "issues/2026-03-04-can-harbor-cities-hold-the-line-against-the-sea.yaml"


@pytest.fixture
def composed(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_SIGNING_KEY", "a-signing-key-of-enough-length")
    assert run("compose", str(SAMPLE), "--url", SAMPLE_URL).exit_code == 0
    return in_tmp / ISSUE


def replace_key(path: Path, key: str, value: str, name: str) -> Path:
    text = path.read_text(encoding="utf-8")
    changed = re.sub(rf"^{key}: .*$", lambda _: f"{key}: {value}", text, count=1, flags=re.M)
    target = path.with_name(name)
    target.write_text(changed, encoding="utf-8")
    return target


@pytest.mark.parametrize("command", [["check"], ["render"], ["send", "--test"],
                                     ["schedule", "--at", "now"]])  # fmt: skip
@pytest.mark.parametrize(
    ("key", "value", "why"),
    [("subject", '"Line one\\nline two"', "subject: must be one line"),
     ("subject", '"Line one\\rtwo"', "subject: must be one line"),
     ("subject", '"Line one\\u2028two"', "subject: must be one line"),
     ("subject", '"Line one\\u2029two"', "subject: must be one line"),
     ("date", "2024-13-45", "not on the calendar"),
     ("date", "2024-02-30", "not on the calendar")],
)  # fmt: skip
def test_an_issue_file_with_a_bad_value_gets_one_line_from_every_command(
    composed: Path, command: list[str], key: str, value: str, why: str
) -> None:
    bad = replace_key(composed, key, value, "bad.yaml")
    one_line_error(run(*command, str(bad)), "bad.yaml", why)


@pytest.mark.parametrize("command", [["render"], ["send", "--test"]])
@pytest.mark.parametrize(
    ("config", "why"),
    [('newsletter:\n  from: "A <a@example.org>\\nBcc: x@evil.example"\n', "newsletter.from"),
     ('newsletter:\n  greeting: "Dear {name} {0}"\n', "newsletter.greeting"),
     ("render:\n  templates: tpl\n", "the template failed (ZeroDivisionError"),
     ('render:\n  sample_recipient: ""\n', "render.sample_recipient"),
     ('render:\n  sample_recipient: "x"\n', "render.sample_recipient")],
)  # fmt: skip
def test_a_config_that_cannot_make_a_message_gets_one_line(
    composed: Path, command: list[str], config: str, why: str
) -> None:
    templates = composed.parent.parent / "tpl"
    templates.mkdir(exist_ok=True)
    for name in ("email.mjml.j2", "email.txt.j2"):
        text = (Path(__file__).parent.parent / "templates" / name).read_text(encoding="utf-8")
        (templates / name).write_text(text + ("{{ 1 / 0 }}\n" if name.endswith("txt.j2") else ""))
    (composed.parent.parent / "config.yaml").write_text(config, encoding="utf-8")
    one_line_error(run(*command, str(composed)), why)


@pytest.mark.parametrize("url", ["http://[::1", "http://a:b:c/", "https://[not-an-ip]/x"])
def test_a_malformed_address_to_compose_gets_one_line(in_tmp: Path, url: str) -> None:
    one_line_error(run("compose", url), url, "not a valid web address")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))  # exceptions caught: we look for them


def assert_one_line_or_success(result: Any, what: str) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{what}: {type(result.exception).__name__}: {result.exception}")
    assert result.exit_code in (0, 1), (what, result.output)
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("digest: error: "), (what, result.stderr)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
SCALAR = st.one_of(
    TEXT, st.integers(-(10**12), 10**12), st.booleans(), st.none(),
    st.floats(allow_nan=True), st.dates().map(str),
    st.sampled_from(["2024-13-45", "2024-02-30", "0001-01-01", "9999-12-31", "{name}", "{0}",
                     "a\nb", "a\u2028b", "[x", "&a x", "*a", "https://example.org/x", "http://[::1"]),
)  # fmt: skip
ISSUE_KEYS = ["subject", "preheader", "date", "editor_note", "feeds"]
CONFIG_KEYS = {
    "newsletter": ["name", "from", "reply_to", "greeting", "greeting_fallback", "language",
                   "list_id", "postal_address", "direction", "sender_id"],
    "render": ["font_family", "sample_recipient", "sample_name", "fonts"],
    "web": ["base_url", "publish", "confirm_days", "latest_issues", "trusted_proxies",
            "max_connections", "header_timeout"],
    "unsubscribe": ["url", "mailto"],
    "limits": ["issue_file_bytes", "yaml_depth", "issue_sections", "issue_experts"],
}  # fmt: skip


def yaml_value(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)  # JSON is YAML


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    issue_changes=st.dictionaries(st.sampled_from(ISSUE_KEYS), SCALAR, max_size=3),
    section=st.sampled_from(list(CONFIG_KEYS)),
    config_changes=st.data(),
)
def test_generated_issue_files_and_config_values_give_success_or_one_line(
    composed: Path, issue_changes: dict[str, Any], section: str, config_changes: Any
) -> None:
    folder = composed.parent.parent
    keys = config_changes.draw(st.dictionaries(st.sampled_from(CONFIG_KEYS[section]), SCALAR,
                                               max_size=2))  # fmt: skip
    config = f"{section}:\n" + "".join(f"  {k}: {yaml_value(v)}\n" for k, v in keys.items())
    (folder / "config.yaml").write_text(config if keys else "", encoding="utf-8")
    issue = composed
    for key, value in issue_changes.items():
        issue = replace_key(issue, key, yaml_value(value), "generated.yaml")
    for command in (["check"], ["render"], ["send", "--test"]):
        assert_one_line_or_success(
            invoke(*command, str(issue)), f"{command} {config!r} {issue_changes!r}"
        )
