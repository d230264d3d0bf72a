from __future__ import annotations

from orbit.platform.search.highlight import highlight, snippet
from orbit.platform.search.normalize import fulltext_query, fuzzy_allowed


def test_highlight_marks_folded_matches_in_the_original_text() -> None:
    assert highlight("Γιώργος Παπαδόπουλος", "παπαδοπουλοσ") == (
        "Γιώργος <mark>Παπαδόπουλος</mark>"
    )
    assert highlight("Maria Papadopoulou", "PAPADÓPOUL") == "Maria <mark>Papadopoul</mark>ou"
    assert highlight("Straße 5", "strasse") == "<mark>Straße</mark> 5"
    assert highlight("王伟明", "伟") == "王<mark>伟</mark>明"


def test_highlight_escapes_everything_but_its_marks() -> None:
    assert highlight("<b>Ann</b> & co", "ann") == "&lt;b&gt;<mark>Ann</mark>&lt;/b&gt; &amp; co"
    assert highlight("a<b", "<") == "a<mark>&lt;</mark>b"
    assert highlight(None, "x") == ""


def test_highlight_marks_similar_words_when_the_query_matched_by_typo() -> None:
    assert highlight("Maria Papadopoulou", "papadopolou") == "Maria <mark>Papadopoulou</mark>"


def test_snippet_keeps_the_match_in_view() -> None:
    text = "x" * 300 + " the needle " + "y" * 300
    piece = snippet(text, "needle", width=60)
    assert "needle" in piece
    assert piece.startswith("…")
    assert piece.endswith("…")


def test_fulltext_query_is_always_valid_tsquery_syntax() -> None:
    assert fulltext_query("Café  O'Brien!") == "'cafe':* & 'o':* & 'brien':*"
    assert fulltext_query("&|!()") is None


def test_short_queries_are_not_fuzzy() -> None:
    assert not fuzzy_allowed("王伟")
    assert not fuzzy_allowed("ana")
    assert fuzzy_allowed("dela")
    assert not fuzzy_allowed("james.rossi.333333")  # identifiers: substrings only
    assert not fuzzy_allowed("ana@example")
    assert not fuzzy_allowed("+30 210 555")
