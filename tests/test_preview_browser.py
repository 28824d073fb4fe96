"""End to end: `digest preview` in a real headless Chromium, as an editor uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.compose import compose
from digest.config import Settings
from digest.issuefile import dump_issue, write_issue
from tests.conftest import BROWSER_FLAGS, CHROMIUM, ROOT, SAMPLE, SAMPLE_URL, free_port

ARTIFACTS = ROOT / "test-artifacts"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (pip) is not installed"
)
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium package is not installed (apt-get install -y chromium)",
        allow_module_level=True,
    )


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    issue, path = compose([str(SAMPLE)], Settings(), url=SAMPLE_URL, out_dir=tmp_path)
    write_issue(dump_issue(issue), path, force=False)
    (tmp_path / "config.yaml").write_text("web:\n  base_url: https://news.example.org\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", str(path), "--port", str(free_port())],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield address, path
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15), "the preview server died"


def test_editor_sees_inbox_frames_text_and_live_updates(preview: tuple[str, Path]) -> None:
    address, issue_path = preview
    ARTIFACTS.mkdir(exist_ok=True)
    original = issue_path.read_text(encoding="utf-8")
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        outside: list[str] = []
        page.on(
            "request", lambda r: outside.append(r.url) if not r.url.startswith(address) else None
        )
        page.goto(address)

        expect(page.locator("#inbox-subject")).to_have_text(
            "Can Harbor Cities Hold the Line Against the Sea?"
        )
        expect(page.locator("#inbox-from")).to_have_text("The Conversation Digest")
        expect(page.locator("#inbox-preheader")).to_contain_text(
            "With Ana Lúcia Ferreira, Tomás R. Okafor and Selin Aydın"
        )
        for frame_id, width in (("#frame-desktop", 700), ("#frame-phone", 375)):
            frame = page.frame_locator(frame_id)
            expect(frame.get_by_text("Ana Lúcia Ferreira", exact=True)).to_be_visible()
            expect(frame.get_by_text("Read more from Selin Aydın →")).to_be_visible()
            box = page.locator(frame_id).bounding_box()
            assert box is not None and abs(box["width"] - width) <= 24
        expect(page.locator("#text")).to_contain_text(
            "https://example.org/harbor/hold-the-line?utm_source="
        )
        expect(page.locator("#text")).to_contain_text("Read the whole conversation:")
        expect(page.locator("#checks")).to_contain_text("No problems found.")
        page.locator("#frame-desktop").screenshot(path=str(ARTIFACTS / "preview-desktop.png"))
        page.locator("#frame-phone").screenshot(path=str(ARTIFACTS / "preview-phone.png"))

        # Live updates without a reload: a marker set on the page must survive them.
        page.evaluate("window.__stillHere = true")
        edited = original.replace("subject: Can Harbor", "subject: Tonight - Can Harbor").replace(
            "excerpt: Walls buy time, not safety.", "excerpt: Walls buy a little time."
        )
        issue_path.write_text(edited, encoding="utf-8")
        expect(page.locator("#inbox-subject")).to_have_text(
            "Tonight - Can Harbor Cities Hold the Line Against the Sea?", timeout=5000
        )
        expect(
            page.frame_locator("#frame-phone").get_by_text("Walls buy a little time.")
        ).to_be_visible()

        issue_path.write_text(edited.replace("sections:", "sections: [broken"), encoding="utf-8")
        expect(page.locator("#error")).to_be_visible(timeout=5000)
        expect(page.locator("#error-text")).to_contain_text(issue_path.name)
        expect(
            page.frame_locator("#frame-desktop").get_by_text("Walls buy a little time.")
        ).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "preview-broken-edit.png"), full_page=False)

        issue_path.write_text(original, encoding="utf-8")
        expect(page.locator("#error")).to_be_hidden(timeout=5000)
        expect(page.locator("#inbox-subject")).to_have_text(
            "Can Harbor Cities Hold the Line Against the Sea?"
        )
        assert page.evaluate("window.__stillHere") is True
        page.screenshot(path=str(ARTIFACTS / "preview-page.png"), full_page=True)
        browser.close()
    assert outside == [], f"the preview made requests outside itself: {outside}"
