"""Subscriber fields anywhere in a template (issue 27): ``{{ subscriber.region }}``,
``subscriber.get('region', 'fallback')`` and ``subscriber.line('… {region} …')`` reach
each reader with their own values, the fallback where they lack one, never a marker;
a use that cannot work is refused with the template's file and line."""

from __future__ import annotations

import email
import shutil
from pathlib import Path

import pytest

from digest.build import build
from digest.config import Settings
from digest.errors import RenderError
from digest.issuefile import load_issue
from digest.render import render_issue
from digest.render.message import Recipient, personalise
from digest.render.templates import bundled_templates
from digest.schedule import rendered_from_json, rendered_to_json
from tests.conftest import run
from tests.helpers import (
    SIGNING_ENV,
    SIGNING_KEY,
    deliver_to_outbox,
    sample_issue,
    settings,
    yaml_config,
)

FIELDS = {
    "region": {"type": "choice", "choices": ["Asia", "Europe"], "columns": ["Region"]},
    "city": {"type": "text"},
    "issues_read": {"type": "number"},
    "member": {"type": "boolean"},
    "joined_on": {"type": "date"},
}
HTML_USES = (
    "Your region: {{ subscriber.region }}.|"
    "Hello {{ subscriber.get('city', 'from wherever you are') }}.|"
    "{{ subscriber.line('News for {city} in {region}.', fallback='') }}|"
    "Read {{ subscriber.issues_read }}; member {{ subscriber.member }}; "
    "since {{ subscriber.joined_on }}."
)
TEXT_USES = "Text: {{ subscriber.line('News for {city} in {region}.') }}"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


def templates_with(folder: Path, html_uses: str = HTML_USES, text_uses: str = TEXT_USES) -> Path:
    """The bundled templates with ``html_uses`` in a section after the greeting and
    ``text_uses`` after the text part's greeting."""
    target = folder / "templates"
    shutil.copytree(bundled_templates(), target, dirs_exist_ok=True)
    mjml = (target / "email.mjml.j2").read_text()
    section = (
        '    <mj-section background-color="#ffffff" css-class="dg-card"><mj-column>'
        f'<mj-text css-class="dg-text">{html_uses}</mj-text></mj-column></mj-section>\n'
    )
    mjml = mjml.replace("{%- if staff_note %}", section + "{%- if staff_note %}", 1)
    (target / "email.mjml.j2").write_text(mjml)
    text = (target / "email.txt.j2").read_text()
    (target / "email.txt.j2").write_text(
        text.replace("{%- if staff_note %}", text_uses + "\n{%- if staff_note %}", 1)
    )
    return target


def field_settings(folder: Path, **render: object) -> Settings:
    base = settings(folder)
    extra = Settings.model_validate(
        {
            "audience": {"fields": FIELDS},
            "render": {"templates": str(templates_with(folder)), **render},
        }
    )
    return base.model_copy(update={"audience": extra.audience, "render": extra.render})


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return html, text


def test_each_reader_gets_their_own_fields_and_the_fallbacks_where_they_have_none(
    tmp_path: Path,
) -> None:
    """Through the real path: a store with typed attributes, a scheduled issue, delivery
    to the outbox. Ann has every field; Bo has none; Cy's city needs escaping."""
    values = field_settings(tmp_path)
    people = [
        ("ann@example.org", "Ann Lee", {"region": "Asia", "city": "Osaka", "issues_read": 12.0,
                                        "member": True, "joined_on": "2025-01-31"}),
        ("bo@example.org", "Bo Berg", {}),
        ("cy@example.org", "Cy Diaz", {"region": "Europe", "city": "<b>Lyon</b> & Co"}),
    ]  # fmt: skip
    sent = {to: parts(m) for to, m in deliver_to_outbox(values, tmp_path, people).items()}
    ann_html, ann_text = sent["ann@example.org"]
    assert "Your region: Asia." in ann_html
    assert "Hello Osaka." in ann_html
    assert "News for Osaka in Asia." in ann_html
    assert "Text: News for Osaka in Asia." in ann_text
    # typed values as a reader reads them: a whole number, yes/no, the date
    assert "Read 12; member yes; since 2025-01-31." in ann_html
    bo_html, bo_text = sent["bo@example.org"]
    assert "Your region: ." in bo_html
    assert "Hello from wherever you are." in bo_html
    assert "News for" not in bo_html + bo_text  # an empty fallback: nothing at all
    assert "\nText: \n" in bo_text  # the line, without the phrase
    cy_html, cy_text = sent["cy@example.org"]
    assert "News for &lt;b&gt;Lyon&lt;/b&gt; &amp; Co in Europe." in cy_html
    assert "<b>Lyon</b>" not in cy_html  # a value is text, never markup
    assert "News for <b>Lyon</b> & Co in Europe." in cy_text
    for html, text in sent.values():
        assert "__DIGEST" not in html + text
        assert "Osaka" not in html + text or (html, text) == sent["ann@example.org"]


def test_the_archive_page_shows_every_field_as_its_fallback(tmp_path: Path) -> None:
    values = field_settings(tmp_path)
    issue = load_issue(sample_issue(tmp_path))
    page = render_issue(issue, values, "s", web_version=True).html
    assert "Hello from wherever you are." in page
    assert "News for" not in page and "__DIGEST" not in page


def test_a_render_frozen_with_fields_sends_the_same_after_its_round_trip(tmp_path: Path) -> None:
    """What schedule keeps (JSON) gives the same messages; renders frozen before fields
    existed (no pieces) still load."""
    rendered = build(sample_issue(tmp_path), field_settings(tmp_path)).rendered
    again = rendered_from_json(rendered_to_json(rendered))
    reader = Recipient("a@example.org", "A", "t", None, {"city": "Oslo", "region": "Europe"})
    assert personalise(again, reader) == personalise(rendered, reader)
    older = rendered_to_json(rendered).replace('"pieces"', '"unused"')
    import json

    data = json.loads(older)
    data.pop("unused")
    assert rendered_from_json(json.dumps(data)).pieces == ()


def test_the_preview_shows_a_sample_with_fields_and_one_without(tmp_path: Path) -> None:
    """``audience.sample`` gives the preview's reader its fields; the build also shows a
    reader without any, as the checks promise."""
    values = field_settings(tmp_path)
    values = values.model_copy(
        update={
            "audience": Settings.model_validate(
                {"audience": {"fields": FIELDS, "sample": {"city": "Quito", "region": "Asia"}}}
            ).audience
        }
    )
    result = build(sample_issue(tmp_path), values)
    assert "News for Quito in Asia." in result.sample.html
    assert result.without_fields is not None
    assert "Hello from wherever you are." in result.without_fields.html
    assert "News for" not in result.without_fields.html


@pytest.mark.parametrize(
    ("uses", "said"),
    [
        ("{{ subscriber.regoin }}", "subscriber.regoin: no such field"),
        ("{% if subscriber.region %}x{% endif %}", "cannot test it"),
        ("{{ subscriber.region or 'x' }}", "cannot test it"),
        ("{{ subscriber.line('{region.__class__}') }}", "write each field as {field} alone"),
        ("{{ subscriber.line('{region!r}') }}", "write each field as {field} alone"),
        ("{{ subscriber.line('no field here') }}", "names no field"),
        ('<a href="https://example.org/{{ subscriber.city }}">x</a>', "in a link"),
        (
            '<span style="background:url(https://e.org/{{ subscriber.city }}.png)">x</span>',
            "in a link",
        ),
        ("{{ subscriber.city | upper }}", "the filter upper cannot change a subscriber field"),
        ("{{ subscriber.city | truncate(3) }}", "the filter truncate cannot change"),
        ("{{ subscriber.city.lower() }}", "was changed as the template ran"),
        ("{{ subscriber }}", "write one field, subscriber.FIELD"),
    ],
)
def test_a_use_of_a_field_that_cannot_work_is_refused_in_one_line(
    in_tmp: Path, uses: str, said: str
) -> None:
    folder = templates_with(in_tmp, html_uses=uses, text_uses="")
    values = Settings.model_validate(
        {"audience": {"fields": FIELDS}, "render": {"templates": str(folder)}}
    )
    Path("config.yaml").write_text(yaml_config(values))
    checked = run("check", str(sample_issue(in_tmp)))
    assert checked.exit_code == 1
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in checked.stderr, checked.stderr
    assert said in lines[0]
    assert "email.mjml.j2" in lines[0]  # the template (and its line, where Jinja knows it)


def test_jinjas_default_filter_gives_a_field_its_fallback(tmp_path: Path) -> None:
    """``{{ subscriber.city | default('friend') }}`` means what a template author
    expects: the fallback for a reader without the field (not the marker, never
    silently nothing), and only that use is reported."""
    folder = templates_with(
        tmp_path, html_uses="Hi {{ subscriber.city | default('friend') }}!", text_uses=""
    )
    values = Settings.model_validate(
        {"audience": {"fields": FIELDS}, "render": {"templates": str(folder)}}
    )
    result = build(sample_issue(tmp_path), values)
    assert result.rendered.pieces == (("{city}", "friend"),)
    assert result.without_fields is not None and "Hi friend!" in result.without_fields.html
    reader = Recipient("a@example.org", "A", "t", None, {"city": "Oslo"})
    assert "Hi Oslo!" in personalise(result.rendered, reader).html


def test_check_says_what_a_reader_without_each_field_gets(in_tmp: Path) -> None:
    Path("config.yaml").write_text(yaml_config(field_settings(in_tmp)))
    checked = run("check", str(sample_issue(in_tmp)))
    out = checked.stdout
    assert "note: a subscriber without city gets 'from wherever you are'" in out
    assert "note: a subscriber without city or region gets nothing for 'News for" in out


def test_an_issue_cannot_smuggle_a_readers_values_into_its_text(tmp_path: Path) -> None:
    """A source page or an issue file that contains digest's per-reader markers gets
    them as plain text: no reader's link, address or field is put there, and an unknown
    field marker breaks nothing."""
    path = sample_issue(tmp_path)
    text = path.read_text()
    hostile = (
        "__DIGEST_UNSUBSCRIBE_URL__ __DIGEST_ADDRESS__ __DIGEST_F0__ __DIGEST_F9__ __digest_f0__"
    )
    path.write_text(text.replace("- name: ", f"- name: {hostile} ", 1))
    values = field_settings(tmp_path)
    rendered = build(path, values).rendered
    reader = Recipient("ann@example.org", "Ann", "tok-secret", None, {"region": "Asia"})
    message = personalise(rendered, reader)
    line = next(x for x in message.text.splitlines() if "DIGEST" in x)
    assert "tok-secret" not in line and "ann@example.org" not in line and "Asia" not in line


def test_templates_without_fields_ask_the_store_for_none(tmp_path: Path) -> None:
    result = build(sample_issue(tmp_path), settings(tmp_path))
    assert result.rendered.pieces == () and result.rendered.fields_used == ()
    assert result.without_fields is None


def test_a_field_no_config_declares_stops_the_render(tmp_path: Path) -> None:
    folder = templates_with(tmp_path / "t", html_uses="{{ subscriber.city }}", text_uses="")
    with pytest.raises(RenderError, match="no such field"):
        render_issue(
            load_issue(sample_issue(tmp_path)),
            Settings.model_validate({"render": {"templates": str(folder)}}),
            "s",
        )


def test_a_long_field_value_is_cut_so_no_reader_can_swell_a_providers_request(
    tmp_path: Path,
) -> None:
    """A field is a short text (a city, a first name): a 10,000-character value from
    an import or the API reaches the mail cut to 255 characters, ending in "…", so one
    reader cannot push a SendGrid personalization or Mailgun's variables past a limit."""
    rendered = build(sample_issue(tmp_path), field_settings(tmp_path)).rendered
    huge = "Lyon " * 2000
    reader = Recipient("a@example.org", "A", "t", None, {"city": huge, "region": "Europe"})
    text = personalise(rendered, reader).text
    line = next(x for x in text.splitlines() if x.startswith("Text: News for "))
    city = line.removeprefix("Text: News for ").removesuffix(" in Europe.")
    assert len(city) <= 255 and city.endswith("…") and city.startswith("Lyon Lyon")
    dear = Settings.model_validate({"newsletter": {"greeting": "Dear {name},"}})
    greeted = build(sample_issue(tmp_path), dear).rendered
    text = personalise(greeted, Recipient("a@example.org", huge, "t")).text
    line = next(x for x in text.splitlines() if x.startswith("Dear "))
    assert line.startswith("Dear Lyon Lyon") and len(line) <= len("Dear ,") + 255


def test_a_render_frozen_before_fields_sends_marker_like_text_as_it_is(tmp_path: Path) -> None:
    """An issue scheduled by an earlier digest (no uses of fields, its text not yet
    guarded) may hold text that looks like a field marker: Postmark's and Resend's
    spliced bodies send it as it is instead of stopping the delivery."""
    import dataclasses

    from digest.render.message import JsonBodies, recipient_values

    rendered = build(sample_issue(tmp_path), settings(tmp_path)).rendered
    older = dataclasses.replace(rendered, text=rendered.text + "__DIGEST_F0__\n", pieces=())
    reader = Recipient("a@example.org", "A", "t")
    _, text = JsonBodies(older).for_recipient(recipient_values(older, reader))
    assert b"__DIGEST_F0__" in b"".join(text)
    assert personalise(older, reader).text.endswith("__DIGEST_F0__\n")
