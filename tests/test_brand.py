"""The newsletter's brand (config.yaml's ``brand:``): an optional logo and an accent
colour, the same in the email, its web version and every public page."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.brand import Brand, Logo, contrast
from digest.build import build
from digest.config import Settings
from tests.conftest import run
from tests.test_archive import Setup, make_settings
from tests.test_public_pages import every_page
from tests.test_render import compose_to

LOGO = Logo(
    url="https://cdn.example.org/brand/logo@2x.png", width=180, height=48, alt="Harbor Post"
)


def branded(values: Settings, **brand: object) -> Settings:
    return values.model_copy(update={"brand": Brand(**brand)})  # type: ignore[arg-type]


def test_a_configured_logo_heads_the_email_with_its_size_and_words(tmp_path: Path) -> None:
    made = build(compose_to(tmp_path), branded(Settings(), logo=LOGO))
    tree = lxml_html.document_fromstring(made.sample.html)
    [image] = tree.xpath("//img")
    assert image.get("src") == LOGO.url
    assert (image.get("width"), image.get("height"), image.get("alt")) == (
        "180",
        "48",
        "Harbor Post",
    )
    assert image.getparent().tag == "a"  # the logo leads to the archive, as the name does
    # and the name is still there as text: images are off in many inboxes
    assert tree.xpath("//*[contains(@class,'dg-masthead')]//a[contains(., 'Conversation Digest')]")


def test_without_a_logo_the_email_carries_no_image_at_all(tmp_path: Path) -> None:
    made = build(compose_to(tmp_path), Settings())
    assert "<img" not in made.sample.html


def test_the_accent_colour_colours_the_emails_links_and_button(tmp_path: Path) -> None:
    made = build(compose_to(tmp_path), branded(Settings(), accent_color="#0B5394"))
    html = made.sample.html
    assert "#7a2e12" not in html.lower()
    tree = lxml_html.document_fromstring(html)
    [*_, button] = tree.xpath("//td[@bgcolor]")
    assert button.get("bgcolor") == "#0b5394"
    read_more = tree.xpath("//a[starts-with(., 'Read more from')]")[0]
    assert "#0b5394" in read_more.get("style", "")
    dark = "#" + "".join(f"{round(c + (255 - c) * 0.6):02x}" for c in (0x0B, 0x53, 0x94))
    assert dark in html  # the dark-mode partner, made from it


def test_every_public_page_shows_the_logo_and_allows_only_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import SIGNING_ENV, SIGNING_KEY

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    setup = Setup(tmp_path, branded(make_settings(tmp_path), logo=LOGO, accent_color="#0b5394"))
    try:
        with setup.client() as client:
            pages = every_page(setup, client)
            policy = client.get("/digest/subscribe").headers["content-security-policy"]
    finally:
        setup.store.close()
    assert "img-src https://cdn.example.org;" in policy
    for what, (_status, text) in pages.items():
        tree = lxml_html.document_fromstring(text)
        [image] = tree.xpath("//header//img")
        assert image.get("alt") == "Harbor Post" and image.get("width") == "180", what
        assert "background:#0b5394" in " ".join(tree.xpath("//style/text()")), what


@pytest.mark.parametrize(
    ("brand", "reason"),
    [
        (
            "  logo: {url: 'http://cdn.example.org/l.png', width: 100, height: 30, alt: Post}\n",
            "brand.logo.url: must be an https:// address",
        ),
        ("  logo: {url: 'https://cdn.example.org/l.png', width: 100, height: 30}\n", "alt"),
        ("  accent_color: 'red; } body { display:none'\n", "brand.accent_color: must be a colour"),
    ],
)
def test_a_bad_brand_setting_is_one_line_naming_the_key(
    in_tmp: Path, brand: str, reason: str
) -> None:
    (in_tmp / "config.yaml").write_text(f"brand:\n{brand}", encoding="utf-8")
    result = run("subscribers", "count")
    assert result.exit_code != 0
    [line] = result.output.strip().splitlines()
    assert line.startswith("digest: error: config.yaml:2: ") and reason in line, line
    assert "Traceback" not in result.output


def test_digest_check_warns_when_the_button_text_would_not_read_on_the_accent(in_tmp: Path) -> None:
    assert contrast("#ffffff", "#7a2e12") >= 4.5  # the default passes
    (in_tmp / "config.yaml").write_text("brand:\n  accent_color: '#f5d76e'\n", encoding="utf-8")
    issue = compose_to(in_tmp)
    result = run("check", str(issue))
    assert "brand.accent_color" in result.output and "contrast" in result.output
