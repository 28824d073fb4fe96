"""`digest inspect`: how a page is read, shown before anything is composed from it."""

from __future__ import annotations

import json
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
