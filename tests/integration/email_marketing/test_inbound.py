"""Bounces coming in: a real SMTP receiver, Amazon SNS/SES and signed JSON webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import imaplib
import json
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing import inbound
from orbit.plugins.builtin.email_marketing.bounces import return_path
from orbit.plugins.builtin.email_marketing.suppression import Reason, suppressed
from tests.conftest import Member, make_client

from .conftest import configure, free_port, run_send_job
from .deliverability import acting, seed_messages

DSN = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {verp}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{report_id}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<{email}>: host mx.example.net said: 550 5.1.1 User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {email}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B--
"""
OUT_OF_OFFICE = """\
From: Someone <someone@example.net>
To: {verp}
Subject: Automatic reply: Spring offers
Auto-Submitted: auto-replied

I am away until Monday.
"""


def _spooled(spool: Path) -> list[str]:
    return sorted(path.suffix.lstrip(".") for path in spool.iterdir())


def _send_null_sender(port: int, to: str, body: bytes) -> None:
    """As a mail server sends a bounce: MAIL FROM:<> (aiosmtplib insists on a sender)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("", [to], body)


async def test_the_smtp_receiver_takes_a_dsn_and_its_workspace_suppresses_the_address(
    runtime: Runtime, marketer: Member, outsider: Member, tmp_path: Path
) -> None:
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["gone@example.net"])
        verp = await return_path(ctx, message_id)
    port = free_port()
    server = await inbound.start_receiver("127.0.0.1", port, tmp_path)
    try:
        for body in (
            DSN.format(verp=verp, email="gone@example.net", report_id="smtp-1"),
            OUT_OF_OFFICE.format(verp=verp),
        ):
            await asyncio.to_thread(_send_null_sender, port, verp, body.encode())
    finally:
        server.close()
        await server.wait_closed()
    # The reply was accepted and dropped; the report waits in the spool.
    assert _spooled(tmp_path) == ["eml", "json"]
    async with acting(runtime, outsider) as other:
        assert await inbound.drain_spool(other, tmp_path) == []
        assert await suppressed(other, ["gone@example.net"]) == set()
    assert _spooled(tmp_path) == ["eml", "json"]  # not theirs: left for its workspace
    async with acting(runtime, marketer) as ctx:
        [outcome] = await inbound.drain_spool(ctx, tmp_path)
        assert (outcome.message_id, outcome.suppressed) == (message_id, Reason.BOUNCE_HARD)
        assert await suppressed(ctx, ["gone@example.net"]) == {"gone@example.net"}
    assert _spooled(tmp_path) == []


def _certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"


def _signed(key: rsa.RSAPrivateKey, message: dict[str, str]) -> dict[str, str]:
    fields = inbound._SNS_FIELDS[message["Type"]]
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return {
        **message,
        "SignatureVersion": "1",
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


@pytest.fixture
def amazon(monkeypatch: pytest.MonkeyPatch) -> tuple[rsa.RSAPrivateKey, list[str]]:
    """Amazon's side, which tests cannot reach: its signing certificate and what was fetched."""
    key, pem = _certificate()
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"

    monkeypatch.setattr(inbound, "fetch_url", fetch)
    monkeypatch.setattr(inbound, "_CERTIFICATES", {})
    return key, fetched


async def test_ses_notifications_through_sns_are_verified_then_recorded(
    app: object,
    runtime: Runtime,
    marketer: Member,
    amazon: tuple[rsa.RSAPrivateKey, list[str]],
) -> None:
    key, fetched = amazon
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["closed@example.net"])
        verp = await return_path(ctx, message_id)
        url = inbound.webhook_urls(ctx)["ses"]
    path = url[url.index("/p/") :]
    notification = {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": "0102019360a1d4e5-test",
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": "closed@example.net", "status": "5.1.1", "action": "failed"}
            ],
        },
        "mail": {"source": verp, "destination": ["closed@example.net"], "messageId": "ses-1"},
    }
    message = {
        "Type": "Notification",
        "MessageId": "1b8f2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
        "Message": json.dumps(notification),
        "Timestamp": "2026-11-24T09:16:10.512Z",
    }
    async with make_client(app) as sns:
        # A notification altered after signing is refused, and records nothing.
        forged = _signed(key, message) | {"Message": json.dumps(notification).replace("5.1", "4.2")}
        refused = await sns.post(path, json=forged)
        assert refused.status_code == 403, refused.text
        elsewhere = _signed(key, message) | {"SigningCertURL": "https://evil.example.com/c.pem"}
        assert (await sns.post(path, json=elsewhere)).status_code == 403
        async with acting(runtime, marketer) as ctx:
            assert await suppressed(ctx, ["closed@example.net"]) == set()

        confirmation = _signed(
            key,
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": "c0n-f1rm",
                "Token": "2336412f37fb687f5d51e6e2425",
                "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
                "Message": "You have chosen to subscribe to the topic.",
                "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
                "Timestamp": "2026-11-24T09:00:00.000Z",
            },
        )
        confirmed = await sns.post(path, json=confirmation)
        assert confirmed.json() == {"confirmed": True}
        assert fetched[-1] == "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"

        accepted = await sns.post(path, json=_signed(key, message))
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"recorded": 1}
        again = await sns.post(path, json=_signed(key, message))  # SNS delivers at least once
        assert again.json() == {"recorded": 1}
    async with acting(runtime, marketer) as ctx:
        assert await suppressed(ctx, ["closed@example.net"]) == {"closed@example.net"}
        assert await ctx.db.fetchval("SELECT count(*) FROM email_marketing_bounces") == 1


def _sign(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "X-Orbit-Timestamp": timestamp,
        "X-Orbit-Signature": f"sha256={digest.hexdigest()}",
        "Content-Type": "application/json",
    }


async def test_the_signed_json_webhook_refuses_a_wrong_signature(
    app: object, runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    await configure(marketer, {"webhook_secret": "marketer-secret"})
    await configure(outsider, {"webhook_secret": "outsider-secret"})
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["spam-clicker@example.com"])
        verp = await return_path(ctx, message_id)
        url = inbound.webhook_urls(ctx)["hook"]
    async with acting(runtime, outsider) as other:
        other_url = inbound.webhook_urls(other)["hook"]
    body = json.dumps(
        {"events": [{"type": "complaint", "return_path": verp, "id": "evt-1"}]}
    ).encode()
    path, other_path = url[url.index("/p/") :], other_url[other_url.index("/p/") :]
    async with make_client(app) as provider:
        for headers in (
            _sign("wrong-secret", body),
            _sign("marketer-secret", body, at=int(time.time()) - 3600),  # replayed
            _sign("marketer-secret", body + b" "),
            {"Content-Type": "application/json"},
        ):
            refused = await provider.post(path, content=body, headers=headers)
            assert refused.status_code == 403, refused.text
        async with acting(runtime, marketer) as ctx:
            assert await suppressed(ctx, ["spam-clicker@example.com"]) == set()

        # Workspace A's ref posted to workspace B's webhook, correctly signed by B: nothing.
        foreign = await provider.post(
            other_path, content=body, headers=_sign("outsider-secret", body)
        )
        assert foreign.json() == {"recorded": 0}
        async with acting(runtime, outsider) as other:
            await seed_messages(other, ["spam-clicker@example.com"])
            assert await suppressed(other, ["spam-clicker@example.com"]) == set()

        accepted = await provider.post(path, content=body, headers=_sign("marketer-secret", body))
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"recorded": 1}
        bad = json.dumps({"type": "bounce", "bounce_type": "sideways"}).encode()
        invalid = await provider.post(path, content=bad, headers=_sign("marketer-secret", bad))
        assert invalid.status_code == 400
        assert "bounce_type" in invalid.text
    async with acting(runtime, marketer) as ctx:
        assert await suppressed(ctx, ["spam-clicker@example.com"]) == {"spam-clicker@example.com"}
        reasons = await ctx.db.fetch("SELECT reason FROM email_marketing_suppressions")
        assert [r["reason"] for r in reasons] == ["complaint"]


async def test_the_receiver_job_needs_no_configuration(runtime: Runtime, marketer: Member) -> None:
    async with acting(runtime, marketer) as ctx:
        await inbound.receiver_job(ctx)  # no ORBIT_BOUNCE_SMTP, no spool: nothing to do
        assert await inbound.read_mailbox(ctx) == []  # no mailbox configured
    assert UUID(marketer.workspace_id)


@pytest.fixture
def mailbox() -> Iterator[int]:
    """A real IMAP server (pymap, in memory) on a free port: user ``bounces``, password ``pw``."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "pymap"), "--host", "127.0.0.1", "--port", str(port),
         "dict", "--demo-data", "--demo-user", "bounces", "--demo-password", "pw"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _imap(port: int) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login("bounces", "pw")
    client.select("INBOX")
    return client


def _deliver_to_mailbox(port: int, raw: bytes) -> int:
    client = _imap(port)
    try:
        client.append("INBOX", None, None, raw)
        _status, data = client.uid("SEARCH", "ALL")
        return len(data[0].split())
    finally:
        client.logout()


def _left_in_mailbox(port: int) -> int:
    client = _imap(port)
    try:
        _status, data = client.uid("SEARCH", "ALL")
        return len((data[0] or b"").split())
    finally:
        client.logout()


async def test_the_bounce_mailbox_is_read_recorded_and_emptied(
    runtime: Runtime, marketer: Member, outsider: Member, mailbox: int
) -> None:
    await configure(
        marketer,
        {
            "bounce_mailbox_url": f"imap://bounces@127.0.0.1:{mailbox}/INBOX",
            "bounce_mailbox_password": "pw",
        },
    )
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["moved-away@example.org"])
        verp = await return_path(ctx, message_id)
    raw = DSN.format(verp=verp, email="moved-away@example.org", report_id="imap-1")
    # The mailbox also holds the server's demo messages: read, not reports, deleted too.
    held = await asyncio.to_thread(_deliver_to_mailbox, mailbox, raw.replace("\n", "\r\n").encode())
    assert held > 1
    async with acting(runtime, outsider) as other:
        assert await inbound.read_mailbox(other) == []  # no mailbox of its own
    async with acting(runtime, marketer) as ctx:
        [outcome] = await inbound.read_mailbox(ctx)
        assert (outcome.message_id, outcome.suppressed) == (message_id, Reason.BOUNCE_HARD)
    assert await asyncio.to_thread(_left_in_mailbox, mailbox) == 0
    async with acting(runtime, outsider) as other:
        assert await suppressed(other, ["moved-away@example.org"]) == set()


async def test_an_unreadable_mailbox_is_logged_not_a_plugin_failure(
    runtime: Runtime, marketer: Member, caplog: pytest.LogCaptureFixture
) -> None:
    await configure(
        marketer,
        {"bounce_mailbox_url": f"imap://nobody@127.0.0.1:{free_port()}/INBOX"},
    )
    async with acting(runtime, marketer) as ctx:
        with pytest.raises(ConnectionRefusedError):
            await inbound.read_mailbox(ctx)
        await inbound.mailbox_job(ctx)  # the job itself does not fail
    assert "bounce mailbox" in caplog.text


async def test_the_worker_job_starts_the_receiver_when_configured(
    runtime: Runtime,
    marketer: Member,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    where = f"127.0.0.1:{port}"
    monkeypatch.setenv("ORBIT_BOUNCE_SMTP", where)
    monkeypatch.setenv("ORBIT_BOUNCE_SPOOL", str(tmp_path))
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["left-company@example.com"])
        verp = await return_path(ctx, message_id)
    try:
        await run_send_job(runtime)  # the worker's round of the plugin's jobs
        raw = DSN.format(verp=verp, email="left-company@example.com", report_id="job-1")
        await asyncio.to_thread(_send_null_sender, port, verp, raw.encode())
        await run_send_job(runtime)
        async with acting(runtime, marketer) as ctx:
            assert await suppressed(ctx, ["left-company@example.com"]) == {
                "left-company@example.com"
            }
        assert _spooled(tmp_path) == []
    finally:
        server = inbound._RECEIVER.pop(where, None)
        if server is not None:
            server.close()
            await server.wait_closed()
