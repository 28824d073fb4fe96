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
