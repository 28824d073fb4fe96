"""Rendering: golden files, the .eml's structure, per-recipient substitution, safety."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.build import Build, build, write_outputs
from digest.compose import compose
from digest.config import Render, Settings
from digest.errors import RenderError
from digest.issuefile import dump_issue, write_issue
from digest.newsletters import Newsletter
from digest.render import NAME_MARKER, UNSUBSCRIBE_MARKER, render_issue
from digest.render.message import Recipient, personalise, to_email
from digest.render.templates import bundled_templates
from tests.conftest import SAMPLE, SAMPLE_URL, SEED_URL
from tests.pages import PageServer

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = Settings()


def compose_to(tmp: Path, source: Path = SAMPLE, url: str = SAMPLE_URL) -> Path:
    issue, path = compose([str(source)], SETTINGS, url=url, out_dir=tmp)
    write_issue(dump_issue(issue), path, force=True)
    return path


@pytest.fixture
def sample_build(tmp_path: Path) -> Build:
    return build(compose_to(tmp_path), SETTINGS)


def test_sample_matches_the_golden_files(sample_build: Build, update_golden: bool) -> None:
    # Regenerate after a deliberate change: .venv/bin/pytest tests/test_render.py --update-golden
    outputs = {
        "sample.html": sample_build.sample.html.encode(),
        "sample.txt": sample_build.sample.text.encode(),
        "sample.eml": sample_build.eml,
    }
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        for name, data in outputs.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in outputs.items():
        assert data == (GOLDEN / name).read_bytes(), (
            f"{name} differs from tests/golden/{name}; if the change is intended, "
            "run: .venv/bin/pytest tests/test_render.py --update-golden and review the diff"
        )


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    path = compose_to(tmp_path)
    first, second = build(path, SETTINGS), build(path, SETTINGS)
    assert first.eml == second.eml and first.sample.html == second.sample.html


def parse(eml: bytes) -> EmailMessage:
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_eml_is_multipart_alternative_text_then_html_with_list_unsubscribe(
    sample_build: Build,
) -> None:
    message = parse(sample_build.eml)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert message["Subject"] == "Can Harbor Cities Hold the Line Against the Sea?"
    assert message["From"] == "The Conversation Digest <digest@example.org>"
    assert message["To"] == "Sample Reader <reader@example.org>"
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    unsubscribe = "http://127.0.0.1:8026/unsubscribe/sample"
    assert message["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:unsubscribe@example.org?subject=unsubscribe%20sample>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw_header = next(
        line for line in sample_build.eml.split(b"\n") if line.startswith(b"List-Unsubscribe:")
    )
    assert raw_header.rstrip().endswith(b"sample>"), "List-Unsubscribe must stay on one line"
    assert unsubscribe in parts[0].get_content() and unsubscribe in parts[1].get_content()


def test_eml_carries_list_id_and_feedback_id_from_config_and_no_precedence(
    tmp_path: Path,
) -> None:
    settings = Settings(
        newsletter=Newsletter(list_id="harbor.news.example.org", sender_id="example-news")
    )
    built = build(compose_to(tmp_path), settings)
    message = parse(built.eml)
    assert message["List-Id"] == "The Conversation Digest <harbor.news.example.org>"
    assert message["Feedback-ID"] == f"{built.rendered.slug}:issue:harbor:example-news"
    assert message["Precedence"] is None
    # the defaults: a list id from the name and the sender's domain, the domain as sender id
    default = parse(build(compose_to(tmp_path), SETTINGS).eml)
    assert default["List-Id"] == "The Conversation Digest <the-conversation-digest.example.org>"
    assert default["Feedback-ID"].endswith(":issue:the-conversation-digest:example-org")
    # a long Feedback-ID (it has no spaces) stays on one raw line, never folded or
    # RFC 2047-encoded into something Gmail cannot read
    eml = build(compose_to(tmp_path), SETTINGS).eml
    raw = next(line for line in eml.split(b"\n") if line.startswith(b"Feedback-ID:"))
    assert raw.rstrip() == f"Feedback-ID: {default['Feedback-ID']}".encode()
    assert len(raw) > 78


def test_html_declares_language_direction_and_turns_off_client_reformatting(
    tmp_path: Path,
) -> None:
    doc = lxml_html.document_fromstring(build(compose_to(tmp_path), SETTINGS).sample.html)
    assert (doc.get("lang"), doc.get("dir")) == ("en", "ltr")
    metas = {m.get("name"): m.get("content") for m in doc.iter("meta") if m.get("name")}
    assert "x-apple-disable-message-reformatting" in metas
    assert metas["format-detection"] == "telephone=no, date=no, address=no, email=no"
    rtl = Settings(newsletter=Newsletter(language="ar"))
    doc = lxml_html.document_fromstring(build(compose_to(tmp_path), rtl).sample.html)
    assert (doc.get("lang"), doc.get("dir")) == ("ar", "rtl")


def test_expert_names_and_titles_are_headings_screen_readers_can_jump_between(
    sample_build: Build,
) -> None:
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    h1 = [" ".join(h.text_content().split()) for h in doc.iter("h1")]
    h2 = [" ".join(h.text_content().split()) for h in doc.iter("h2")]
    assert h1 == ["Can Harbor Cities Hold the Line Against the Sea?"]
    assert h2 == [e.name for e in sample_build.issue.sections[0].experts]


def test_attribute_selectors_for_outlook_dark_mode_sit_in_a_style_block_of_their_own(
    sample_build: Build,
) -> None:
    # Gmail drops a whole <style> block that holds a selector it does not support; the
    # Outlook [data-ogsc]/[data-ogsb] rules must never take the mobile or dark rules with them.
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    blocks = [s.text or "" for s in doc.iter("style")]
    with_attributes = [b for b in blocks if "[data-og" in b]
    assert with_attributes, "no Outlook dark-mode rules"
    for block in with_attributes:
        rules = [r.strip() for r in block.split("}") if r.strip()]
        assert all(r.startswith("[data-og") for r in rules), block
    assert not any("[" in b for b in blocks if b not in with_attributes)


def test_reply_to_is_set_when_configured(tmp_path: Path) -> None:
    settings = Settings(newsletter=Newsletter(reply_to="Desk <desk@example.org>"))
    message = parse(build(compose_to(tmp_path), settings).eml)
    assert message["Reply-To"] == "Desk <desk@example.org>"


def test_every_expert_has_name_excerpt_and_read_more_in_html_and_text(sample_build: Build) -> None:
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    body_text = " ".join(doc.text_content().split())
    hrefs = [a.get("href") for a in doc.iter("a")]
    text = " ".join(sample_build.sample.text.split())
    for expert in sample_build.issue.sections[0].experts:
        first_words = " ".join(expert.excerpt.split()[:6])
        assert expert.name in body_text and first_words in body_text
        assert expert.read_more in hrefs
        assert expert.name in text and first_words in text
        assert f"Read more:\n{expert.read_more}\n" in sample_build.sample.text
    assert "Read more from Ana Lúcia Ferreira" in body_text


def test_html_has_lang_title_preheader_and_footer(sample_build: Build) -> None:
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    assert doc.get("lang") == "en"
    assert doc.findtext(".//title") == sample_build.issue.subject
    body = doc.find("body")
    assert body is not None
    # the first text in the body (what an inbox shows after the subject) is the hidden
    # preheader
    first = next(e for e in body.iter() if (e.text or "").strip())
    assert "display:none" in (first.get("style") or "").replace(" ", "")
    assert first.text_content().startswith(sample_build.issue.preheader or "")
    assert "\u200c" in first.text_content()  # padded so the snippet stops there
    assert "color" not in (first.get("style") or "")  # no low-contrast text for spam filters
    text = " ".join(doc.text_content().split())
    assert SETTINGS.newsletter.postal_address in text
    assert SETTINGS.newsletter.name in text


def test_mobile_media_rules_keep_important_after_inlining(sample_build: Build) -> None:
    styles = "".join(sample_build.sample.html.split("<style")[1:])
    assert re.search(r"@media only screen and \(min-width:480px\)\s*\{[^}]*!important", styles)
    assert "prefers-color-scheme: dark" in styles
    assert sample_build.sample.html.startswith("<!doctype html>")


def test_inlining_puts_template_css_on_the_elements(sample_build: Build) -> None:
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    link = next(a for a in doc.iter("a") if a.text == "three decades")
    assert "color:#7a2e12" in (link.get("style") or "").replace(" ", "")


def test_no_web_fonts_are_linked_by_default(sample_build: Build) -> None:
    assert "fonts.googleapis.com" not in sample_build.sample.html
    assert "<link" not in sample_build.sample.html


def test_text_part_wraps_at_78_and_never_breaks_urls(sample_build: Build) -> None:
    for line in sample_build.sample.text.splitlines():
        assert (
            len(line) <= 78 or re.search(r"https?://\S+$", line) or line.startswith("Read more:")
        ), line
    for expert in sample_build.issue.sections[0].experts:
        assert expert.read_more in sample_build.sample.text


def test_personalising_fills_markers_without_rendering_again(
    sample_build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.render.html as html_module

    def fail(*args: object, **kwargs: object) -> str:
        raise AssertionError("personalise must not compile or inline again")

    monkeypatch.setattr(html_module, "compile_mjml", fail)
    monkeypatch.setattr(html_module, "inline_css", fail)
    rendered = sample_build.rendered
    a = personalise(rendered, Recipient("a@example.org", "Ann <script>", "tok-a&b"))
    b = personalise(rendered, Recipient("b@example.org", None, "tok-b"))
    assert "http://127.0.0.1:8026/unsubscribe/tok-a%26b" in a.html
    assert "http://127.0.0.1:8026/unsubscribe/tok-b" in b.html
    assert UNSUBSCRIBE_MARKER not in a.html + a.text + b.html + b.text
    assert a.to == "Ann <script> <a@example.org>" or a.to.endswith("<a@example.org>")


def test_greeting_name_is_escaped_and_falls_back(tmp_path: Path) -> None:
    settings = Settings(newsletter=Newsletter(greeting="Dear {name},", greeting_fallback="reader"))
    result = build(compose_to(tmp_path), settings)
    named = personalise(result.rendered, Recipient("a@example.org", "Ann <b>&", "t"))
    anonymous = personalise(result.rendered, Recipient("b@example.org", None, "t"))
    assert "Dear Ann &lt;b&gt;&amp;," in named.html and "Dear Ann <b>&," in named.text
    assert "Dear reader," in anonymous.html and "Dear reader," in anonymous.text
    assert NAME_MARKER not in named.html + anonymous.text


def test_rendering_makes_no_network_request(tmp_path: Path, no_network: list[object]) -> None:
    path = compose_to(tmp_path)
    result = build(path, SETTINGS)
    assert result.sample.html and no_network == []


def custom_templates(tmp: Path, mjml_extra: str = "", text: str | None = None) -> Path:
    folder = tmp / "templates"
    folder.mkdir()
    source = (bundled_templates() / "email.mjml.j2").read_text(encoding="utf-8")
    source = source.replace("  </mj-head>", f"{mjml_extra}\n  </mj-head>")
    (folder / "email.mjml.j2").write_text(source, encoding="utf-8")
    text_source = text if text is not None else (bundled_templates() / "email.txt.j2").read_text()
    (folder / "email.txt.j2").write_text(text_source, encoding="utf-8")
    return folder


def test_a_template_that_links_remote_css_and_images_fetches_nothing(
    tmp_path: Path, page_server: PageServer
) -> None:
    css = page_server.add("/style.css", "p { color: red }", headers={"Content-Type": "text/css"})
    extra = f'<mj-raw><link rel="stylesheet" href="{css}"></mj-raw>'
    folder = custom_templates(tmp_path, extra)
    source = (
        (folder / "email.mjml.j2")
        .read_text()
        .replace(
            "<mj-body",
            f'<mj-body><mj-section><mj-column><mj-image src="{page_server.url("/logo.png")}" alt="Logo" /></mj-column></mj-section></mj-body><mj-body',
            1,
        )
    )
    (folder / "email.mjml.j2").write_text(source)
    settings = Settings(render=Render(templates=str(folder)))
    result = build(compose_to(tmp_path), settings)
    assert page_server.requests == []
    assert any("external stylesheet" in str(f) for f in result.findings)


def test_hostile_excerpt_never_reaches_the_html_and_check_reports_it(tmp_path: Path) -> None:
    path = compose_to(tmp_path)
    text = path.read_text(encoding="utf-8")
    hostile = (
        "excerpt: '<script>alert(1)</script> <img src=x onerror=alert(2)> "
        "[click](javascript:alert(3)) ![pic](https://evil.example/p.png) [ok](https://example.org/ok)'"
    )
    text = re.sub(r"excerpt: Walls buy time.*", hostile, text)
    path.write_text(text, encoding="utf-8")
    result = build(path, SETTINGS)
    doc = lxml_html.document_fromstring(result.sample.html)
    assert not list(doc.iter("script")) and not [i for i in doc.iter("img")]
    assert "javascript:" not in " ".join(a.get("href") or "" for a in doc.iter("a"))
    assert not any(attr.startswith("on") for el in doc.iter() for attr in el.attrib)
    assert "https://example.org/ok" in [a.get("href") for a in doc.iter("a")]
    assert any("javascript:alert(3)" in f.message and f.level == "error" for f in result.findings)


def test_a_hostile_read_more_or_section_url_never_becomes_an_href(tmp_path: Path) -> None:
    path = compose_to(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "read_more: https://example.org/harbor/hold-the-line?",
        "read_more: javascript:alert(1)//?",
        1,
    )
    path.write_text(text, encoding="utf-8")
    result = build(path, SETTINGS)
    assert "javascript:" not in result.sample.html
    assert any(
        f.level == "error" and "read-more link 'javascript:" in f.message for f in result.findings
    )


def test_oversized_issue_fails_the_check(tmp_path: Path) -> None:
    path = compose_to(tmp_path)
    text = path.read_text(encoding="utf-8")
    long_excerpt = " ".join(
        f"Sentence number {i} adds more words to the excerpt." for i in range(1800)
    )
    text = re.sub(r"excerpt: Walls buy time.*", f"excerpt: {long_excerpt}", text)
    path.write_text(text, encoding="utf-8")
    result = build(path, SETTINGS)
    assert len(result.sample.html.encode()) > 102_000
    assert any(f.level == "error" and "Gmail clips" in f.message for f in result.findings)


def test_long_subject_and_missing_preheader_are_warnings(tmp_path: Path) -> None:
    path = compose_to(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^subject: .*$", "subject: " + "Long subject words " * 6, text, flags=re.M)
    text = re.sub(r"^preheader: .*$", "preheader: null", text, flags=re.M)
    path.write_text(text, encoding="utf-8")
    findings = build(path, SETTINGS).findings
    assert {f.level for f in findings} == {"warning"}
    messages = " ".join(f.message for f in findings)
    assert "subject is" in messages and "preheader is missing" in messages


def test_flex_in_a_custom_template_is_a_warning_with_file_and_line(tmp_path: Path) -> None:
    folder = custom_templates(tmp_path, "<mj-style>.row { display: flex; }</mj-style>")
    result = build(compose_to(tmp_path), Settings(render=Render(templates=str(folder))))
    warning = next(f for f in result.findings if "display:flex" in f.message)
    assert warning.level == "warning" and re.search(r"email\.mjml\.j2:\d+:", warning.message)


def test_template_without_unsubscribe_or_address_fails_the_check(tmp_path: Path) -> None:
    folder = custom_templates(tmp_path)
    source = (folder / "email.mjml.j2").read_text()
    source = source.replace('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "Unsubscribe")
    source = source.replace("{{ newsletter.postal_address }}", "")
    (folder / "email.mjml.j2").write_text(source)
    result = build(compose_to(tmp_path), Settings(render=Render(templates=str(folder))))
    messages = [f.message for f in result.findings if f.level == "error"]
    assert any("no unsubscribe link" in m for m in messages)
    assert any("postal address" in m for m in messages)


def test_template_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    folder = custom_templates(tmp_path, text="line one\n{% if %}\n")
    with pytest.raises(RenderError, match=r"email\.txt\.j2:2: template syntax error"):
        build(compose_to(tmp_path), Settings(render=Render(templates=str(folder))))


def test_mjml_error_reports_what_mjml_said(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "email.mjml.j2").write_text("<mjml><mj-body><mj-section>")
    (folder / "email.txt.j2").write_text("{{ unsubscribe_url }}")
    with pytest.raises(RenderError, match="MJML error"):
        build(compose_to(tmp_path), Settings(render=Render(templates=str(folder))))


def test_seed_renders_and_passes_the_check(tmp_path: Path, seed_path: Path) -> None:
    result = build(compose_to(tmp_path, seed_path, SEED_URL), SETTINGS)
    assert [f for f in result.findings if f.level == "error"] == []
    assert "Bonnie Glaser" in result.sample.html
    written = write_outputs(result, tmp_path / "out")
    assert [p.suffix for p in written] == [".html", ".txt", ".eml"]


def test_to_email_uses_the_given_date(sample_build: Build) -> None:
    when = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
    message = to_email(sample_build.sample, date=when)
    assert message["Date"] == "Tue, 01 Dec 2026 07:00:00 +0000"


def test_render_issue_runs_once_per_issue_not_per_recipient(sample_build: Build) -> None:
    rendered = render_issue(sample_build.issue, SETTINGS, sample_build.slug)
    messages = [
        personalise(rendered, Recipient(f"r{i}@example.org", None, str(i))) for i in range(50)
    ]
    assert len({m.html for m in messages}) == 50


def test_a_template_edited_on_disk_is_used_by_the_next_render(tmp_path: Path) -> None:
    """Environments are cached per folder (the preview renders on every save), but a
    changed template file is read again."""
    import os
    import shutil

    folder = tmp_path / "templates"
    shutil.copytree(bundled_templates(), folder)
    settings = Settings(render=Render(templates=str(folder)))
    issue = compose_to(tmp_path)
    first = build(issue, settings).sample.text
    text_template = folder / "email.txt.j2"
    text_template.write_text("EDITED {{ issue.subject }}\n", encoding="utf-8")
    later = text_template.stat().st_mtime + 5
    os.utime(text_template, (later, later))
    second = build(issue, settings).sample.text
    assert "EDITED" not in first and second.startswith("EDITED Can Harbor Cities")


def test_the_text_part_shows_the_date_once_and_each_link_on_a_line_of_its_own(
    sample_build: Build,
) -> None:
    text = sample_build.sample.text
    assert text.count("March 4, 2026") == 1  # in the masthead; the section does not repeat it
    links = [line for line in text.splitlines() if "utm_source=" in line]
    assert links and all(line.startswith("https://") and " " not in line for line in links)
    assert "Read the whole conversation:\nhttps://example.org/harbor/hold-the-line?utm_" in text


def test_straight_quotes_become_curly_in_text_but_never_in_links_or_code(tmp_path: Path) -> None:
    """The reader sees typeset quotes whatever the source page used; a URL or a code
    span keeps its characters exactly."""
    path = compose_to(tmp_path)
    data = path.read_text(encoding="utf-8")
    data = data.replace(
        "title: Can Harbor Cities Hold the Line Against the Sea?",
        "title: 'Can Harbor Cities \"Hold the Line\"?'",
    ).replace(
        "Walls buy time, not safety.",
        'Walls buy "time," not safety, [it\'s here](https://example.org/it\'s) `"raw"`.',
    )
    path.write_text(data, encoding="utf-8")
    result = build(path, SETTINGS)
    html, text = result.sample.html, result.sample.text
    for part in (html, text):
        assert "“Hold the" in part and "Line”?" in part and "“time,”" in part
    assert "it’s here" in text and "(https://example.org/it's)" in text
    assert "href=\"https://example.org/it's" in html or "https://example.org/it%27s" in html
    assert "<code>&quot;raw&quot;</code>" in html or '<code>"raw"</code>' in html
    assert '"raw"' in text


def test_the_footer_offers_the_archive_a_way_to_subscribe_and_a_reply(tmp_path: Path) -> None:
    """A reader who got the issue forwarded can subscribe; any reader can find past issues
    and, where replies go to the editors (newsletter.reply_to), is invited to write back;
    in both parts."""
    settings = Settings(newsletter={"reply_to": "Editors <editors@example.org>"})
    sample_build = build(compose_to(tmp_path), settings)
    doc = lxml_html.document_fromstring(sample_build.sample.html)
    footer = doc.find_class("dg-foot")[0]
    # link texts read with plain spaces (the footer keeps each on one line with no-break ones)
    hrefs = {a.text_content().replace("\xa0", " "): a.get("href") for a in footer.iter("a")}
    assert hrefs["Past issues"] == SETTINGS.web.url("/issues/")
    personal = SETTINGS.unsubscribe_url.format(token="sample")
    assert hrefs["Manage your subscription"] == personal + "?manage=1#manage"
    assert hrefs["Subscribe"] == SETTINGS.web.url("/subscribe")
    assert "reply to this email reaches the editors" in footer.text_content()
    text = sample_build.sample.text
    assert f"Past issues: {SETTINGS.web.url('/issues/')}" in text
    assert f"Subscribe: {SETTINGS.web.url('/subscribe')}" in text
    assert "reply to this email reaches the editors" in text
    plain = build(compose_to(tmp_path / "plain"), SETTINGS).sample  # replies go to From
    assert "reply to this email" not in plain.text and "reply to this email" not in plain.html
