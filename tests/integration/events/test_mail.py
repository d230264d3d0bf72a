"""Reminder emails go through the outbox to a real (local) SMTP server."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from orbit.platform.crm.tasks import fire_due_reminders
from orbit.platform.db.servers import Endpoints
from orbit.platform.events.mail import SmtpServer, send_due_emails
from orbit.platform.runtime import Runtime
from tests.conftest import Member, make_reminder_due


class Inbox:
    """An SMTP handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpServer]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpServer.from_url(f"smtp://127.0.0.1:{port}", "Orbit <no-reply@example.com>")
    finally:
        controller.stop()


async def _due_reminder(endpoints: Endpoints, member: Member, title: str) -> str:
    task = await member.client.post(
        "/api/v1/tasks",
        json={
            "title": title,
            "due_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
            "remind_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    assert task.status_code == 201, task.text
    await make_reminder_due(endpoints, task.json()["id"])
    task_id: str = task.json()["id"]
    return task_id


async def test_a_due_reminder_is_emailed_once_to_the_assignee(
    runtime: Runtime,
    endpoints: Endpoints,
    alice: Member,
    bob: Member,
    smtp: tuple[Inbox, SmtpServer],
) -> None:
    inbox, server = smtp
    await _due_reminder(endpoints, alice, "Send the olive oil quote")
    assert await fire_due_reminders(runtime.db, public_url="https://orbit.example") >= 1
    # Other tests' workspaces may have reminders queued too; they are sent alongside.
    assert await send_due_emails(runtime.db, server) >= 1
    assert await send_due_emails(runtime.db, server) == 0
    [raw] = [content for recipients, content in inbox.messages if recipients == [alice.email]]
    message = message_from_bytes(raw)
    assert message["Subject"] == "Reminder: Send the olive oil quote"
    assert f"https://orbit.example/t/{alice.slug}/tasks" in message.get_payload()
    async with runtime.db.transaction(uuid.UUID(bob.workspace_id)):
        assert await runtime.db.fetchval("SELECT count(*) FROM outbox_emails") == 0


async def test_an_unreachable_server_keeps_the_email_for_a_retry(
    runtime: Runtime, endpoints: Endpoints, alice: Member
) -> None:
    await _due_reminder(endpoints, alice, "Call back")
    await fire_due_reminders(runtime.db)
    nowhere = SmtpServer.from_url(f"smtp://127.0.0.1:{_free_port()}", "Orbit <o@example.com>")
    assert await send_due_emails(runtime.db, nowhere) == 0
    async with runtime.db.transaction(uuid.UUID(alice.workspace_id)):
        row = await runtime.db.fetchrow(
            "SELECT attempts, last_error, sent_at, failed_at, next_attempt_at > now() AS later "
            "FROM outbox_emails"
        )
    assert row is not None
    assert row["attempts"] == 1
    assert row["last_error"]
    assert row["sent_at"] is None
    assert row["failed_at"] is None
    assert row["later"]


def test_smtp_urls_are_parsed_and_checked() -> None:
    server = SmtpServer.from_url("smtps://ann%40x:p%3Ass@mail.example:2465", "Orbit <o@x>")
    assert (server.host, server.port, server.username, server.password, server.implicit_tls) == (
        "mail.example",
        2465,
        "ann@x",
        "p:ss",
        True,
    )
    with pytest.raises(ValueError, match="smtp://host:587"):
        SmtpServer.from_url("http://mail.example", "Orbit <o@x>")
