"""The rendered email in a real headless Chromium at phone and desktop widths, light and
dark: what a reader sees, measured rather than eyeballed. Screenshots go to
test-artifacts/ for review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from digest.build import build
from digest.compose import compose
from digest.config import Settings
from digest.issuefile import dump_issue, write_issue
from tests.conftest import ROOT, SAMPLE, SAMPLE_URL, SEED, SEED_URL

ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (320, 375, 700)
SCHEMES = ("light", "dark")

# Everything measured in one pass in the page; the test asserts on what it returns.
MEASURE = r"""
() => {
  const px = (v) => parseFloat(v) || 0;
  const out = {overflow: 0, small: [], tallLinks: [], orphanArrows: [], splitDates: [],
               readMore: 0, bodyBg: "", pageBgs: [], rules: [], textColors: [], dates: 0,
               spokenArrows: 0, mastheadBreaks: [], masthead: "", buttons: [],
               lonelyWords: [], italicIntros: 0, gaps: [], cardEnd: 0};
  const doc = document.documentElement;
  out.overflow = Math.max(doc.scrollWidth, document.body.scrollWidth) - window.innerWidth;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const dateRe = /(January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}, \d{4}/g;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    if (!text.trim()) continue;
    const el = node.parentElement;
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const style = getComputedStyle(el);
    if (px(style.fontSize) < 14) out.small.push([el.tagName, px(style.fontSize), text.trim().slice(0, 40)]);
    out.textColors.push(style.color);
    for (const m of text.matchAll(dateRe)) {
      out.dates += 1;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) out.splitDates.push(m[0]);
    }
  }
  for (const a of document.querySelectorAll("a")) {
    if (!a.checkVisibility()) continue;
    const style = getComputedStyle(a);
    // a line of text: the line height, but never more than 1.6 times the font size
    const set = style.lineHeight === "normal" ? px(style.fontSize) * 1.2 : px(style.lineHeight);
    const line = Math.min(set, px(style.fontSize) * 1.6);
    const pad = px(style.paddingTop) + px(style.paddingBottom);
    const rects = style.display === "inline" ? [...a.getClientRects()] : [a.getBoundingClientRect()];
    const limit = (style.display === "inline" ? line : 2 * line) + pad + 1;
    for (const r of rects) {
      if (r.height > limit) out.tallLinks.push([a.textContent.trim().slice(0, 50), r.height, limit]);
    }
    const text = a.textContent;
    if (text.includes("Read the whole conversation")) {
      out.buttons.push([a.getAttribute("href"), a.getBoundingClientRect().height]);
    }
    const arrow = text.lastIndexOf("\u2192");
    if (arrow < 0) continue;
    out.readMore += 1;
    if (a.getBoundingClientRect().height < 44) out.tallLinks.push([text.trim(), "tap target under 44px"]);
    // the last word and the arrow: every fragment of that range on one line
    const words = text.slice(0, arrow).trimEnd();
    const start = words.lastIndexOf(" ") + 1;
    const iter = document.createTreeWalker(a, NodeFilter.SHOW_TEXT);
    let offset = 0, range = document.createRange(), started = false;
    for (let t = iter.nextNode(); t; t = iter.nextNode()) {
      const len = t.textContent.length;
      if (!started && start < offset + len) { range.setStart(t, start - offset); started = true; }
      if (arrow < offset + len) { range.setEnd(t, arrow - offset + 1); break; }
      offset += len;
    }
    const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.bottom)));
    if (tops.size > 1) out.orphanArrows.push(text.trim());
  }
  // an arrow after a link's words is decoration: screen readers must not read it out
  const arrows = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = arrows.nextNode(); t; t = arrows.nextNode()) {
    if (t.textContent.includes("\u2192") && !t.parentElement.closest('[aria-hidden="true"]')) {
      out.spokenArrows += 1;
    }
  }
  // the masthead: its separator stays at the end of the name's line, never starts one
  const head = document.querySelector(".dg-masthead");
  if (head) {
    out.masthead = head.textContent.replace(/\s+/g, " ").trim();
    const texts = document.createTreeWalker(head, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let t = texts.nextNode(); t; t = texts.nextNode()) {
      for (let i = 0; i < t.textContent.length; i++) {
        if (!t.textContent[i].trim()) continue;
        const r = document.createRange();
        r.setStart(t, i);
        r.setEnd(t, i + 1);
        const box = r.getBoundingClientRect();
        chars.push([t.textContent[i], Math.round(box.top)]);
      }
    }
    for (let i = 1; i < chars.length; i++) {
      if (chars[i][1] !== chars[i - 1][1] && chars[i][0] === "\u00b7") out.mastheadBreaks.push(i);
    }
  }
  // a title never leaves its last word alone on a line
  for (const h of document.querySelectorAll("h1, h2")) {
    const words = [];
    const texts = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
    for (let t = texts.nextNode(); t; t = texts.nextNode()) {
      for (const m of t.textContent.matchAll(/\S+/g)) {
        const r = document.createRange();
        r.setStart(t, m.index);
        r.setEnd(t, m.index + m[0].length);
        words.push(Math.round(r.getBoundingClientRect().top));
      }
    }
    const n = words.length;
    if (n > 2 && words[n - 1] !== words[n - 2]) out.lonelyWords.push(h.textContent.trim());
  }
  // a long intro is not set in italics (hard to read at length)
  for (const el of document.querySelectorAll(".dg-intro div, .dg-intro")) {
    if (getComputedStyle(el).fontStyle === "italic" && el.textContent.split(/\s+/).length > 40) {
      out.italicIntros += 1;
    }
  }
  // the first words a reader sees are the newsletter's own
  const first = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = first.nextNode(); t; t = first.nextNode()) {
    if (t.textContent.trim() && t.parentElement.checkVisibility()) {
      out.firstText = t.textContent.trim();
      break;
    }
  }
  // white space as the eye sees it: from the ink (text, the button) above each divider
  // to the divider, from the divider to the ink below, and after the card's last ink
  const ink = [];
  const inkWalker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = inkWalker.nextNode(); t; t = inkWalker.nextNode()) {
    if (!t.textContent.trim() || !t.parentElement.checkVisibility({opacityProperty: true})) continue;
    const r = document.createRange();
    r.selectNodeContents(t);
    for (const box of r.getClientRects()) if (box.height > 0) ink.push([box.top, box.bottom]);
  }
  for (const b of document.querySelectorAll(".dg-button td[bgcolor], .dg-button a")) {
    const box = b.getBoundingClientRect();
    ink.push([box.top, box.bottom]);
  }
  for (const rule of document.querySelectorAll(".dg-rule > table > tbody > tr > td")) {
    const top = rule.getBoundingClientRect().top;
    const above = Math.max(...ink.filter(([, b]) => b <= top + 1).map(([, b]) => b));
    const below = Math.min(...ink.filter(([t]) => t >= top - 1).map(([t]) => t));
    out.gaps.push([Math.round(top - above), Math.round(below - top)]);
  }
  const cards = [...document.querySelectorAll(".dg-card")];
  if (cards.length) {
    const end = cards[cards.length - 1].getBoundingClientRect().bottom;
    const last = Math.max(...ink.filter(([, b]) => b <= end + 1).map(([, b]) => b));
    out.cardEnd = Math.round(end - last);
  }
  out.bodyBg = getComputedStyle(document.body).backgroundColor;
  for (const el of document.querySelectorAll(".dg-page, .dg-card, .dg-card td")) {
    out.pageBgs.push(getComputedStyle(el).backgroundColor);
  }
  for (const el of document.querySelectorAll("td, div")) {
    const style = getComputedStyle(el);
    if (px(style.borderTopWidth) > 0 && style.borderTopStyle !== "none") out.rules.push(style.borderTopColor);
  }
  return out;
}
"""


def luminance(color: str) -> float:
    """Relative luminance (0 black .. 1 white) of a computed rgb()/rgba() colour."""
    numbers = color[color.index("(") + 1 : color.index(")")].replace(",", " ").split()
    if len(numbers) == 4 and float(numbers[3]) == 0:
        return -1.0  # transparent: shows what is behind it
    channels = []
    for value in numbers[:3]:
        c = float(value) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def rendered_html(tmp: Path, source: Path, url: str) -> str:
    issue, path = compose([str(source)], Settings(), url=url, out_dir=tmp)
    write_issue(dump_issue(issue), path, force=True)
    return build(path, Settings()).sample.html


def measure(browser: Any, html: str, name: str, width: int, scheme: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        fetched: list[str] = []

        def refuse(route: Any) -> None:
            fetched.append(route.request.url)
            route.abort()

        page.route("**/*", refuse)
        page.set_content(html, wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"email-{name}-{width}-{scheme}.png"), full_page=True)
        result: dict[str, Any] = page.evaluate(MEASURE)
        result["fetched"] = fetched
        return result
    finally:
        context.close()


def sources() -> list[Any]:
    seed = pytest.param(
        SEED,
        SEED_URL,
        id="seed",
        marks=pytest.mark.skipif(not SEED.is_file(), reason=f"the seed is not at {SEED}"),
    )
    return [pytest.param(SAMPLE, SAMPLE_URL, id="sample"), seed]


@pytest.mark.parametrize(("source", "url"), sources())
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_email_reads_right_at_every_width_in_light_and_dark(
    browser: Any, tmp_path: Path, source: Path, url: str, width: int, scheme: str
) -> None:
    html = rendered_html(tmp_path, source, url)
    name = "seed" if source == SEED else "sample"
    seen = measure(browser, html, name, width, scheme)
    assert seen["fetched"] == [], "the email made the browser fetch something"
    assert seen["overflow"] <= 0, f"{seen['overflow']} px of horizontal overflow"
    assert seen["readMore"] >= 3, "the Read more links were not found"
    assert seen["orphanArrows"] == [], "a Read more arrow sits apart from the last word"
    assert seen["tallLinks"] == [], "a link box is taller than two lines of text plus padding"
    assert seen["splitDates"] == [], "a date breaks across lines"
    assert seen["small"] == [], "text or links under 14 px"
    assert seen["dates"] == 1, f"{seen['dates']} dates shown for a one-conversation issue"
    assert seen["mastheadBreaks"] == [], "a line of the masthead starts with its separator"
    assert Settings().newsletter.name in seen["masthead"], "the masthead's own text is changed"
    assert seen["firstText"] == Settings().newsletter.name, (
        f"the email opens with {seen['firstText']!r}"
    )
    assert seen["spokenArrows"] == 0, "an arrow is read aloud by screen readers"
    assert len(seen["buttons"]) == 1, "no button to the whole conversation"
    (href, height), page = seen["buttons"][0], url.partition("#")[0]
    assert href.startswith(page) and "utm_source=" in href, href
    assert height >= 44, f"the button is {height} px tall"
    assert seen["lonelyWords"] == [], "a title leaves its last word alone on a line"
    assert seen["italicIntros"] == 0, "a long intro is set in italics"
    # a divider sits between experts, not under the one before: balanced space around it
    assert seen["gaps"], "no dividers between experts were found"
    for above, below in seen["gaps"]:
        assert 14 <= above <= 32 and 14 <= below <= 32, seen["gaps"]
        assert abs(above - below) <= 10, f"{above} px above a divider, {below} px below"
    assert seen["cardEnd"] <= 36, f"{seen['cardEnd']} px of empty card after the last ink"
    if scheme == "dark":
        assert luminance(seen["bodyBg"]) < 0.05, f"the page stays light: {seen['bodyBg']}"
        assert all(luminance(bg) < 0.05 for bg in seen["pageBgs"]), seen["pageBgs"]
        assert seen["rules"] and all(luminance(c) < 0.1 for c in seen["rules"]), seen["rules"]
        assert all(luminance(c) > 0.3 for c in seen["textColors"]), "dark text on a dark page"
    else:
        assert luminance(seen["bodyBg"]) > 0.7
