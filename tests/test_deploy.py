"""The deployment recipes work as written: the systemd units verify with systemd's own
checker, carry no comment where systemd would read it as part of a value, and are the
ones the README shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = sorted((ROOT / "deploy" / "systemd").iterdir())


def test_the_units_are_the_ones_the_readme_shows() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [u.name for u in UNITS] == [
        "digest-deliver.service", "digest-deliver.timer", "digest-web.service",
    ]  # fmt: skip
    for unit in UNITS:
        assert unit.read_text(encoding="utf-8") in readme, f"README does not show {unit.name}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_no_unit_has_a_comment_systemd_would_read_as_part_of_a_value(unit: Path) -> None:
    for number, line in enumerate(unit.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith(("#", ";")) or "=" not in line:
            continue
        assert " #" not in line and "\t#" not in line, f"{unit.name}:{number}: {line}"


def test_the_units_verify_with_systemd_analyze(tmp_path: Path) -> None:
    checker = shutil.which("systemd-analyze")
    if checker is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian package systemd; .ci/run installs it)"
        )
    digest = Path(sys.executable).with_name("digest")
    for unit in UNITS:  # the same units, pointed at this machine's digest and a real folder
        text = unit.read_text(encoding="utf-8")
        text = text.replace("/srv/digest/.venv/bin/digest", str(digest))
        text = text.replace("WorkingDirectory=/srv/digest", f"WorkingDirectory={tmp_path}")
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [checker, "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert "LimitNOFILE=" in (ROOT / "deploy" / "systemd" / "digest-web.service").read_text()


def test_check_and_serve_say_when_the_key_did_not_sign_the_links_already_mailed(
    in_tmp: Path, issue_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tests.conftest import run
    from tests.helpers import SIGNING_ENV, SIGNING_KEY, start_serve

    (in_tmp / "config.yaml").write_text(
        f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n", encoding="utf-8"
    )
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    assert run("schedule", str(issue_file), "--at", "now").exit_code == 0
    same = run("check", str(issue_file))
    assert "did not sign" not in same.stderr
    monkeypatch.setenv(SIGNING_ENV, "another-key-made-in-a-new-shell")
    other = run("check", str(issue_file))
    assert f"warning: the key in {SIGNING_ENV} did not sign the links" in other.stderr
    assert SIGNING_KEY not in other.stderr and "another-key" not in other.stderr
    rotating = f"another-key-made-in-a-new-shell {SIGNING_KEY}"
    monkeypatch.setenv(SIGNING_ENV, rotating)
    assert "did not sign" not in run("check", str(issue_file)).stderr
    env = {**os.environ, SIGNING_ENV: "another-key-made-in-a-new-shell"}
    server, _ = start_serve(in_tmp, env)
    server.terminate()
    _, err = server.communicate(timeout=20)
    assert "did not sign the links in the last issue" in err


@pytest.mark.parametrize(
    ("given", "why"),
    [("junk", "'junk' is not an IP address"), ("10.0.0.1,,example.org", "'example.org'"),
     ("300.1.1.1", "'300.1.1.1'"), (" , ", "at least one")],
)  # fmt: skip
def test_junk_trusted_proxies_are_refused_on_one_line(in_tmp: Path, given: str, why: str) -> None:
    from tests.conftest import run

    result = run("serve", "--proxy-headers", "--trusted-proxies", given, "--port", "0")
    assert result.exit_code == 1 and why in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_trusted_proxies_come_from_the_config_and_bad_ones_name_the_key(in_tmp: Path) -> None:
    from tests.conftest import run

    (in_tmp / "config.yaml").write_text("web:\n  trusted_proxies: nonsense\n", encoding="utf-8")
    result = run("serve", "--port", "0")
    assert result.exit_code == 1 and "web.trusted_proxies" in result.stderr, result.output
