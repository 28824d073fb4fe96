"""The docs tell the truth: README commands match CI, config.yaml documents every key."""

from __future__ import annotations

import re

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
