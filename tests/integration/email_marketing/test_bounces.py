"""Bounce reports and SMTP refusals matched to a workspace's messages fill its suppression list."""

from __future__ import annotations

from pathlib import Path

from orbit.platform.runtime import Runtime
from orbit.plugins.builtin.email_marketing.bounces import (
    Kind,
    Report,
    parse_report,
    record_report,
    record_smtp_failure,
    return_path,
)
from orbit.plugins.builtin.email_marketing.suppression import Reason, suppressed
from tests.conftest import Member

from .deliverability import acting, seed_messages

CORPUS = Path(__file__).parents[2] / "fixtures" / "email_marketing" / "dsn"
POSTFIX_DSN = """\
Return-Path: <>
From: MAILER-DAEMON@send1.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {verp}
Message-Id: <{report_id}@send1.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<{email}>: host mx.example.net said: {reply}

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; send1.example.org

Final-Recipient: rfc822; {email}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {reply}

--B--
"""


def dsn(verp: str, email: str, status: str, reply: str, report_id: str = "r1") -> bytes:
    return POSTFIX_DSN.format(
        verp=verp, email=email, status=status, reply=reply, report_id=report_id
    ).encode()


async def test_a_hard_bounce_suppresses_its_recipient_once(
    runtime: Runtime, marketer: Member
) -> None:
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["Gone@Example.net"])
        verp = await return_path(ctx, message_id)
        assert verp.startswith(f"b+{message_id.hex}.")
        assert len(verp.partition("@")[0]) <= 64
        report = parse_report(dsn(verp, "gone@example.net", "5.1.1", "550 5.1.1 User unknown"))
        assert report is not None
        [outcome] = await record_report(ctx, report)
        assert (outcome.message_id, outcome.kind, outcome.suppressed) == (
            message_id,
            Kind.HARD,
            Reason.BOUNCE_HARD,
        )
        assert await suppressed(ctx, ["gone@example.net", "GONE@example.NET ", "x@y.z"]) == {
            "gone@example.net",
            "GONE@example.NET ",
        }
        # The same report again (a mailbox read twice) changes nothing.
        [again] = await record_report(ctx, report)
        assert again.duplicate
        assert again.suppressed is None
        row = await ctx.db.fetchrow(
            "SELECT status FROM email_marketing_messages WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            message_id,
        )
        assert row["status"] == "bounced"
        events = await ctx.db.fetch(
            "SELECT kind, reason FROM email_marketing_events WHERE tenant_id = $1 "
            "AND message_id = $2",
            ctx.tenant_id,
            message_id,
        )
        assert [e["kind"] for e in events] == ["bounce"]
        assert events[0]["reason"].startswith("hard 5.1.1: 550 5.1.1 User unknown")


async def test_soft_bounces_suppress_after_the_limit_of_different_messages(
    runtime: Runtime, marketer: Member
) -> None:
    async with acting(runtime, marketer) as ctx:
        ids = await seed_messages(ctx, ["full@example.org"])
        ids += await seed_messages(ctx, ["full@example.org"])
        ids += await seed_messages(ctx, ["full@example.org"])
        outcomes = []
        for number, message_id in enumerate(ids):
            verp = await return_path(ctx, message_id)
            raw = dsn(verp, "full@example.org", "4.2.2", "452 4.2.2 Mailbox full", f"s{number}")
            report = parse_report(raw)
            assert report is not None
            assert report.kind is Kind.SOFT
            outcomes += await record_report(ctx, report)
            # The same message deferred again later is not another soft bounce.
            repeat = parse_report(dsn(verp, "full@example.org", "4.2.2", "452 4.2.2 Full", "x"))
            assert repeat is not None
            outcomes += await record_report(ctx, repeat)
        assert [o.suppressed for o in outcomes] == [
            None,
            None,
            None,
            None,
            Reason.BOUNCE_SOFT,
            None,
        ]


async def test_a_policy_refusal_is_not_a_bad_address(runtime: Runtime, marketer: Member) -> None:
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["blocked@example.com"])
        verp = await return_path(ctx, message_id)
        reply = "554 5.7.1 Client host blocked using zen.spamhaus.org"
        report = parse_report(dsn(verp, "blocked@example.com", "5.7.1", reply))
        assert report is not None
        [outcome] = await record_report(ctx, report)
        assert (outcome.kind, outcome.suppressed) == (Kind.POLICY, None)
        assert await suppressed(ctx, ["blocked@example.com"]) == set()


async def test_smtp_time_refusals_count_like_reports(runtime: Runtime, marketer: Member) -> None:
    async with acting(runtime, marketer) as ctx:
        hard, soft = await seed_messages(ctx, ["nobody@example.com", "later@example.com"])
        outcome = await record_smtp_failure(
            ctx, hard, 550, "5.1.1 <nobody@example.com>: Recipient address rejected"
        )
        assert outcome is not None
        assert (outcome.kind, outcome.suppressed) == (Kind.HARD, Reason.BOUNCE_HARD)
        deferred = await record_smtp_failure(ctx, soft, 421, "4.7.0 Try again later")
        assert deferred is not None
        assert (deferred.kind, deferred.suppressed) == (Kind.SOFT, None)
        # Retried and refused the same way: still one soft bounce for the message.
        again = await record_smtp_failure(ctx, soft, 421, "4.7.0 Try again later")
        assert again is not None
        assert again.duplicate
        assert await suppressed(ctx, ["nobody@example.com", "later@example.com"]) == {
            "nobody@example.com"
        }


async def test_a_ref_of_another_workspace_changes_nothing_here(
    runtime: Runtime, marketer: Member, outsider: Member
) -> None:
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["shared@example.com"])
        verp = await return_path(ctx, message_id)
    raw = dsn(verp, "shared@example.com", "5.1.1", "550 5.1.1 User unknown")
    report = parse_report(raw)
    assert report is not None
    async with acting(runtime, outsider) as other:
        # The outsider has a message to the same address: the report is still not theirs.
        await seed_messages(other, ["shared@example.com"])
        assert await record_report(other, report) == []
        assert await suppressed(other, ["shared@example.com"]) == set()
        assert await other.db.fetchval("SELECT count(*) FROM email_marketing_bounces") == 0
    async with acting(runtime, marketer) as ctx:
        [outcome] = await record_report(ctx, report)
        assert outcome.suppressed is Reason.BOUNCE_HARD
    async with acting(runtime, outsider) as other:
        assert await suppressed(other, ["shared@example.com"]) == set()
        assert await other.db.fetchval("SELECT count(*) FROM email_marketing_suppressions") == 0
        forged = Report(Kind.HARD, "shared@example.com", refs=(f"{message_id.hex}.aaaaaaaaaa",))
        assert await record_report(other, forged) == []


async def test_a_yahoo_complaint_suppresses_for_good_and_counts_on_the_campaign(
    runtime: Runtime, marketer: Member
) -> None:
    sample = CORPUS / "29_arf_yahoo_cfl.eml"
    corpus_ref = "0193a5d0001d7000800000000000001d.46krxu4les"
    async with acting(runtime, marketer) as ctx:
        (message_id,) = await seed_messages(ctx, ["reader@yahoo.example"])
        ref = (await return_path(ctx, message_id)).removeprefix("b+").partition("@")[0]
        # The real report, as Yahoo sends it, about this workspace's message.
        report = parse_report(sample.read_bytes().replace(corpus_ref.encode(), ref.encode()))
        assert report is not None
        assert report.kind is Kind.COMPLAINT
        [outcome] = await record_report(ctx, report)
        # Yahoo redacts the recipient: the address comes from the message itself.
        assert (outcome.email, outcome.suppressed) == ("reader@yahoo.example", Reason.COMPLAINT)
        events = await ctx.db.fetch(
            "SELECT kind FROM email_marketing_events WHERE message_id = $1", message_id
        )
        assert [e["kind"] for e in events] == ["complaint"]
    removed = await marketer.client.delete(
        "/api/v1/apps/email_marketing/suppressions/reader@yahoo.example",
        params={"reason": "complaint"},
    )
    assert removed.status_code == 403
