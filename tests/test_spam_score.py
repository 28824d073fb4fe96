"""What a spam filter makes of the email: SpamAssassin with its local rules only (no
network tests), on a message to a subscriber and on a test send to staff. Debian's
`spamassassin` package; skipped with a message where it is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.build import build
from digest.compose import compose
from digest.config import Settings
from digest.issuefile import dump_issue, write_issue
from tests.conftest import SAMPLE, SAMPLE_URL, SEED, SEED_URL

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None, reason="SpamAssassin is not installed (apt-get install spamassassin)"
)
LIMIT = 0.5


def score(message: bytes) -> tuple[float, str]:
    """SpamAssassin's score for ``message`` with local rules only, and its report."""
    assert SPAMASSASSIN is not None
    done = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=message, capture_output=True, timeout=120
    )
    report = done.stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.MULTILINE)
    assert found, report[-2000:]
    return float(found.group(1)), report.partition("Content analysis details")[2]


def sources() -> list[object]:
    seed = pytest.param(
        SEED, SEED_URL, id="seed",
        marks=pytest.mark.skipif(not SEED.is_file(), reason=f"the seed is not at {SEED}"),
    )  # fmt: skip
    return [pytest.param(SAMPLE, SAMPLE_URL, id="sample"), seed]


@pytest.mark.parametrize(("source", "url"), sources())
@pytest.mark.parametrize("for_staff", [False, True], ids=["subscriber", "test-send"])
def test_a_spam_filter_scores_the_message_at_most_half_a_point(
    tmp_path: Path, source: Path, url: str, for_staff: bool
) -> None:
    settings = Settings()
    issue, path = compose([str(source)], settings, url=url, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=True)
    message = build(path, settings, for_staff=for_staff).eml
    points, details = score(message)
    assert points <= LIMIT, details
