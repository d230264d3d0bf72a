from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orbit.platform.search.normalize import fold, like_pattern, search_document


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


def test_fullwidth_forms_fold_to_ascii() -> None:
    assert fold("ＡＢＣ１２３") == "abc123"


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_search_document_skips_missing_parts() -> None:
    assert search_document("Ana", None, "ANA@Example.com", "") == "ana ana@example.com"


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)
