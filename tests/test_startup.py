"""A command loads only what it uses: `digest --help` no settings machinery, `digest
deliver` no renderer. (How long start-up takes is measured by benchmarks/startup.py.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HEAVY = {"pydantic", "jinja2", "premailer", "mjml", "cssutils", "lxml", "markdown_it", "httpx",
         "feedparser", "cryptography", "starlette", "uvicorn"}  # fmt: skip

PROBE = """
import atexit, sys
atexit.register(lambda: print("LOADED", sorted({{m.split(".")[0] for m in sys.modules}} & {heavy!r})))
from digest.cli import main
main({args!r})
"""


def loaded(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    code = PROBE.format(heavy=HEAVY, args=args)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )
    line = next(line for line in out.stdout.splitlines() if line.startswith("LOADED"))
    return set(ast.literal_eval(line.removeprefix("LOADED ")))


def test_help_loads_only_click(tmp_path: Path) -> None:
    assert loaded(["--help"], tmp_path) == set()
    assert loaded(["deliver", "--help"], tmp_path) == set()


def test_deliver_never_loads_the_renderer(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "DIGEST_SIGNING_KEY": "a-signing-key-of-enough-length"}
    modules = loaded(["deliver"], tmp_path, env)
    assert not modules & {"jinja2", "premailer", "mjml", "cssutils", "markdown_it", "feedparser"}
