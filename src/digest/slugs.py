"""An issue's slug: the name the store, the archive and every report know it by."""

from __future__ import annotations

from pathlib import Path


def issue_slug(path: Path) -> str:
    """An issue's slug is its file name without the extension."""
    return path.stem
