"""The docs tell the truth: README commands match CI, config.yaml documents every key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from digest.config import Settings
from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_the_sample_command_and_the_test_command() -> None:
    first, second = readme_commands()[:2]
    assert "digest compose samples/" in first
    assert second.endswith("pytest")


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert readme_commands()[1] in ci.splitlines()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        name = field.alias or name
        keys.append(prefix + name)
        annotation = field.annotation
        inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
        for candidate in [annotation, *inner]:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys.extend(_keys(candidate, prefix + name + "."))
    return keys


def test_config_yaml_documents_every_setting() -> None:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    missing = [key for key in _keys(Settings) if not re.search(rf"\b{key.split('.')[-1]}:", text)]
    assert not missing, f"config.yaml does not mention: {missing}"


def test_every_third_party_module_the_code_imports_is_a_declared_dependency() -> None:
    import ast
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        re.split(r"[\[<>=!~ ;]", item, maxsplit=1)[0].lower().replace("_", "-")
        for group in [project["dependencies"], *project["optional-dependencies"].values()]
        for item in group
    }
    owners = packages_distributions()
    imported: set[str] = set()
    for path in (ROOT / "src" / "digest").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"digest", "__future__"}
    missing = {
        module: owners.get(module)
        for module in third_party
        if not {d.lower().replace("_", "-") for d in owners.get(module, [])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_readmes_first_command_leaves_the_committed_sample_issue_as_it_is() -> None:
    from tests.conftest import run

    committed = ROOT / "issues" / "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea.yaml"
    made = run("compose", str(ROOT / "samples" / "harbor-cities.md"),
               "--url", "https://example.org/harbor/hold-the-line", "--dry-run")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.stdout == committed.read_text(encoding="utf-8")


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    import subprocess
    import sys

    from digest.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers([(f"r{i}@example.org", None, {}) for i in range(20_000)],
                             resubscribe=False)  # fmt: skip
    store.close()
    listing = subprocess.Popen(
        [sys.executable, "-m", "digest", "subscribers", "list"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert listing.stdout is not None and listing.stdout.readline()
    listing.stdout.close()  # as `| head -1` does
    _, err = listing.communicate(timeout=60)
    assert listing.returncode == 0 and err == b"", err


def _commands(group: Any, prefix: str = "") -> Any:
    import click

    for name, command in sorted(group.commands.items()):
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


def readme_usage(paths: list[str]) -> dict[str, str]:
    """The README's usage lines ("digest CMD [--opt …]", alternatives after " | " sharing
    the group) gathered per command path."""
    usage: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("digest "):
            continue
        segments = line.split("  #")[0].split(" | ")
        words = segments[0].removeprefix("digest ")
        path = max((p for p in paths if words == p or words.startswith(p + " ")), key=len,
                   default=None)  # fmt: skip
        if path is None:
            continue
        group = path.rsplit(" ", 1)[0] + " " if " " in path else ""
        usage[path] = usage.get(path, "") + " " + segments[0]
        for segment in segments[1:]:
            name = group + segment.split()[0]
            usage[name] = usage.get(name, "") + " " + segment
    return usage


def test_every_command_and_option_has_help_and_a_usage_line_in_the_readme() -> None:
    import click

    from digest.cli import main

    commands = [(p, c) for p, c in _commands(main) if not isinstance(c, click.Group)]
    usage = readme_usage([p for p, _ in commands])
    missing, silent = [], []
    for path, command in commands:
        if not command.help:
            silent.append(path)
        if path not in usage:
            missing.append(f"digest {path}")
            continue
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "config_path":
                continue
            longest = max(param.opts, key=len)
            if not param.help:
                silent.append(f"{path} {longest}")
            if longest not in usage[path]:
                missing.append(f"digest {path} {longest}")
    assert not silent, f"no help text: {silent}"
    assert not missing, f"no usage line in the README: {missing}"


def test_serve_prints_its_address_once_and_deliver_no_empty_progress(tmp_path: Path) -> None:
    import os

    from digest.store.sqlite import SQLiteStore
    from tests.helpers import SIGNING_ENV, SIGNING_KEY, sample_issue, start_serve

    env = {**os.environ, SIGNING_ENV: SIGNING_KEY}
    (tmp_path / "config.yaml").write_text(f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n")
    server, base = start_serve(tmp_path, env)
    server.terminate()
    out, err = server.communicate(timeout=20)
    assert (base + out + err).count(base.rstrip("/").split("//")[1]) == 1, (base, out, err)
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers([(f"r{i}@example.org", None, {}) for i in range(50)],
                             resubscribe=False)  # fmt: skip
    store.close()
    issue = sample_issue(tmp_path / "issues")
    import subprocess
    import sys

    def digest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "digest", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    assert digest("schedule", str(issue), "--at", "now").returncode == 0
    delivered = digest("deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert " 0/50 sent" not in delivered.stderr and "50/50 sent" in delivered.stderr
