"""Sentence splitting, word budgets, Markdown output and read-more links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from markdown_it import MarkdownIt

from digest.excerpt import (
    escape_markdown,
    excerpt,
    read_more_url,
    sentences,
    shorten,
    slugify,
    to_markdown,
)
from digest.model import Span


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "When U.S. President Joe Biden met Xi in Bali, they agreed. Talks followed.",
            ["When U.S. President Joe Biden met Xi in Bali, they agreed.", "Talks followed."],
        ),
        (
            "Officials in the U.K. Parliament agreed. Then it rained.",
            ["Officials in the U.K. Parliament agreed.", "Then it rained."],
        ),
        (
            "The U.N. Security Council met. It adjourned.",
            ["The U.N. Security Council met.", "It adjourned."],
        ),
        (
            "Mr. Lee and Dr. Park met St. John there. Nobody came.",
            ["Mr. Lee and Dr. Park met St. John there.", "Nobody came."],
        ),
        (
            "Some foods, e.g. Rice, keep. Others, i.e. Bread, do not.",
            ["Some foods, e.g. Rice, keep.", "Others, i.e. Bread, do not."],
        ),
        (
            "It began in Jan. 2020 with rule No. 2 in force. Then it ended.",
            ["It began in Jan. 2020 with rule No. 2 in force.", "Then it ended."],
        ),
        (
            "It weighs approx. 3.5 tons. That is heavy.",
            ["It weighs approx. 3.5 tons.", "That is heavy."],
        ),
        ("Daniel K. Osei wrote it. Others agreed.", ["Daniel K. Osei wrote it.", "Others agreed."]),
        (
            "Growth was 3.5 percent. Prices rose 2.25 percent.",
            ["Growth was 3.5 percent.", "Prices rose 2.25 percent."],
        ),
        (
            "He paused... and then went on. Later he left.",
            ["He paused... and then went on.", "Later he left."],
        ),
        (
            "He paused… and then went on. Later he left.",
            ["He paused… and then went on.", "Later he left."],
        ),
        ('She said, "Stop here." Then she left.', ['She said, "Stop here."', "Then she left."]),
        ("She said, “Stop here.” Then she left.", ["She said, “Stop here.”", "Then she left."]),
        ("It ended (as expected.) The next began.", ["It ended (as expected.)", "The next began."]),
        ("Really? Yes! Fine.", ["Really?", "Yes!", "Fine."]),
    ],
)
def test_sentences_do_not_break_on_abbreviations_initials_decimals_or_ellipses(
    text: str, expected: list[str]
) -> None:
    assert sentences(text) == expected


def para(text: str) -> tuple[Span, ...]:
    return (Span(text),)


def words(n: int, start: int = 0) -> str:
    return " ".join(f"W{i}" for i in range(start, start + n))


def test_excerpt_takes_whole_sentences_within_the_word_budget() -> None:
    text = f"{words(30)}. {words(30, 30)}. {words(30, 60)}."
    result = excerpt([para(text)], 70)
    assert result == f"{words(30)}. {words(30, 30)}."


def test_excerpt_continues_into_the_next_paragraph_when_budget_allows() -> None:
    result = excerpt([para("Short lead."), para("Second paragraph here.")], 70)
    assert result == "Short lead. Second paragraph here."


def test_excerpt_cuts_an_over_long_first_sentence_at_a_word_boundary_with_ellipsis() -> None:
    result = excerpt([para(words(120) + ".")], 70)
    assert result == words(70) + "…"


def test_excerpt_keeps_links_and_emphasis_of_the_chosen_sentences() -> None:
    paragraph = (
        Span("Read the "),
        Span("survey", href="https://example.org/s?a=1&b=2"),
        Span(" now, "),
        Span("truly", em=True),
        Span(". "),
        Span("It is ", strong=True),
        Span("long", strong=True, href="https://example.org/l"),
        Span("."),
    )
    result = excerpt([paragraph], 6)
    assert result == "Read the [survey](https://example.org/s?a=1&b=2) now, *truly*."
    html = MarkdownIt("commonmark").renderInline(excerpt([paragraph], 70))
    assert '<a href="https://example.org/s?a=1&amp;b=2">survey</a>' in html
    assert "<em>truly</em>" in html
    assert "<strong>It is </strong>" in html or "<strong>It is</strong>" in html


def test_excerpt_skips_list_items_when_the_comment_has_prose() -> None:
    paragraphs = [para("• first item."), para("The prose begins here.")]
    assert excerpt(paragraphs, 70) == "The prose begins here."


def test_markdown_special_characters_in_source_text_stay_text() -> None:
    text = "A *star*, [brackets](x) and <b>tags</b> & &amp; entities"
    rendered = MarkdownIt("commonmark").renderInline(to_markdown((Span(text),)))
    assert "<em>" not in rendered and "<a " not in rendered and "<b>" not in rendered
    assert "&lt;b&gt;tags&lt;/b&gt;" in rendered
    assert "&amp;amp;" in rendered
    assert escape_markdown("# not a heading") == "\\# not a heading"


def test_link_urls_with_parentheses_survive_markdown() -> None:
    md = to_markdown((Span("wiki", href="https://example.org/a_(b)"),))
    html = MarkdownIt("commonmark").renderInline(md)
    assert 'href="https://example.org/a_%28b%29"' in html


def test_read_more_keeps_the_existing_query_and_fragment_and_adds_utm() -> None:
    url = read_more_url(
        "https://example.org/page?lang=en&utm_source=old#top",
        name="Zoë K. Øsei",
        anchor=None,
        pattern="{url}#{anchor}",
        utm={"utm_source": "digest", "utm_medium": "email", "utm_campaign": "2025-01-01-x"},
    )
    parts = urlsplit(url)
    assert parts.fragment == "zoe-k-osei"
    assert parse_qs(parts.query) == {
        "lang": ["en"],
        "utm_source": ["digest"],
        "utm_medium": ["email"],
        "utm_campaign": ["2025-01-01-x"],
    }


def test_read_more_prefers_the_sources_own_anchor() -> None:
    url = read_more_url(
        "https://example.org/page",
        name="A B",
        anchor="comment-7",
        pattern="{url}#{anchor}",
        utm=None,
    )
    assert url == "https://example.org/page#comment-7"


def test_slugify_folds_diacritics_and_punctuation() -> None:
    assert slugify("Selin Aydın") == "selin-aydin"
    assert slugify("What's at Stake as Blinken Heads to Beijing") == (
        "whats-at-stake-as-blinken-heads-to-beijing"
    )
    assert slugify("!!!") == "untitled"


def test_shorten_cuts_on_a_word_boundary() -> None:
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("short", 12) == "short"


def test_an_indirect_question_closing_a_long_intro_is_kept_whole() -> None:
    from digest.excerpt import intro_excerpt
    from digest.model import Span

    context = " ".join(
        f"Sentence {n} of the background says something long about ferries and harbors."
        for n in range(1, 9)
    )
    question = (
        "We asked three people who run, ride and regulate night trains whether the revival"
        " will last once the subsidies end."
    )
    intro = intro_excerpt(((Span(f"{context} {question}"),),), 40)
    assert intro.endswith(question)
    assert len(intro.split()) <= 40 + 5
