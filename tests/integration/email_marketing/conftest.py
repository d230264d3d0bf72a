"""Email marketing fixtures: workspaces that enabled the plugin, a local SMTP sink."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from orbit.platform.events.jobs import dispatch_batch
from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import transport
from orbit.plugins.jobs import deliver_plugin_events, run_scheduled_jobs
from tests.conftest import Member, enable_plugin, save_plugin_settings, sign_up

PLUGIN = "email_marketing"
API = f"/api/v1/apps/{PLUGIN}"


@dataclass
class Sink:
    """A local SMTP server that keeps every message it accepts."""

    port: int
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Recipients answered with this code at RCPT time (e.g. 550, 451)."""

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for _, rcpts, message in self.received if address in rcpts]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's handler protocol
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            code, text = self.refuse[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def free_port() -> int:
    """A port nobody listens on (aiosmtpd 1.4's Controller cannot bind port 0 itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A fresh SMTP sink on a free port of 127.0.0.1."""
    found = Sink(port=free_port())
    controller = Controller(found, hostname="127.0.0.1", port=found.port)
    controller.start()
    yield found
    controller.stop()


async def enable(member: Member, settings: dict[str, object] | None = None) -> None:
    """Enable the plugin from the marketplace, as the workspace's admin would."""
    await enable_plugin(member, PLUGIN, settings)


async def configure(member: Member, settings: dict[str, object]) -> None:
    """Save the plugin's settings for the member's workspace."""
    await save_plugin_settings(member, PLUGIN, settings)


async def run_send_job(runtime: Runtime) -> None:
    """One run of the plugins' scheduled jobs now (as the worker does every interval)."""
    keys = [key async for key in runtime.redis.scan_iter(f"orbit:plugin-job:{PLUGIN}:*")]
    if keys:
        await runtime.redis.delete(*keys)
    await run_scheduled_jobs(runtime.plugins)
    await transport.close_connections()


async def deliver_events(runtime: Runtime) -> None:
    """What the worker does with committed domain events: dispatch them, deliver to plugins."""
    while await dispatch_batch(runtime.db, 100, runtime.plugins.registry):
        pass
    while await deliver_plugin_events(runtime.plugins):
        pass


async def contact(member: Member, **fields: Any) -> dict[str, Any]:
    """A contact made through Orbit's own API."""
    response = await member.client.post("/api/v1/contacts", json=fields)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


BLOCKS = [
    {"type": "heading", "text": "Hello {{ contact.first_name }}"},
    {"type": "text", "text": "Our spring offer is here.\n\nSee you soon & thanks!"},
    {"type": "button", "text": "See the offer", "url": "https://shop.example.com/spring"},
    {"type": "image", "src": "https://shop.example.com/a.png", "alt": "Spring",
     "url": "https://shop.example.com/gallery"},
]  # fmt: skip


async def template(member: Member, **more: Any) -> dict[str, Any]:
    """A saved block template."""
    body = {"name": "Spring", "subject": "Spring for {{ contact.first_name }}", "blocks": BLOCKS}
    response = await member.client.post(f"{API}/templates", json={**body, **more})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def list_of(member: Member, contacts: list[dict[str, Any]], name: str = "Newsletter") -> str:
    """A static list holding ``contacts``; its id."""
    made = await member.client.post(f"{API}/lists", json={"name": name})
    assert made.status_code == 201, made.text
    list_id: str = made.json()["id"]
    added = await member.client.post(
        f"{API}/lists/{list_id}/members", json={"contact_ids": [c["id"] for c in contacts]}
    )
    assert added.status_code == 201, added.text
    return list_id


async def campaign(member: Member, template_id: str, kind: str, audience_id: str) -> str:
    """A draft campaign; its id."""
    response = await member.client.post(
        f"{API}/campaigns",
        json={
            "name": "Spring 2027",
            "template_id": template_id,
            "audience_kind": kind,
            "audience_id": audience_id,
            "from_email": "news@shop.example.com",
            "from_name": "Shop",
        },
    )
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


@pytest.fixture
async def marketer(app: object, sink: Sink) -> AsyncIterator[Member]:
    """A workspace whose admin enabled email marketing, sending to the sink."""
    member = await sign_up(app, "Marketing Co")
    await enable(member, {"smtp_url": sink.url, "rate_per_second": 1000,
                          "domain_rate_per_second": 1000})  # fmt: skip
    yield member
    await member.client.aclose()


@pytest.fixture
async def outsider(app: object, sink: Sink) -> AsyncIterator[Member]:
    """A second workspace that also enabled email marketing: it must see none of the first's."""
    member = await sign_up(app, "Other Co")
    await enable(member, {"smtp_url": sink.url})
    yield member
    await member.client.aclose()
