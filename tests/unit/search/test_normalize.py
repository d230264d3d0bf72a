from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orbit.platform.search.normalize import (
    contact_search_document,
    fold,
    like_pattern,
    search_document,
)


def test_greek_final_sigma_and_accents_fold_to_the_same_text() -> None:
    assert fold("Παπαδόπουλος") == fold("ΠΑΠΑΔΟΠΟΥΛΟΣ") == fold("παπαδοπουλοσ")


def test_latin_accents_and_case_do_not_matter() -> None:
    assert fold("José MÜLLER") == "jose muller"
    assert fold("Straße") == "strasse"


def test_cyrillic_folds_case_and_keeps_letters() -> None:
    assert fold("ИВАНОВА") == fold("Иванова") == "иванова"
    assert fold("Ёлкин") == fold("елкин")


def test_chinese_and_tagalog_names_survive_folding() -> None:
    assert fold("王伟") == "王伟"
    assert fold("  dela   Cruz ") == "dela cruz"


def test_letters_without_a_decomposition_fold_to_their_base_letters() -> None:
    assert fold("Łódź") == fold("lodz") == "lodz"
    assert fold("Søren ØSTERGÅRD") == "soren ostergard"
    assert fold("Đorđe") == "dorde"
    assert fold("Ærø") == "aero"
    assert fold("Œuvre") == "oeuvre"
    assert fold("Işık") == fold("ISIK") == "isik"
    assert fold("Þórður") == "thordur"
    assert fold("Ħamrun") == "hamrun"


def test_letters_with_stroke_and_an_accent_on_top_fold_too() -> None:
    assert fold("Ǿ") == "o"
    assert fold("Ǽ") == "ae"


def test_catalan_geminate_l_folds_with_or_without_its_middle_dot() -> None:
    assert fold("Col·lecció") == fold("COĿLECCIÓ") == fold("coŀlecció") == "colleccio"


def test_a_middle_dot_between_other_letters_is_kept() -> None:
    assert fold("Α·Β") == "α·β"


def test_query_for_a_stroked_letter_name_matches_its_ascii_spelling() -> None:
    assert fold("lodz") in search_document("Jan", "Kowalski", None, "Łódź Trading")


def test_fullwidth_forms_fold_to_ascii() -> None:
    assert fold("ＡＢＣ１２３") == "abc123"


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_search_document_skips_missing_parts() -> None:
    assert search_document("Ana", None, "ANA@Example.com", "") == "ana ana@example.com"


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


# Hypothesis rarely draws these from all of Unicode on its own.
_TRICKY = "ŁłØøĐđÐðÆæŒœıİÞþĦħŦŧĿŀlL·\u0387\u0301\u0308 ßſΣσς"


@given(st.text(alphabet=_TRICKY))
def test_fold_is_idempotent_on_the_translated_letters(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_split_cjk_names_are_also_searchable_joined_either_way() -> None:
    joined = contact_search_document("伟", "王", "wei@example.cn", None)
    assert joined == "伟 王 wei@example.cn 王伟 伟王"
    assert contact_search_document("Wei", "王", None, None) == "wei 王"  # mixed: as written
    assert contact_search_document("Ana", "dela Cruz", None, "ACME") == "ana dela cruz acme"
