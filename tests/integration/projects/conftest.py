"""Projects fixtures: workspaces that enabled the plugin, deals won through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.context import PluginContext
from orbit.plugins.jobs import deliver_plugin_events
from tests.conftest import (
    Member,
    enable_plugin,
    plugin_transaction,
    save_plugin_settings,
    sign_up,
)

PLUGIN = "projects"
API = "/api/v1/apps/projects"


async def enable(member: Member, settings: dict[str, object] | None = None) -> None:
    """Enable the plugin from the marketplace, as the workspace's admin would."""
    await enable_plugin(member, PLUGIN, settings)


async def configure(member: Member, settings: dict[str, object]) -> None:
    """Save the plugin's settings for the member's workspace."""
    if settings:
        await save_plugin_settings(member, PLUGIN, settings)


async def deliver(runtime: Runtime) -> None:
    """What the worker does: dispatch committed events, then deliver them to plugins."""
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    while await deliver_plugin_events(runtime.plugins):
        pass


def plugin_context(runtime: Runtime, member: Member) -> AbstractAsyncContextManager[PluginContext]:
    """The plugin's context for the member's workspace, in one transaction (committed)."""
    return plugin_transaction(runtime, member, PLUGIN)


async def win_deal(member: Member, title: str = "Website", amount: str = "12000.00") -> str:
    """A deal with a contact, moved to the Won stage through the API; its id."""
    contact = await member.client.post(
        "/api/v1/contacts", json={"first_name": "Cleo", "last_name": "Client"}
    )
    assert contact.status_code == 201, contact.text
    deal = await member.client.post(
        "/api/v1/deals",
        json={
            "title": title,
            "amount": amount,
            "currency": "EUR",
            "contact_ids": [contact.json()["id"]],
        },
    )
    assert deal.status_code == 201, deal.text
    pipelines = (await member.client.get("/api/v1/pipelines")).json()
    pipeline = pipelines[0] if isinstance(pipelines, list) else pipelines["items"][0]
    won = next(s for s in pipeline["stages"] if s["kind"] == "won")
    moved = await member.client.post(
        f"/api/v1/deals/{deal.json()['id']}/move", json={"stage_id": won["id"]}
    )
    assert moved.status_code == 200, moved.text
    deal_id: str = deal.json()["id"]
    return deal_id


async def new_project(member: Member, **fields: Any) -> dict[str, Any]:
    """A project made by hand through the API."""
    body = {"name": "Hand made", "start_date": "2026-11-23", "hourly_rate": "100.00"} | fields
    response = await member.client.post(f"{API}/projects", json=body)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def new_task(member: Member, project_id: str, **fields: Any) -> dict[str, Any]:
    """A task made through the API."""
    response = await member.client.post(
        f"{API}/projects/{project_id}/tasks", json={"title": "Task"} | fields
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


@pytest.fixture
async def manager(app: object) -> AsyncIterator[Member]:
    """A workspace whose owner enabled Projects."""
    member = await sign_up(app, "Delivery Co")
    await enable(member)
    yield member
    await member.client.aclose()


@pytest.fixture
async def outsider(app: object) -> AsyncIterator[Member]:
    """A second workspace that also enabled Projects: it must see none of the first's."""
    member = await sign_up(app, "Other Co")
    await enable(member)
    yield member
    await member.client.aclose()


Deliver = Callable[[], Awaitable[None]]
