"""Writing a set of output files so that all of them appear, or none is half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digest.errors import DigestError


def write_tree(
    out_dir: Path, files: dict[str, bytes], error: type[DigestError] = DigestError
) -> list[Path]:
    """Write ``files`` (relative path -> bytes) under ``out_dir``: each is staged beside
    its final name and moved into place once every one is written; on any failure the
    staged files are removed and the error names the folder."""
    staged: list[tuple[str, Path]] = []
    try:
        for relative, data in files.items():
            final = out_dir / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            staged.append((tmp, final))
        for tmp, final in staged:
            os.replace(tmp, final)
    except OSError as err:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise error(f"{out_dir}: cannot write ({err.strerror})") from None
    return [final for _, final in staged]
