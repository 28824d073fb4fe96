"""Excerpts as an editor would write them: the editors' question kept, a preheader that is a
whole phrase, the series label in its place, emphasis that never leaks asterisks, sentences
that end where a reader ends them, anchors that are never shared, and checks that say what
an editor should look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from digest.build import build
from digest.checks import check_issue
from digest.compose import compose
from digest.config import Settings
from digest.excerpt import sentences, slugify, to_markdown
from digest.issuefile import dump_issue, load_issue, write_issue
from digest.model import plain_text
from digest.render.markdown import inline_html
from digest.sources import read_conversation
from digest.sources.rich import paragraph_of
from tests.conftest import FIXTURES, SAMPLE, SAMPLE_URL, SEED_URL

SETTINGS = Settings()


def composed(tmp: Path, source: Path | str, url: str | None = None):  # type: ignore[no-untyped-def]
    issue, path = compose([str(source)], SETTINGS, url=url, out_dir=tmp)
    return issue, path


# --- 1. the intro keeps the editors' question ---------------------------------------------


def test_the_seed_intro_keeps_the_editors_question_whole(tmp_path: Path, seed_path: Path) -> None:
    issue, _ = composed(tmp_path, seed_path, SEED_URL)
    intro = issue.sections[0].intro
    assert intro.startswith("United States Secretary of State Antony Blinken")
    assert intro.endswith(
        "What are the stakes of Blinken's trip, and what is its likely impact on the state "
        "of U.S.-China relations?"
    )
    assert "…" not in intro and "The Editors" not in intro


def test_the_sample_intro_keeps_its_closing_question(tmp_path: Path) -> None:
    issue, _ = composed(tmp_path, SAMPLE, SAMPLE_URL)
    intro = issue.sections[0].intro
    assert intro.endswith(
        "Which of these bets should a harbor city make first, and who should pay for it?"
    )
    assert intro.startswith("Three of the world's ten busiest ports")


# --- 2. the preheader is a whole phrase that adds something --------------------------------


@pytest.mark.parametrize("which", ["sample", "seed"])
def test_the_preheader_is_a_whole_phrase_not_the_intro_cut_short(
    tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    source, url = (
        (SAMPLE, SAMPLE_URL)
        if which == "sample"
        else (request.getfixturevalue("seed_path"), SEED_URL)
    )
    issue, _ = composed(tmp_path, source, url)
    preheader = issue.preheader
    assert preheader and not preheader.endswith("…")
    assert len(preheader) <= SETTINGS.compose.excerpt.preheader_chars
    assert not issue.sections[0].intro.startswith(preheader)
    names = [e.name for e in issue.sections[0].experts]
    assert names[0] in preheader  # it says who is in the conversation


# --- 3. a series label before the title is the series ---------------------------------------

SERIES_PAGE = """<!doctype html><html lang="en"><head><title>Grid</title></head><body>
<article>
<p class="series">Meridian Conversation</p>
<h1>Who Pays for the Grid?</h1>
<p><time datetime="2025-05-02">May 2, 2025</time></p>
<p>For two years, utilities have asked regulators for more money to harden lines against
storms. Customers already pay more each year. Who should pay for a grid that survives the
next storm?</p>
<div class="response" id="r-ana"><p class="author">Ana Silva</p><p class="affiliation">Economist</p>
<p>Customers should pay, but only for what they use. The rest is a public good.</p></div>
<div class="response" id="r-ben"><p class="author">Ben Okoro</p><p class="affiliation">Engineer</p>
<p>The utilities should pay first. They chose to underinvest for a decade.</p></div>
</article></body></html>"""


def test_a_series_label_before_the_title_is_the_series_not_the_intro(tmp_path: Path) -> None:
    page = tmp_path / "grid.html"
    page.write_text(SERIES_PAGE, encoding="utf-8")
    conversation = read_conversation(str(page), settings=SETTINGS, url="https://example.org/grid")
    assert conversation.series == "Meridian Conversation"
    assert plain_text(conversation.intro[0]).startswith("For two years")
    issue, _ = composed(tmp_path, page, "https://example.org/grid")
    assert issue.sections[0].series == "Meridian Conversation"
    assert "Meridian" not in (issue.preheader or "")


# --- 4. emphasis survives or is dropped cleanly, never as asterisks --------------------------


def markdown_of(inline: str) -> str:
    element = lxml_html.fragment_fromstring(f"<p>{inline}</p>")
    return to_markdown(paragraph_of(element, None))


STRAIGHTEN = str.maketrans("‘’“”", "''\"\"")


def rendered_text(markdown: str) -> str:
    """What a reader sees of ``markdown``, with the typeset quotes the renderer makes
    (test_render checks those) read back as the source's straight ones."""
    html_out = inline_html(markdown)
    return lxml_html.fragment_fromstring(f"<p>{html_out}</p>").text_content().translate(STRAIGHTEN)


def test_a_bold_label_glued_to_the_next_word_stays_bold_without_asterisks() -> None:
    markdown = markdown_of("<strong>Update:</strong>The talks resumed.")
    html_out = inline_html(markdown)
    assert "*" not in html_out
    assert rendered_text(markdown) == "Update:The talks resumed."
    assert "<strong>Update" in html_out


WORD = st.text(alphabet="abcXYZ019.,:;!?'\"()-*_ é李", min_size=1, max_size=8)


@st.composite
def inline_html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(
            st.sampled_from(
                ["text", "text", "strong", "em", "b", "i", "a"] if depth < 3 else ["text"]
            )
        )
        if kind == "text":
            parts.append(draw(WORD))
        elif kind == "a":
            parts.append(
                f'<a href="https://example.org/{draw(st.integers(0, 9))}">{draw(inline_html_fragments(depth + 1))}</a>'
            )
        else:
            parts.append(f"<{kind}>{draw(inline_html_fragments(depth + 1))}</{kind}>")
    return "".join(parts)


@settings(max_examples=400, deadline=None)
@given(inline_html_fragments())
def test_generated_inline_html_never_leaks_markdown_syntax(fragment: str) -> None:
    element = lxml_html.fragment_fromstring(f"<p>{fragment}</p>")
    paragraph = paragraph_of(element, None)
    markdown = to_markdown(paragraph)
    source = plain_text(paragraph).translate(STRAIGHTEN)
    assert " ".join(rendered_text(markdown).split()) == " ".join(source.split())


# --- 5. sentences end where a reader ends them ---------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "The answer is no. Washington will not move.",
            ["The answer is no.", "Washington will not move."],
        ),
        (
            "Power shifted to the U.S. The rest followed.",
            ["Power shifted to the U.S.", "The rest followed."],
        ),
        ("They met at 9 a.m. They left at noon.", ["They met at 9 a.m.", "They left at noon."]),
        (
            "She moved to Washington, D.C. It rained.",
            ["She moved to Washington, D.C.", "It rained."],
        ),
        (
            "It began before World War I. Few saw it coming.",
            ["It began before World War I.", "Few saw it coming."],
        ),
        ("See Art. 5 of the treaty. It is clear.", ["See Art. 5 of the treaty.", "It is clear."]),
        (
            "Under Pub. L. 117-58 the money flowed. Then it stopped.",
            ["Under Pub. L. 117-58 the money flowed.", "Then it stopped."],
        ),
        ("The U.S. Army built it. Then it rained.", ["The U.S. Army built it.", "Then it rained."]),
        ("Rule No. 5 applies here. It is old.", ["Rule No. 5 applies here.", "It is old."]),
        (
            "美国国务卿将访问中国。双方关系紧张！会谈能否成功？尚不清楚。",
            ["美国国务卿将访问中国。", "双方关系紧张！", "会谈能否成功？", "尚不清楚。"],
        ),
        (
            "外相が北京を訪れた。会談は三時間続いた。",
            ["外相が北京を訪れた。", "会談は三時間続いた。"],
        ),
    ],
)
def test_sentences_end_where_a_reader_ends_them(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


# --- 6. slugs and anchors -------------------------------------------------------------------

CHINESE_NAMES = """# 中美关系的前景

2024-03-01

编者按：两国关系紧张。会谈能否成功？

### 李明

*北京大学*

双方都需要稳定。这是第一步。

### 王芳

*复旦大学*

会谈不会带来突破。但对话本身有价值。

### Ana María Ruiz

*Harvard University*

Both sides want calm. Talks matter.

### Ana Maria Ruiz

*Yale University*

Stability is the goal. Nothing more.
"""


def test_non_latin_names_get_their_own_anchors_and_no_two_experts_share_one(tmp_path: Path) -> None:
    assert slugify("李明") == "李明"
    assert slugify("Zoë K. Øsei") == "zoe-k-osei"
    source = tmp_path / "zh.md"
    source.write_text(CHINESE_NAMES, encoding="utf-8")
    issue, path = composed(tmp_path, source, "https://example.org/zh")
    anchors = [e.read_more.rsplit("#", 1)[1] for e in issue.sections[0].experts]
    assert "untitled" not in anchors
    assert len(set(anchors)) == 4, anchors
    assert "untitled" not in path.name and "中美关系的前景" in path.name


# --- 7. checks say what an editor should look at ----------------------------------------------


NO_ANCHORS = """# Who Pays for the Grid?

2025-05-02

Utilities want more money. Who should pay?

### Ana Silva

*Economist, Lisbon School of Economics*

Customers should pay. The rest is a public good.

### Ben Okoro

The utilities should pay first. They chose to underinvest.
"""


def test_check_warns_about_a_missing_affiliation_and_a_made_up_anchor(tmp_path: Path) -> None:
    source = tmp_path / "grid.md"
    source.write_text(NO_ANCHORS, encoding="utf-8")
    issue, path = composed(tmp_path, source, "https://example.org/grid")
    write_issue(dump_issue(issue), path, force=True)
    assert path.read_text(encoding="utf-8").count("anchor_from_name: true") == 2
    findings = [str(f) for f in check_issue(load_issue(path))]
    assert any(
        f.startswith("warning:") and "#ana-silva" in f and "made from the expert's name" in f
        for f in findings
    ), findings
    assert [f for f in findings if "no affiliation" in f] == [
        "warning: expert 'Ben Okoro' in section 1 ('Who Pays for the Grid?') has no "
        "affiliation; readers like to know who it is"
    ]


def test_a_markdown_source_can_give_the_pages_anchors(tmp_path: Path) -> None:
    issue, path = composed(tmp_path, SAMPLE, SAMPLE_URL)
    write_issue(dump_issue(issue), path, force=True)
    assert "anchor_from_name" not in path.read_text(encoding="utf-8")
    assert [e.read_more.rsplit("#", 1)[1] for e in issue.sections[0].experts] == [
        "comment-ferreira",
        "comment-okafor",
        "comment-aydin",
    ]
    assert not any("made from the expert's name" in str(f) for f in check_issue(load_issue(path)))


def test_anchors_taken_from_the_page_are_not_flagged(tmp_path: Path) -> None:
    issue, path = composed(tmp_path, FIXTURES / "conversation-page.html", "https://example.org/l")
    write_issue(dump_issue(issue), path, force=True)
    assert "anchor_from_name" not in path.read_text(encoding="utf-8")
    assert not any("made from the expert's name" in str(f) for f in check_issue(load_issue(path)))


def test_an_issue_named_in_chinese_renders_and_sends_with_ascii_headers_and_tags(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.providers import Batch, create_provider, make_http_client
    from digest.render.message import Recipient
    from tests.conftest import run
    from tests.fakes import FakeMailgun, FakeResend

    Path("zh.md").write_text(CHINESE_NAMES, encoding="utf-8")
    assert run("compose", "zh.md", "--url", "https://example.org/zh").exit_code == 0
    (path,) = Path("issues").glob("*.yaml")
    result = run("render", str(path))
    assert result.exit_code == 0, result.output
    (eml,) = Path("build").glob("*.eml")
    head = eml.read_bytes().split(b"\n\n", 1)[0]
    assert head.isascii()
    assert b"Feedback-ID: 2024-03-01-" in head and b"Message-ID: <2024-03-01-" in head
    assert run("send", str(path), "--test").exit_code == 0

    rendered = build(path, SETTINGS).rendered
    for fake_class, extra in ((FakeResend, {}), (FakeMailgun, {"domain": "mg.example.org"})):
        with fake_class() as fake, make_http_client(SETTINGS) as client:
            monkeypatch.setenv("DIGEST_TEST_KEY", fake.key)
            settings = Settings(
                provider={"name": fake_class.__name__[4:].lower(), "base_url": fake.url,
                          "api_key_env": "DIGEST_TEST_KEY", **extra}
            )  # fmt: skip
            provider = create_provider(settings, client)
            batch = Batch(
                rendered, (Recipient("a@example.org"),), key=f"digest:x:{path.stem}:batch-1"
            )
            assert [o.status for o in provider.send(batch)] == ["accepted"]
            (delivery,) = fake.deliveries
            assert delivery.metadata["issue"].isascii()
            assert delivery.metadata["issue"].startswith("2024-03-01-")
