"""Names and ranges ``orbit plugin new`` derives from what the author typed."""

from __future__ import annotations

import pytest

from orbit.plugins.sdk import ScaffoldError, orbit_range, plugin_id_for


@pytest.mark.parametrize(
    ("typed", "plugin_id"),
    [("lead-scoring", "lead_scoring"), ("Lead Scoring", "lead_scoring"), ("crm2", "crm2")],
)
def test_names_become_plugin_ids(typed: str, plugin_id: str) -> None:
    assert plugin_id_for(typed) == plugin_id


@pytest.mark.parametrize("typed", ["2fast", "x", "naïve", "a/b", ""])
def test_names_that_cannot_be_ids_are_refused(typed: str) -> None:
    with pytest.raises(ScaffoldError, match="cannot be a plugin id"):
        plugin_id_for(typed)


def test_a_new_plugin_accepts_this_minor_before_1_0_and_this_major_after() -> None:
    assert orbit_range("0.1.0") == ">=0.1,<0.2"
    assert orbit_range("1.4.2") == ">=1.4,<2"
