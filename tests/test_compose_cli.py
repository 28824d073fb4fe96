"""`digest compose` as a user runs it: files written, output, and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.excerpt import sentences
from digest.issuefile import load_issue
from tests.conftest import FIXTURES, SAMPLE, SAMPLE_URL, SEED_URL, run
from tests.pages import PageServer


def test_compose_writes_the_issue_file_and_prints_its_path_last(in_tmp: Path) -> None:
    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path == Path("issues/2026-03-04-can-harbor-cities-hold-the-line-against-the-sea.yaml")
    issue = load_issue(path)
    assert issue.subject == "Can Harbor Cities Hold the Line Against the Sea?"
    assert [e.name for e in issue.sections[0].experts] == [
        "Ana Lúcia Ferreira",
        "Tomás R. Okafor",
        "Selin Aydın",
    ]


def test_dry_run_prints_yaml_and_writes_nothing(in_tmp: Path) -> None:
    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL, "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith("# digest issue file")
    assert "subject: Can Harbor Cities" in result.stdout
    assert not any(in_tmp.iterdir())


def test_seed_composes_three_experts_with_whole_sentences_and_utm_links(
    in_tmp: Path, seed_path: Path
) -> None:
    result = run("compose", str(seed_path), "--url", SEED_URL, "--out", "out")
    assert result.exit_code == 0, result.output
    issue = load_issue(Path(result.stdout.strip().splitlines()[-1]))
    experts = issue.sections[0].experts
    assert [e.name for e in experts] == [
        "Sheena Chestnut Greitens",
        "Bonnie Glaser",
        "Evan Medeiros",
    ]
    for expert in experts:
        assert expert.excerpt.endswith("."), expert.excerpt
        assert not expert.excerpt.endswith("…")
        assert len(expert.excerpt.split()) <= 70
        query = parse_qs(urlsplit(expert.read_more).query)
        assert query["utm_campaign"] == ["2023-06-16-whats-at-stake-as-blinken-heads-to-beijing"]
        assert query["utm_source"] == ["digest"] and query["utm_medium"] == ["email"]
        assert expert.read_more.startswith(SEED_URL + "?")
    glaser = experts[1].excerpt
    assert sentences(glaser)[0] == (
        "When U.S. President Joe Biden and Chinese leader Xi Jinping met in Bali last November, "
        "they agreed to try to halt the downward slide in the U.S.-China relationship."
    )
    assert urlsplit(experts[1].read_more).fragment == "bonnie-glaser"


def test_several_sources_make_one_issue_with_a_section_each_in_order(
    in_tmp: Path, page_server: PageServer
) -> None:
    trains = page_server.add("/trains", (FIXTURES / "heading-page.html").read_bytes())
    lights = page_server.add("/lights", (FIXTURES / "conversation-page.html").read_bytes())
    Path("config.yaml").write_text("fetch:\n  allow_private_addresses: [127.0.0.1]\n")
    result = run("compose", trains, lights, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.index("Are Night Trains") < result.stdout.index("Should Lighthouses")
    assert "subject: Are Night Trains Back for Good?" in result.stdout


def test_existing_issue_file_is_kept_unless_force(in_tmp: Path) -> None:
    first = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    path = Path(first.stdout.strip().splitlines()[-1])
    path.write_text(path.read_text().replace("subject: Can", "subject: Edited Can"))
    again = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    assert again.exit_code == 1
    assert "already exists; pass --force" in again.stderr
    assert "Edited Can" in path.read_text()
    forced = run("compose", str(SAMPLE), "--url", SAMPLE_URL, "--force")
    assert forced.exit_code == 0
    assert "Edited Can" not in path.read_text()


def test_edited_issue_file_reads_back_with_editor_comments_untouched(in_tmp: Path) -> None:
    path = Path(run("compose", str(SAMPLE), "--url", SAMPLE_URL).stdout.strip().splitlines()[-1])
    text = path.read_text().replace("subject:", "# editor: check this subject\nsubject:")
    path.write_text(text)
    issue = load_issue(path)
    assert issue.subject.startswith("Can Harbor")
    assert "# editor: check this subject" in path.read_text()


def test_local_markdown_without_url_explains_the_missing_address(in_tmp: Path) -> None:
    result = run("compose", str(SAMPLE))
    assert result.exit_code == 1
    assert "pass --url" in result.stderr
    assert not Path("issues").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such/file.md", "--url", "https://example.org/x"], "no/such/file.md: no such file"),
        ([str(FIXTURES / "no-experts.md"), "--url", "https://example.org/x"], "no experts found"),
        ([str(SAMPLE), "--url", "javascript:alert(1)"], "is not an absolute http(s) address"),
        (["ftp://example.org/c.html"], "only http and https"),
    ],
)
def test_bad_sources_fail_with_one_line_and_write_nothing(
    in_tmp: Path, args: list[str], message: str
) -> None:
    result = run("compose", *args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not Path("issues").exists()


def test_malformed_config_names_the_key_and_line(in_tmp: Path) -> None:
    Path("config.yaml").write_text("compose:\n  excerpt:\n    words: lots\n", encoding="utf-8")
    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "digest: error: config.yaml:3: compose.excerpt.words: "
        "Input should be a valid integer, unable to parse string as an integer"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("compose:\n  excerpts:\n    words: 50\n", "config.yaml:2: compose.excerpts: unknown key"),
        ("compose: [1, 2\n", "config.yaml:2:"),
        ("- just\n- a list\n", "top level must be a mapping"),
        (
            "compose:\n  read_more: '{anchor}'\n",
            "compose.read_more: must contain {url}",
        ),
    ],
)
def test_config_mistakes_are_reported_with_location(
    in_tmp: Path, content: str, message: str
) -> None:
    Path("config.yaml").write_text(content, encoding="utf-8")
    result = run("compose", str(SAMPLE), "--url", SAMPLE_URL)
    assert result.exit_code == 1
    assert message in result.stderr


def test_the_installed_command_prints_no_traceback_on_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "digest", "compose", "missing.md"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == "digest: error: missing.md: no such file\n"
    assert proc.stdout == ""
