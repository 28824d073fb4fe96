"""`digest render` and `digest check` as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run


def test_render_writes_html_text_and_eml_and_prints_their_paths(issue_file: Path) -> None:
    result = run("render", str(issue_file))
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.suffix for p in paths] == [".html", ".txt", ".eml"]
    assert all(p.parent == Path("build") and p.stem == issue_file.stem for p in paths)
    assert all(p.stat().st_size > 0 for p in paths)


def test_render_honours_out(issue_file: Path) -> None:
    result = run("render", str(issue_file), "--out", "elsewhere")
    assert all(line.startswith("elsewhere/") for line in result.stdout.splitlines())


def test_check_passes_the_sample_with_exit_zero(issue_file: Path) -> None:
    result = run("check", str(issue_file))
    assert result.exit_code == 0
    assert "0 error(s)" in result.stderr


def test_check_prints_each_finding_and_exits_one_on_errors(issue_file: Path) -> None:
    text = issue_file.read_text(encoding="utf-8")
    text = re.sub(
        r"read_more: https://example.org/harbor/hold-the-line\?[^\n]*comment-ferreira",
        "read_more: '#'",
        text,
    )
    issue_file.write_text(text, encoding="utf-8")
    result = run("check", str(issue_file))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "error: read-more link '#' of expert 'Ana Lúcia Ferreira' in section 1 "
        "('Can Harbor Cities Hold the Line Against the Sea?') is a placeholder"
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: re.sub(r"^subject: .*\n", "", t, flags=re.M),
            r":\d+: subject: required key is missing",
        ),
        (
            lambda t: t.replace("date: 2026-03-04\nsections", "date: someday\nsections"),
            r":7: date: Input should be a valid date",
        ),
        (
            lambda t: t.replace("      - name: Tomás R. Okafor", "      - name: [Tomás]"),
            r":\d+: sections\.0\.experts\.1\.name: Input should be a valid string",
        ),
        (lambda t: t.replace("sections:", "sections: {oops"), r":\d+: "),
        (lambda t: t.replace("    experts:", "    expert:"), r"sections\.0\.expert: unknown key"),
    ],
)
def test_broken_issue_file_is_one_line_naming_file_key_and_line(
    issue_file: Path, edit: object, message: str
) -> None:
    issue_file.write_text(edit(issue_file.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    result = run("render", str(issue_file))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"digest: error: {issue_file}")
    assert re.search(message, result.stderr), result.stderr
    assert not Path("build").exists()


def test_missing_issue_file_is_reported(in_tmp: Path) -> None:
    result = run("render", "issues/nope.yaml")
    assert result.exit_code == 1
    assert result.stderr == "digest: error: issues/nope.yaml: issue file not found\n"


def test_template_error_leaves_no_partial_output(issue_file: Path) -> None:
    Path("tpl").mkdir()
    Path("tpl/email.mjml.j2").write_text("<mjml><mj-body></mj-body></mjml>")
    Path("tpl/email.txt.j2").write_text("{{ missing_variable.attr }}")
    Path("config.yaml").write_text("render:\n  templates: tpl\n")
    result = run("render", str(issue_file))
    assert result.exit_code == 1
    assert "tpl/email.txt.j2: 'missing_variable' is undefined" in result.stderr
    assert not Path("build").exists()
