"""`digest inspect`: how a page is read, shown before anything is composed from it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, SAMPLE, SAMPLE_URL, SEED, SEED_URL, run
from tests.pages import PageServer


def test_inspect_shows_title_date_intro_and_each_expert_without_writing_anything(
    in_tmp: Path,
) -> None:
    result = run("inspect", str(SAMPLE), "--url", SAMPLE_URL)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "title:   Can Harbor Cities Hold the Line Against the Sea?" in out
    assert "date:    2026-03-04" in out and "experts: 3" in out
    assert out.index("1. Ana Lúcia Ferreira") < out.index("2. Tomás R. Okafor")
    assert "affiliation: Housing Advocate, Harborside Tenants Union" in out
    assert "begins:      Walls buy time, not safety." in out
    assert list(in_tmp.iterdir()) == []  # nothing composed, nothing written


def test_inspect_json_is_for_scripts(in_tmp: Path, page_server: PageServer) -> None:
    url = page_server.add("/c/lights", (FIXTURES / "conversation-page.html").read_bytes())
    Path("config.yaml").write_text("fetch:\n  allow_private_addresses: [127.0.0.1]\n")
    data = json.loads(run("inspect", url, "--json").stdout)
    assert data["title"] == "Should Lighthouses Be Museums?" and data["date"] == "2025-10-02"
    assert [e["name"] for e in data["experts"]] == ["Ingrid Solberg", "Kofi A. Oduya"]
    assert [e["anchor"] for e in data["experts"]] == ["comment-ingrid", "comment-oduya"]
    assert data["experts"][1]["affiliation"] == "Curator, Coastal Heritage Trust"


@pytest.mark.skipif(not SEED.is_file(), reason=f"the seed is not at {SEED}")
def test_inspect_reads_the_seed_conversation_in_order(in_tmp: Path) -> None:
    data = json.loads(run("inspect", str(SEED), "--url", SEED_URL, "--json").stdout)
    assert data["title"] == "What's at Stake as Blinken Heads to Beijing"
    assert data["date"] == "2023-06-16" and "What are the stakes" in data["intro"]
    assert [e["name"] for e in data["experts"]][:2] == ["Sheena Chestnut Greitens", "Bonnie Glaser"]


def test_inspect_of_a_page_without_experts_says_why_on_one_line(in_tmp: Path) -> None:
    result = run("inspect", str(FIXTURES / "no-experts.md"))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("digest: error:") and "no-experts.md" in line


@pytest.mark.parametrize(
    ("fixture", "said"),
    [
        ("conversation-replies.html", "Ana Ferreira speaks again later; their first turn is used"),
        ("conversation-replies.html", "left out 2 image caption(s) or credit line(s)"),
        ("we-asked-experts.html", "stopped reading at 'Disclosure statement'"),
        ("experts-react-closing.html", "read as an 'experts react' page"),
        ("symposium-bios-each.html", "read as a roundtable"),
        ("lighthouses-copy.txt", "read as a plain-text copy of a page"),
    ],
)
def test_inspect_says_how_the_page_was_read_and_what_was_left_out(
    in_tmp: Path, fixture: str, said: str
) -> None:
    result = run("inspect", str(FIXTURES / "layouts" / fixture), "--url", SAMPLE_URL)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert any(said in note for note in notes), notes


# --- where each part was found, and a profile for a page it cannot read ---------------


@pytest.mark.parametrize(
    "fixture",
    [
        "conversation-page.html",
        "layouts/conversation-replies.html",
        "layouts/symposium-bios-each.html",
        "layouts/we-asked-experts.html",
        "layouts/ask-the-experts-headings.html",
    ],
)
def test_inspect_says_where_on_the_page_each_name_affiliation_and_comment_was_found(
    in_tmp: Path, fixture: str
) -> None:
    from lxml import html

    page = FIXTURES / fixture
    data = json.loads(run("inspect", str(page), "--url", SAMPLE_URL, "--json").stdout)
    doc = html.document_fromstring(page.read_text())

    def text_at(path: str) -> str:
        [element] = doc.cssselect(path)  # the path leads to one element
        return " ".join(element.text_content().split())

    for expert in data["experts"]:
        found = expert["found"]
        assert expert["name"] in text_at(found["name"]), (expert["name"], found)
        assert expert["first_sentence"][:20] in text_at(found["comment"]), found
        if expert["affiliation"]:
            first_part = expert["affiliation"].split(",")[0]
            assert first_part.lower() in text_at(found["affiliation"]).lower(), found
    text = run("inspect", str(page), "--url", SAMPLE_URL).stdout
    assert f"found at:    name {data['experts'][0]['found']['name']}" in text


def test_inspect_of_a_copied_page_gives_the_line_of_each_name_and_comment(in_tmp: Path) -> None:
    page = FIXTURES / "layouts" / "night-trains-copy.txt"
    data = json.loads(run("inspect", str(page), "--url", SAMPLE_URL, "--json").stdout)
    lines = page.read_text().splitlines()
    for expert in data["experts"]:
        number = int(expert["found"]["name"].removeprefix("line "))
        assert expert["name"] in lines[number - 1]
        number = int(expert["found"]["comment"].removeprefix("line "))
        assert expert["first_sentence"] in lines[number - 1]


def test_a_page_inspect_cannot_read_gets_a_site_profile_that_reads_it(in_tmp: Path) -> None:
    page = FIXTURES / "layouts" / "profiled-site.html"
    url = "https://harbor.example/conversations/clean"
    refused = run("inspect", str(page), "--url", url)
    assert refused.exit_code == 1
    assert "no experts found" in refused.stderr and "Traceback" not in refused.output
    profile = refused.stderr[refused.stderr.index("sites:") :]
    profile = "\n".join(line for line in profile.splitlines() if not line.startswith("digest:"))
    Path("config.yaml").write_text(textwrap.dedent(profile) + "\n")
    data = json.loads(run("inspect", str(page), "--url", url, "--json").stdout)
    assert [e["name"] for e in data["experts"]] == ["Lucía Morales", "Ravi Iyer"]
    assert [e["affiliation"] for e in data["experts"]] == [
        "Director, Clean Coast Trust", "Marine Biologist, Lakeside University",
    ]  # fmt: skip
    assert any("site profile for harbor.example" in note for note in data["notes"])


def test_a_page_read_by_its_shape_also_shows_a_profile_that_pins_the_reading(
    in_tmp: Path,
) -> None:
    page = FIXTURES / "conversation-page.html"
    data = json.loads(run("inspect", str(page), "--url", SAMPLE_URL, "--json").stdout)
    assert data["suggested_profile"] == {
        "host": "example.org", "comment": "div.response", "author": "p.author",
        "affiliation": "p.affiliation",
    }  # fmt: skip
    # a page of headings has no repeated blocks to pin, and gets no suggestion
    sample = json.loads(run("inspect", str(SAMPLE), "--url", SAMPLE_URL, "--json").stdout)
    assert sample["suggested_profile"] is None
