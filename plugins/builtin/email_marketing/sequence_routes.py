"""Sequences over HTTP: the REST API under ``/api/v1/apps/email_marketing/sequences``.

Create a sequence with its steps (a draft), change it, activate or pause it, enrol
contacts by hand, list its enrolments with the step each is on and what each step did,
and mark that a contact replied (they leave every sequence).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orbit.plugins.api import PluginContext, get, post, put
from orbit.plugins.builtin.email_marketing import sequences
from orbit.plugins.builtin.email_marketing.errors import Problems, invalid


@get("/sequences")
async def list_sequences(plugin: PluginContext) -> dict[str, Any]:
    """The workspace's sequences with their steps and enrolment counts."""
    return {"items": await sequences.all_sequences(plugin)}


@post("/sequences")
async def create_sequence(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """Create a draft sequence with its trigger and steps."""
    return await sequences.create(plugin, data)


@get("/sequences/{sequence_id:uuid}")
async def get_sequence(plugin: PluginContext, sequence_id: UUID) -> dict[str, Any]:
    """One sequence."""
    return await sequences.get(plugin, sequence_id)


@put("/sequences/{sequence_id:uuid}")
async def update_sequence(
    plugin: PluginContext, sequence_id: UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a sequence (its steps only while nobody is in it)."""
    return await sequences.update(plugin, sequence_id, data)


@post("/sequences/{sequence_id:uuid}/activate", status_code=200)
async def activate(plugin: PluginContext, sequence_id: UUID) -> dict[str, Any]:
    """Contacts enter on the trigger and steps run."""
    return await sequences.set_status(plugin, sequence_id, "active")


@post("/sequences/{sequence_id:uuid}/pause", status_code=200)
async def pause(plugin: PluginContext, sequence_id: UUID) -> dict[str, Any]:
    """Nobody enters and every step waits until it is active again."""
    return await sequences.set_status(plugin, sequence_id, "paused")


@get("/sequences/{sequence_id:uuid}/enrolments")
async def list_enrolments(
    plugin: PluginContext, sequence_id: UUID, status: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """The sequence's enrolments, newest first: their state and the steps they did."""
    return {"items": await sequences.enrolments(plugin, sequence_id, status, limit)}


@post("/sequences/{sequence_id:uuid}/enrolments", status_code=200)
async def enrol(plugin: PluginContext, sequence_id: UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Enrol contacts by hand (each contact enters a sequence once)."""
    return await sequences.enrol_contacts(plugin, sequence_id, data.get("contact_ids"))


@post("/sequences/replies", status_code=200)
async def replied(plugin: PluginContext, data: dict[str, Any]) -> dict[str, Any]:
    """A contact replied (``contact_id`` or ``email``): they leave every sequence."""
    problems = Problems()
    contact_id: UUID | None = None
    if data.get("contact_id"):
        try:
            contact_id = UUID(str(data["contact_id"]))
        except ValueError:
            problems.add("contact_id", f"{data['contact_id']!r} is not an id")
    email = data.get("email")
    if contact_id is None and not (isinstance(email, str) and "@" in email):
        problems.add("contact_id", "give the contact's id or their email address")
    problems.raise_any()
    if contact_id is not None and await plugin.contacts.get(contact_id) is None:
        raise invalid({"contact_id": f"contact {contact_id} not found in this workspace"})
    ended = await sequences.record_reply(plugin, contact_id=contact_id, email=email)
    return {"exited": ended}


def routes() -> list[Any]:
    """Every sequence API route handler."""
    return [
        list_sequences, create_sequence, get_sequence, update_sequence, activate, pause,
        list_enrolments, enrol, replied,
    ]  # fmt: skip
