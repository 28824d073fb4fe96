"""Real publishers' layouts, each from fixtures written for it (issue 26):

- plain-text copies of conversation pages (what a reader gets by selecting all and
  copying in a browser): navigation words first, the title perhaps twice, a kicker, a
  date line over each comment, names alone or with a colon, an update note, the footer;
- "experts react" pages: a headline per expert and the name in an attribution line,
  closing the part or opening it;
- "ask the experts" roundups: names as headings or bold with the title on one line, a
  plain title line, a bold verdict, and the host's "About the author" box after;
- "we asked N experts" pages with an authors list, disclosures and readers' comments;
- a page of speaker cards, where nobody comments, refused;
- a conversation with replies, date lines and captions;
- a Chinese page: 编者按, "姓名：标题" headings, （作者系……） notes and a 评论 section;
- roundtables and symposia: essays "By Name", notes, pull quotes, bios."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from digest.config import Settings
from digest.excerpt import sentences
from digest.model import plain_text
from digest.sources import read_conversation
from tests.conftest import FIXTURES, SEED, SEED_URL

LAYOUTS = FIXTURES / "layouts"
URL = "https://harbor.example/conversations/lights"


def read(name: str):  # type: ignore[no-untyped-def]
    return read_conversation(str(LAYOUTS / name), settings=Settings(), url=URL)


def first_sentence(comment) -> str:  # type: ignore[no-untyped-def]
    return sentences(plain_text(comment.paragraphs[0]))[0].strip()


def test_a_copied_page_is_read_with_its_title_date_kicker_intro_and_experts() -> None:
    conversation = read("lighthouses-copy.txt")
    assert conversation.title == "Who Should Pay to Keep the Lighthouses Lit?"
    assert str(conversation.date) == "2026-03-03"
    assert conversation.series == "Harbor Review Conversation"
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Coastal towns") and intro.rstrip().endswith("stairs?")
    assert [c.name for c in conversation.comments] == [
        "Ingrid Solberg", "Kofi A. Oduya", "Mara Lindqvist",
    ]  # fmt: skip
    assert [c.affiliation for c in conversation.comments] == [
        "Keeper, Lindesnes Light (retired)",
        "Curator, Coastal Heritage Trust",
        "Harbour Master, Port of Visby",
    ]
    assert first_sentence(conversation.comments[0]) == (
        "A lighthouse is a working instrument, not a relic."
    )
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    for stray in ("March 4, 2026", "UPDATE:", "Share", "Facebook", "Related", "©", "Keepers of"):
        assert stray not in everything, stray


def test_names_with_a_colon_open_their_comments_in_a_copy() -> None:
    conversation = read("night-trains-copy.txt")
    assert conversation.title == "Are Night Trains Back for Good?"
    assert str(conversation.date) == "2025-11-20"
    assert conversation.series == "Rail Desk Conversation"
    assert "whether the revival will last" in plain_text(conversation.intro[0])
    assert [c.name for c in conversation.comments] == ["Tomás Ferreira", "Hana Novak", "Ravi Iyer"]
    assert first_sentence(conversation.comments[0]) == "The timetables are the hard part."
    last = " ".join(plain_text(p) for p in conversation.comments[-1].paragraphs)
    assert "Ferries" not in last and "Related" not in last


@pytest.mark.parametrize(
    "name", ["lighthouses-copy.txt", "night-trains-copy.txt", "experts-react-copy.txt"]
)
def test_a_copied_page_composes_into_an_issue(name: str, tmp_path: Path) -> None:
    from digest.compose import compose

    issue, _ = compose([str(LAYOUTS / name)], Settings(), url=URL, out_dir=tmp_path)
    assert [e.name for e in issue.sections[0].experts] == [c.name for c in read(name).comments]
    assert len(issue.sections[0].experts) >= 2
    assert all(e.excerpt for e in issue.sections[0].experts)


def plain_copy_of(markdown: str) -> str:
    """What a browser's select-all copy of the page would give: the text without the
    Markdown, one block a line, with navigation words before and a footer after."""
    import re

    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)  # links: their words
    text = re.sub(r"^#{1,6}\s*", "", text, flags=re.M).replace("*", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = lines[0]
    return "\n".join(["Skip to main content", "breadcrumb", "Home", title, *lines,
                      "Share", "Related", "© The publisher"]) + "\n"  # fmt: skip


@pytest.mark.skipif(not SEED.is_file(), reason=f"the seed is not at {SEED}")
def test_a_plain_copy_of_the_seed_conversation_reads_like_its_page(tmp_path: Path) -> None:
    markdown = SEED.read_text(encoding="utf-8")
    copy = tmp_path / "seed-copy.txt"
    copy.write_text(plain_copy_of(markdown), encoding="utf-8")
    settings = Settings()
    page = read_conversation(str(SEED), settings=settings, url=SEED_URL)
    copied = read_conversation(str(copy), settings=settings, url=SEED_URL)
    assert copied.title == page.title and copied.date == page.date
    assert copied.series == page.series == "ChinaFile Conversation"
    assert [c.name for c in copied.comments] == [c.name for c in page.comments]
    for ours, theirs in zip(copied.comments, page.comments, strict=True):
        assert first_sentence(ours) == first_sentence(theirs)
    intro = " ".join(plain_text(p) for p in copied.intro)
    assert "What are the stakes" in intro and "is a regular" not in intro  # not the kicker's
    assert copied.series_description == page.series_description


# --- "Experts react" pages: a headline per expert, the name in an attribution line ------


def test_experts_react_with_a_closing_attribution_line() -> None:
    conversation = read("experts-react-closing.html")
    assert conversation.title == "Experts react: Can the grid survive the heat?"
    assert str(conversation.date) == "2026-07-14"
    assert [c.name for c in conversation.comments] == ["Tomás Okafor", "Omar Haddad"]
    assert [c.affiliation for c in conversation.comments] == [
        "Senior fellow, Harbor Energy Institute",
        "Director of the Open Markets Project, Lakeside University",
    ]
    assert [c.headline for c in conversation.comments] == [
        "Storage is the cheapest insurance we have",
        "Let prices do the rationing",
    ]
    assert [c.anchor for c in conversation.comments] == ["okafor", "haddad"]
    assert first_sentence(conversation.comments[0]).startswith("Batteries charged at noon")
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert "We asked our experts" in intro
    for stray in ("Jump to", "Lena Marsh"):
        assert stray not in intro, stray
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    assert "is a senior fellow" not in everything and "Sam Reader" not in everything


def test_experts_react_with_an_opening_attribution_paragraph() -> None:
    conversation = read("experts-react-opening.html")
    assert conversation.title == "Experts weigh in: should ports charge for emissions?"
    assert [c.name for c in conversation.comments] == ["Ingrid Solberg", "Kofi Oduya"]
    assert [c.affiliation for c in conversation.comments] == [
        "Professor of maritime economics, Bergen School of Trade",
        "Harbour engineer, Coastal Works",
    ]
    assert [c.headline for c in conversation.comments] == [
        "Fees work when every port charges them",
        "Start with shore power",
    ]
    assert first_sentence(conversation.comments[1]).startswith("Most emissions at berth")
    assert "Is a fee the right tool" in plain_text(conversation.intro[0])


def test_a_copied_experts_react_page_reads_headlines_attributions_and_its_date() -> None:
    conversation = read("experts-react-copy.txt")
    assert conversation.title == "Experts react: Will heat pumps win the winter?"
    assert str(conversation.date) == "2026-01-12"
    assert [c.name for c in conversation.comments] == ["Ingrid Solberg", "Omar Haddad"]
    assert [c.affiliation for c in conversation.comments] == [
        "Professor of building physics, Bergen School of Engineering",
        "Director of the Open Markets Project, Lakeside University",
    ]
    assert [c.headline for c in conversation.comments] == [
        "Insulate first, then pump", "Fix the tariff before the hardware",
    ]  # fmt: skip
    assert first_sentence(conversation.comments[0]).startswith("A heat pump in a draughty")
    assert len(conversation.comments[0].paragraphs) == 2
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Gas boilers are banned") and intro.endswith("switch.")
    everything = intro + " ".join(
        plain_text(p) for c in conversation.comments for p in c.paragraphs
    )
    for stray in ("Lena Marsh", "Jump to", "Solberg: Insulation", "is a professor", "Share",
                  "Related", "©", "January 12"):  # fmt: skip
        assert stray not in everything, stray


# --- "Ask the experts" roundups: a name and title line, a bold verdict, the answer ----


def test_ask_the_experts_with_name_headings_title_lines_and_verdicts() -> None:
    conversation = read("ask-the-experts-headings.html")
    assert conversation.title == "Ask the experts: Will city rents fall next year?"
    assert [c.name for c in conversation.comments] == ["Lucía Morales", "Ravi Iyer"]
    assert [c.affiliation for c in conversation.comments] == [
        "Chief economist, Harbor Bank",
        "Professor of urban economics, Lakeside University",
    ]
    assert [c.headline for c in conversation.comments] == [
        "No, not in the cities people want to live in.",
        "A little, in a few places.",
    ]
    assert first_sentence(conversation.comments[0]).startswith("New building has slowed")
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    assert "Mei Tanaka" not in everything and "About the author" not in everything
    assert "will rents in the largest cities fall" in plain_text(conversation.intro[0])


def test_ask_the_experts_with_bold_names_and_titles_on_one_line() -> None:
    conversation = read("ask-the-experts-bold.html")
    assert [c.name for c in conversation.comments] == ["Hana Novak", "Kofi Mensah"]
    assert [c.affiliation for c in conversation.comments] == [
        "Labour Economist, Central Statistics Office",
        "Head of Research, Workplace Futures",
    ]
    assert conversation.comments[0].headline == "Yes, for some of the week."
    assert conversation.comments[1].headline is None
    assert first_sentence(conversation.comments[1]) == "Less than people think."
    last = " ".join(plain_text(p) for p in conversation.comments[-1].paragraphs)
    assert "Erik Lund" not in last


# --- "We asked N experts": an authors list on top, disclosures and comments below -----


def test_we_asked_experts_takes_affiliations_from_the_authors_list_and_stops_at_disclosures() -> (
    None
):
    conversation = read("we-asked-experts.html")
    assert [c.name for c in conversation.comments] == ["Ingrid Solberg", "Omar Haddad"]
    assert [c.affiliation for c in conversation.comments] == [
        "Professor of Work Studies, Nordic Labour Institute",
        "Chief Executive, Small Firms Alliance",
    ]
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Two years into the trials") and "Chief Executive" not in intro
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    for stray in ("receives funding", "Lena Marsh", "never going back"):
        assert stray not in everything, stray


def test_a_page_of_speaker_cards_where_nobody_comments_is_refused() -> None:
    from digest.errors import SourceError

    with pytest.raises(SourceError, match="nobody comments"):
        read("speaker-cards.html")


# --- a conversation with replies: an expert who speaks again is still one expert -------


def test_a_repeat_speaker_is_one_expert_and_dates_and_captions_stay_out() -> None:
    from digest.compose import compose

    conversation = read("conversation-replies.html")
    assert conversation.title == "Who Owns the Shoreline?"
    assert [c.name for c in conversation.comments] == ["Ana Ferreira", "Tomás Okafor"]
    assert [c.anchor for c in conversation.comments] == ["post-101", "post-102"]
    assert [c.affiliation for c in conversation.comments] == [None, None]  # not the date
    assert first_sentence(conversation.comments[0]) == (
        "The shore belongs to whoever the tide reaches."
    )
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    for stray in ("June 2, 2026", "Photo: Jo Lens", "A sea wall", "Credit:", "Tomás is right"):
        assert stray not in everything, stray
    issue, _ = compose([str(LAYOUTS / "conversation-replies.html")], Settings(), url=URL)
    assert issue.preheader == "With Ana Ferreira and Tomás Okafor"


# --- a Chinese page: 编者按, "姓名：标题" headings, （作者系……） notes, 评论 -----------------


def test_a_chinese_conversation_reads_names_headlines_notes_and_its_date() -> None:
    conversation = read("chinese-conversation.html")
    assert conversation.title == "港口城市能否抵御海平面上升？"
    assert str(conversation.date) == "2026-03-04"
    assert "哪一项应该先做" in plain_text(conversation.intro[0])
    assert [c.name for c in conversation.comments] == ["李明", "王芳"]
    assert [c.headline for c in conversation.comments] == ["海堤只能争取时间", "先把钱的问题想清楚"]
    assert [c.affiliation for c in conversation.comments] == [
        "港湾理工学院教授",
        "海岸发展研究所研究员",
    ]
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    for stray in ("作者系", "读者甲", "写得好"):
        assert stray not in everything, stray


# --- roundtables and symposia: essays "By Name", notes, pull quotes, bios --------------


def test_a_symposium_of_essays_with_bylines_notes_pull_quotes_and_bios() -> None:
    conversation = read("symposium-bios-each.html")
    assert conversation.title == "Symposium: What Is a Harbor For?"
    assert [c.name for c in conversation.comments] == ["Ana Ferreira", "Kofi Oduya"]
    assert [c.headline for c in conversation.comments] == [
        "A Place to Leave From",
        "A Place to Work",
    ]
    assert [c.affiliation for c in conversation.comments] == [
        "Historian of ports, University of Porto",
        "Union organiser, Dockworkers' Guild",
    ]
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Cargo has moved") and "Mei Tanaka" not in intro
    assert first_sentence(conversation.comments[0]) == "Harbors were built for departures."
    assert first_sentence(conversation.comments[1]) == (
        "The harbor is a workplace before it is a view."
    )
    ana = " ".join(plain_text(p) for p in conversation.comments[0].paragraphs)
    assert ana.count("Every quay in Porto") == 1  # the pull quote is not said twice
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    for stray in ("By Ana", "is a historian", "Port records", "[2]", "departures.1"):
        assert stray not in everything, stray


def test_a_roundtable_with_all_bios_after_the_essays() -> None:
    conversation = read("symposium-bios-after.html")
    assert [c.name for c in conversation.comments] == ["Ingrid Solberg", "Ravi Iyer"]
    assert [c.affiliation for c in conversation.comments] == [
        "Naval architect, Fjord Yards",
        "Professor of energy systems, Lakeside University",
    ]
    assert [c.headline for c in conversation.comments] == ["Batteries Are Ready", "Ports Are Not"]
    last = " ".join(plain_text(p) for p in conversation.comments[-1].paragraphs)
    assert "naval architect" not in last and "Contributors" not in last


def test_footnote_markers_go_but_numbers_in_the_text_stay() -> None:
    from digest.sources.essays import MARKER

    assert MARKER.sub("", "built for departures.1 Every quay") == "built for departures. Every quay"
    assert MARKER.sub("", "a workplace.[2] Cranes") == "a workplace. Cranes"
    for kept in ("1,000 ships", "3.5 years", "in 2024, 12 ports"):
        assert MARKER.sub("", kept) == kept


# --- a site profile in config.yaml: title, date, intro and things to drop -------------


def test_a_site_profile_gives_title_date_intro_and_drops_what_it_names() -> None:
    from digest.config import SiteSelectors

    profile = SiteSelectors(
        host="harbor.example", comment=".post", author=".who", affiliation=".role",
        body=".text", title=".headline", date=".pubdate", intro=".standfirst",
        drop=(".promo",),
    )  # fmt: skip
    settings = Settings(sites=(profile,))
    conversation = read_conversation(
        str(LAYOUTS / "profiled-site.html"), settings=settings, url=URL
    )
    assert conversation.title == "Who Keeps the Harbor Clean?"
    assert str(conversation.date) == "2026-02-14"
    assert plain_text(conversation.intro[0]).startswith("Plastic washes in")
    assert [c.name for c in conversation.comments] == ["Lucía Morales", "Ravi Iyer"]
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    assert "newsletter" not in everything
    assert any("harbor.example" in note for note in conversation.notes)  # inspect says so


def test_the_intro_leaves_out_the_byline_the_credit_and_the_teaser_list_of_names() -> None:
    conversation = read("conversation-teaser.html")
    assert [c.name for c in conversation.comments] == ["Hana Novak", "Omar Haddad"]
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Hydrogen cranes and tugs"), intro
    for stray in ("Lena Marsh", "Jo Lens", "In this conversation", "Hana Novak"):
        assert stray not in intro, stray


def test_we_asked_experts_with_the_authors_as_bold_name_paragraphs() -> None:
    conversation = read("we-asked-experts-paragraphs.html")
    assert [c.name for c in conversation.comments] == ["Mei Tanaka", "Erik Lund"]
    assert [c.affiliation for c in conversation.comments] == [
        "Coastal Engineer, Shoreline Labs",
        "Geographer, Nordic Coast Institute",
    ]
    assert first_sentence(conversation.comments[0]).startswith("A wall designed")
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith("Seawalls protect a town") and "Geographer" not in intro
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    assert "Sam Reader" not in everything and "lost its beach" not in everything


def test_a_chinese_conversation_with_bold_names_and_full_width_colons() -> None:
    conversation = read("chinese-colon-names.html")
    assert str(conversation.date) == "2025-12-01"
    assert [c.name for c in conversation.comments] == ["张伟", "刘洋"]
    assert [c.affiliation for c in conversation.comments] == [
        "东海大学社会学系副教授",
        "城市劳动研究中心主任",
    ]
    assert "平台应该承担哪些责任" in plain_text(conversation.intro[0])
    everything = " ".join(plain_text(p) for c in conversation.comments for p in c.paragraphs)
    assert "骑手太辛苦了" not in everything and "作者为" not in everything


# --- every fixture at once, against the table of what it must read as ------------------

EXPECTED = YAML(typ="safe").load((LAYOUTS / "expected.yaml").read_text(encoding="utf-8"))


def test_the_table_covers_every_layout_fixture() -> None:
    on_disk = {p.name for p in LAYOUTS.iterdir() if p.suffix in {".html", ".txt"}}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_layout_fixture_reads_as_its_table_says(name: str) -> None:
    from digest.errors import SourceError

    expected = EXPECTED[name]
    if "refused" in expected:
        with pytest.raises(SourceError) as refused:
            read(name)
        assert expected["refused"] in str(refused.value)
        return
    conversation = read(name)
    assert conversation.title == expected["title"]
    assert str(conversation.date) == expected["date"]
    intro = " ".join(plain_text(p) for p in conversation.intro)
    assert intro.startswith(expected["intro_begins"]), intro
    assert [[c.name, c.affiliation, first_sentence(c)] for c in conversation.comments] == expected[
        "experts"
    ]
