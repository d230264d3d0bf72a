"""Lead scoring against a real Orbit database, through orbit.plugins.testing."""

from __future__ import annotations

from uuid import UUID

import pytest

from orbit.plugins.api import Fragment, ScopeError
from orbit.plugins.testing import PluginHarness, create_tenant
from orbit_lead_scoring import MANIFEST
from orbit_lead_scoring.scoring import profile_points


def test_the_profile_counts_filled_fields_only() -> None:
    assert profile_points({}) == 0
    assert profile_points({"email": "a@b.co", "phone": "  ", "company_id": None}) == 10
    assert profile_points({"email": "a@b.co", "phone": "+1 555", "company_name": "Acme"}) == 20
    assert profile_points({"company_id": "0190e0a0-0000-7000-8000-000000000000"}) == 5


async def _score(harness: PluginHarness, contact_id: UUID | str) -> int:
    score = await harness.fetchval(
        "SELECT profile_points + event_points FROM lead_scoring_scores WHERE contact_id = $1",
        UUID(str(contact_id)),
    )
    return int(score or 0)


async def test_contacts_are_scored_from_their_events(orbit_harness: PluginHarness) -> None:
    contact = await orbit_harness.create_contact(
        first_name="Ada", last_name="Lovelace", email="ada@example.com", company_name="Engines"
    )
    await orbit_harness.log_activity(contact["id"], "call", subject="Intro call")
    await orbit_harness.log_activity(contact["id"], "note", subject="Likes engines")
    delivered = await orbit_harness.deliver_outbox()
    assert [e.type for e in delivered] == [
        "contact.created",
        "activity.created",
        "activity.created",
    ]
    assert await _score(orbit_harness, contact["id"]) == 15 + 2 * 5
    await orbit_harness.fire(
        "deal.won", {"id": str(UUID(int=7)), "title": "Big one", "contact_ids": [contact["id"]]}
    )
    assert await _score(orbit_harness, contact["id"]) == 25 + 25


async def test_a_redelivered_event_scores_once(orbit_harness: PluginHarness) -> None:
    contact = await orbit_harness.create_contact(first_name="Grace")
    won = {"id": str(UUID(int=8)), "title": "Deal", "contact_ids": [contact["id"]]}
    event = await orbit_harness.fire("deal.won", won)
    await orbit_harness.fire("deal.won", won, event_id=event.id)
    assert await _score(orbit_harness, contact["id"]) == 25


async def test_a_late_older_update_does_not_undo_a_newer_profile(
    orbit_harness: PluginHarness,
) -> None:
    contact = await orbit_harness.create_contact(first_name="Alan", email="alan@example.com")
    newer = contact | {"phone": "+44 20 7946 0000", "updated_at": "2030-01-01T00:00:00+00:00"}
    await orbit_harness.fire("contact.updated", newer)
    await orbit_harness.fire("contact.created", contact)  # arrives late
    assert await _score(orbit_harness, contact["id"]) == 15


async def test_settings_change_the_points_and_the_hot_mark(orbit_harness: PluginHarness) -> None:
    orbit_harness.settings = {"points_per_interaction": 30, "hot_threshold": 40}
    contact = await orbit_harness.create_contact(first_name="Hot", email="hot@example.com")
    await orbit_harness.log_activity(contact["id"], "meeting")
    await orbit_harness.deliver_outbox()
    panel = await orbit_harness.call(
        "orbit_ui_slot", slot="contact.sidebar", subject_id=UUID(contact["id"])
    )
    assert isinstance(panel, Fragment)
    assert 'data-score="40"' in panel.html
    assert "lead-score-hot" in panel.html
    problems = await orbit_harness.call(
        "orbit_validate_settings", settings={"points_per_interaction": 9, "points_per_won_deal": 3}
    )
    assert problems == ["Points per won deal: must be at least the points per interaction"]


async def test_the_panel_scores_contacts_made_before_the_plugin(
    orbit_harness: PluginHarness,
) -> None:
    contact = await orbit_harness.create_contact(first_name="Old", email="old@example.com")
    panel = await orbit_harness.call(
        "orbit_ui_slot", slot="contact.sidebar", subject_id=UUID(contact["id"])
    )
    assert 'data-score="10"' in panel.html
    assert "lead-score-hot" not in panel.html
    assert await orbit_harness.call("orbit_ui_slot", slot="deal.sidebar", subject_id=None) is None


async def test_without_contacts_read_the_plugin_is_refused(orbit_harness: PluginHarness) -> None:
    orbit_harness.scopes = frozenset()
    contact = await orbit_harness.create_contact(first_name="Private")
    with pytest.raises(ScopeError, match="contacts:read"):
        await orbit_harness.call(
            "orbit_ui_slot", slot="contact.sidebar", subject_id=UUID(contact["id"])
        )


async def test_export_erase_and_delete_cover_only_that_contact(
    orbit_harness: PluginHarness,
) -> None:
    kept = await orbit_harness.create_contact(first_name="Kept")
    gone = await orbit_harness.create_contact(first_name="Gone")
    for contact in (kept, gone):
        await orbit_harness.fire(
            "deal.won", {"id": str(UUID(int=9)), "title": "D", "contact_ids": [contact["id"]]}
        )
    exported = await orbit_harness.call("orbit_contact_export", contact_id=UUID(gone["id"]))
    assert exported["event_points"] == 25
    assert exported["points"][0]["reason"] == "won deal: D"
    await orbit_harness.call("orbit_contact_erase", contact_id=UUID(gone["id"]))
    assert await orbit_harness.call("orbit_contact_export", contact_id=UUID(gone["id"])) is None
    assert await _score(orbit_harness, kept["id"]) == 25
    await orbit_harness.fire("contact.deleted", {"id": kept["id"]})
    assert await orbit_harness.fetchval("SELECT count(*) FROM lead_scoring_points") == 0


async def test_another_workspace_sees_none_of_the_scores(orbit_harness: PluginHarness) -> None:
    contact = await orbit_harness.create_contact(first_name="Mine", email="mine@example.com")
    await orbit_harness.deliver_outbox()
    assert await _score(orbit_harness, contact["id"]) == 10
    other = PluginHarness(
        orbit_harness.plugin, orbit_harness.db, await create_tenant(orbit_harness.db)
    )
    assert await other.fetchval("SELECT count(*) FROM lead_scoring_scores") == 0
    assert await other.call("orbit_contact_export", contact_id=UUID(contact["id"])) is None
    # Writing a row for the first workspace from the second is refused by the database.
    with pytest.raises(Exception, match="row-level security"):
        async with other.context() as ctx:
            await ctx.db.execute(
                "INSERT INTO lead_scoring_scores (tenant_id, contact_id) VALUES ($1, $2)",
                orbit_harness.tenant.id,
                UUID(contact["id"]),
            )
    assert await _score(orbit_harness, contact["id"]) == 10
    assert set(MANIFEST.tables) == {"lead_scoring_scores", "lead_scoring_points"}
