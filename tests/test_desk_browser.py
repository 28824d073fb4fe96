"""The editors' desk as an editor uses it: a real `digest desk` on this machine, a real
headless Chromium. Sign in, open the sample issue, change an excerpt and the subject, see
the preview change, test-send (found in the outbox), schedule in Europe/Berlin and see
the UTC time, deliver, and read the audit log. Screenshots go to test-artifacts/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, SAMPLE, SAMPLE_URL, free_port
from tests.test_public_browser import Served, digest, environment, read_mail, wait_for

ARTIFACTS = ROOT / "test-artifacts"
SLUG = "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea"
PASSWORD = "an editor's long passphrase"


def test_an_editor_edits_test_sends_and_schedules_an_issue_in_the_browser(
    tmp_path: Path, browser: Any
) -> None:
    port = free_port()
    (tmp_path / "config.yaml").write_text(
        f"desk:\n  url: http://127.0.0.1:{port}\n", encoding="utf-8"
    )
    digest(tmp_path, "compose", str(SAMPLE), "--url", SAMPLE_URL)
    subprocess.run(
        [sys.executable, "-m", "digest", "users", "add", "ed@example.org", "--role", "editor",
         "--name", "Ed Itor", "--password-stdin"],
        cwd=tmp_path, env=environment(), input=PASSWORD + "\n", text=True, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "subs.csv").write_text("email\nreader@example.org\n", encoding="utf-8")
    digest(tmp_path, "subscribers", "import", "subs.csv")
    desk = Served(tmp_path, [], command="desk")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(desk.url + "/")
        page.fill("#email", "ed@example.org")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Can Harbor Cities Hold the Line Against the Sea?")
        page.screenshot(path=str(ARTIFACTS / "desk-issues.png"))
        page.click("text=Can Harbor Cities Hold the Line Against the Sea?")
        preview = page.frame_locator("iframe[title='The email as subscribers get it']")
        preview.get_by_text("Walls buy time, not safety.", exact=False).wait_for()

        # a different excerpt for Tomás R. Okafor, chosen from his own sentences
        page.click("summary:has-text('Choose the excerpt from Tomás R. Okafor')")
        page.locator("details.dg-picker[open]").screenshot(path=str(ARTIFACTS / "desk-picker.png"))
        page.select_option("#from-s0\\.e1", "2")
        page.select_option("#to-s0\\.e1", "2")
        page.click("button[form='pick-s0.e1']")
        page.wait_for_selector("text=Saved.")
        excerpt = page.input_value("#f-s0\\.e1\\.excerpt")
        assert excerpt.startswith("We know how to design a surge barrier"), excerpt
        preview.get_by_text("We know how to design a surge barrier", exact=False).wait_for()

        page.fill("#f-subject", "[Weekly] Harbors: who pays?")
        page.fill("#f-s0\\.e0\\.excerpt", "Walls buy a city a decade, and then the bill arrives.")
        page.click("button:text('Save')")
        page.wait_for_selector("text=Saved.")
        preview.get_by_text("Walls buy a city a decade", exact=False).wait_for()
        page.screenshot(path=str(ARTIFACTS / "desk-editor.png"), full_page=True)
        text = (tmp_path / "issues" / f"{SLUG}.yaml").read_text(encoding="utf-8")
        assert "subject: '[Weekly] Harbors: who pays?'" in text
        assert "excerpt: Walls buy a city a decade, and then the bill arrives." in text

        # the dark-mode inbox, without a script: the email's own dark rules apply
        page.click("label[for=view-dark]")
        dark = page.locator("iframe.dg-dark").element_handle().content_frame()  # type: ignore[union-attr]
        assert dark is not None
        dark.wait_for_load_state()
        background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background in ("rgb(20, 19, 15)",), background
        page.locator(".dg-preview").screenshot(path=str(ARTIFACTS / "desk-preview-dark.png"))
        page.click("label[for=view-desktop]")

        page.click("button:text('Test-send to me')")
        page.wait_for_selector("text=ed@example.org: accepted")
        sent = wait_for(lambda: sorted((tmp_path / "outbox").rglob("*.eml")), "the test send")
        assert "[TEST]" in str(read_mail(sent[0])["Subject"])

        page.fill("#at", "2099-07-05T08:00")
        page.fill("#zone", "Europe/Berlin")
        page.click("button:text('Schedule')")
        page.wait_for_selector("text=(2099-07-05 06:00 UTC)")
        page.click("button:text('Unschedule')")
        page.wait_for_selector("text=Unscheduled.")

        page.fill("#at", "2000-01-01T08:00")  # the past is refused
        page.click("button:text('Schedule')")
        page.wait_for_selector("text=is in the past")

        # delivered (as the scheduler would when the time comes), then the report
        digest(tmp_path, "schedule", str(tmp_path / "issues" / f"{SLUG}.yaml"), "--at", "now")
        digest(tmp_path, "deliver")
        page.goto(desk.url + "/")
        page.click(f"a[href='/issues/{SLUG}/report']")
        page.wait_for_selector("h1:text('[Weekly] Harbors: who pays?')")
        assert page.locator("svg rect").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "desk-report.png"), full_page=True)

        page.goto(desk.url + "/audit")
        for action in ("signed in", "edited", "test-sent", "scheduled", "unscheduled"):
            assert page.locator(f"td:text-is('{action}')").count() >= 1, action
        page.screenshot(path=str(ARTIFACTS / "desk-audit.png"), full_page=True)
    finally:
        context.close()
        desk.stop()
