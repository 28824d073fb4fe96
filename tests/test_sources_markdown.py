"""Markdown conversations in the seed's shape and its real-world variations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.config import Settings
from digest.errors import SourceError
from digest.model import plain_text
from digest.sources import read_conversation
from tests.conftest import FIXTURES, SAMPLE, SAMPLE_URL, SEED_URL

SETTINGS = Settings()


def read(path: Path | str, url: str | None = "https://example.org/c") -> object:
    return read_conversation(str(path), settings=SETTINGS, url=url)


def test_seed_has_title_date_series_intro_and_exactly_three_experts(seed_path: Path) -> None:
    conv = read_conversation(str(seed_path), settings=SETTINGS, url=SEED_URL)
    assert conv.title == "What's at Stake as Blinken Heads to Beijing"
    assert conv.date == dt.date(2023, 6, 16)
    assert conv.series == "ChinaFile Conversation"
    assert conv.series_description and conv.series_description.startswith(
        "The ChinaFile Conversation is"
    )
    assert [c.name for c in conv.comments] == [
        "Sheena Chestnut Greitens",
        "Bonnie Glaser",
        "Evan Medeiros",
    ]
    intro = plain_text(conv.intro[0])
    assert intro.startswith("United States Secretary of State")
    assert "The Editors" not in intro


def test_seed_placeholder_links_become_plain_text(seed_path: Path) -> None:
    conv = read_conversation(str(seed_path), settings=SETTINGS, url=SEED_URL)
    spans = [s for c in conv.comments for p in c.paragraphs for s in p]
    assert all(s.href is None for s in spans)
    assert any("spy balloon" in s.text for s in spans)


def test_seed_paragraph_split_mid_sentence_is_mended(seed_path: Path) -> None:
    conv = read_conversation(str(seed_path), settings=SETTINGS, url=SEED_URL)
    greitens = conv.comments[0]
    texts = [plain_text(p) for p in greitens.paragraphs]
    assert any("victims of transnational repression by China" in t for t in texts)
    assert not any(t.startswith("repression") for t in texts)


def test_bundled_sample_reads_every_variation_it_carries() -> None:
    conv = read(SAMPLE, SAMPLE_URL)
    assert conv.date == dt.date(2026, 3, 4)
    assert conv.series == "Open Harbor Conversation"
    names = [c.name for c in conv.comments]
    assert names == ["Ana Lúcia Ferreira", "Tomás R. Okafor", "Selin Aydın"]
    ferreira, okafor, aydin = conv.comments
    assert ferreira.affiliation == "Professor of Urban Hydrology, Porto Technical Institute"
    assert okafor.headline == "Engineers are not the bottleneck"
    assert aydin.affiliation == "Housing Advocate, Harborside Tenants Union"
    # the block quote and the list are kept as paragraphs of the comment
    assert any("last line of defense" in plain_text(p) for p in ferreira.paragraphs)
    assert any(plain_text(p).startswith("• a dedicated port levy") for p in okafor.paragraphs)


def test_name_colon_lines_responses_paragraph_and_plain_editors_signoff() -> None:
    conv = read(FIXTURES / "colon-names.md")
    assert conv.title == '"Is the #1 Export Still Soybeans?" Farmers Weigh In'
    assert conv.date == dt.date(2025, 1, 9)
    assert [c.name for c in conv.comments] == ["Daniel K. Osei", "Marie-Claire Dubois"]
    assert conv.comments[1].affiliation == "Agronomist, Lyon"
    assert plain_text(conv.intro[-1]).endswith("what comes next.")


def test_missing_intro_and_date_are_allowed() -> None:
    conv = read(FIXTURES / "no-intro.md")
    assert conv.intro == ()
    assert conv.date is None
    assert [c.name for c in conv.comments] == ["Priya Raman", "Jonas van der Berg"]
    assert conv.comments[0].affiliation == "Logistics Analyst"


def test_bold_headings_bold_headline_quotes_and_lists() -> None:
    conv = read(FIXTURES / "quotes-and-lists.md")
    sato, nunez = conv.comments
    assert sato.name == "Hana Sato" and sato.headline == "A tool, not a colleague"
    assert plain_text(sato.paragraphs[0]).startswith('"The draft is only as good')
    assert nunez.name == "Rafael Núñez-Ortiz"
    assert nunez.affiliation == "Clinical Professor, Example Law School"


def test_markdown_with_raw_html_and_javascript_links_keeps_only_text(tmp_path: Path) -> None:
    source = tmp_path / "hostile.md"
    source.write_text(
        "# Title\n\n### Eve Mallory\n\n"
        "Hello <script>alert(1)</script> [click](javascript:alert(1)) "
        "[ok](https://example.org/ok) [rel](/relative) <img src=x onerror=alert(1)>.\n",
        encoding="utf-8",
    )
    conv = read(source, "https://site.example/conv")
    spans = conv.comments[0].paragraphs[0]
    hrefs = [s.href for s in spans if s.href]
    assert hrefs == ["https://example.org/ok", "https://site.example/relative"]
    text = plain_text(spans)
    assert "click" in text  # the text of a refused link stays
    # raw HTML is shown as text, never parsed as markup
    assert "<script>" in text


def test_source_without_experts_is_an_error_naming_the_file() -> None:
    with pytest.raises(SourceError, match=r"no-experts\.md: no experts found"):
        read(FIXTURES / "no-experts.md")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        (b"# Title\n\n### Ann Lee\n\ncaf\xe9 au lait.\n", "not valid UTF-8"),
    ],
)
def test_unreadable_files_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=reason):
        read(path)


def test_missing_file_is_refused() -> None:
    with pytest.raises(SourceError, match="no such file"):
        read("does/not/exist.md")
