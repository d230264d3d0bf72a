"""Email marketing fixtures: workspaces that enabled the plugin, a local SMTP sink."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Member, sign_up

PLUGIN = "email_marketing"
SCOPES = ["contacts:read"]


async def enable(member: Member, settings: dict[str, object] | None = None) -> None:
    """Enable the plugin from the marketplace, as the workspace's admin would."""
    listed = (await member.client.get(f"/api/v1/marketplace/{PLUGIN}")).json()
    response = await member.client.post(
        f"/api/v1/marketplace/{PLUGIN}/enable", json={"scopes": listed["scopes"]}
    )
    assert response.status_code == 201, response.text
    if settings:
        saved = await member.client.put(f"/api/v1/marketplace/{PLUGIN}/settings", json=settings)
        assert saved.status_code == 200, saved.text


@pytest.fixture
async def marketer(app: object) -> AsyncIterator[Member]:
    """A workspace whose admin enabled email marketing."""
    member = await sign_up(app, "Marketing Co")
    await enable(member)
    yield member
    await member.client.aclose()


@pytest.fixture
async def outsider(app: object) -> AsyncIterator[Member]:
    """A second workspace that also enabled email marketing: it must see none of the first's."""
    member = await sign_up(app, "Other Co")
    await enable(member)
    yield member
    await member.client.aclose()
