"""The bounce and complaint corpus: real-format reports, each mapped to one message and kind.

Every sample in tests/fixtures/email_marketing/dsn was written in the format its
server sends (Postfix, Exim, Exchange and Office 365, Gmail, Yahoo, qmail, Sendmail,
Lotus Domino, Amazon SES by mail and by SNS, ARF from Yahoo and Microsoft JMRP), with
addresses and hosts anonymised, and refs signed with the corpus's workspace key below.
Out-of-office replies, not-spam and authentication-failure reports and a successful
delivery notice are in it too: they must not count as bounces.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit.plugins.builtin.email_marketing.bounces import (
    Kind,
    Report,
    parse_report,
    parse_ses,
    verify_ref,
)

CORPUS = Path(__file__).parents[2] / "fixtures" / "email_marketing" / "dsn"
KEY = b"orbit-dsn-corpus-key-0123456789ab"
TENANT = UUID("0193a5c2-7d10-7a51-9c3e-5f1b2a3c4d5e")
OTHER_TENANT = UUID("0193a5c2-7d10-7a51-9c3e-000000000002")
HARD, SOFT, POLICY, COMPLAINT = Kind.HARD, Kind.SOFT, Kind.POLICY, Kind.COMPLAINT


def message(number: int) -> UUID:
    """The id of the corpus's message ``number`` (as its refs were signed)."""
    return UUID(f"0193a5d0-{number:04x}-7000-8000-{number:012x}")


# file → (message number, kind, failed recipient as reported); kind None: not a report.
EXPECTED: dict[str, tuple[int, Kind | None, str | None]] = {
    "01_postfix_user_unknown.eml": (1, HARD, "jane.roe@example.net"),
    "02_postfix_mailbox_full_delayed.eml": (2, SOFT, "m.kowalski@example.pl"),
    "03_postfix_expired_timeout.eml": (3, SOFT, "info@example-shop.test"),
    "04_postfix_policy_spamhaus.eml": (4, POLICY, "office@example.co.uk"),
    "05_postfix_domain_not_found.eml": (5, HARD, "sales@exmaple-typo.test"),
    "06_exim_multipart_user_unknown.eml": (6, HARD, "p.dupont@example.fr"),
    "07_exim_plain_text.eml": (7, HARD, "accounts@example.com.au"),
    "08_exim_delay_warning.eml": (8, SOFT, "orders@example.it"),
    "09_exchange_2016_recipient_not_found.eml": (9, HARD, "k.tanaka@corp.example.com"),
    "10_office365_recipient_not_found.eml": (10, HARD, "a.nguyen@contoso-example.com"),
    "11_office365_policy_blocked_ip.eml": (11, POLICY, "d.smith@outlook.com"),
    "12_office365_mailbox_full.eml": (12, SOFT, "l.garcia@fabrikam-example.com"),
    "13_gmail_user_unknown.eml": (13, HARD, "no.such.person.4711@gmail.com"),
    "14_gmail_relay_over_quota.eml": (14, SOFT, "full.box@gmail.com"),
    "15_postfix_gmail_unauthenticated.eml": (15, POLICY, "r.patel@gmail.com"),
    "16_postfix_gmail_rate_limited_delayed.eml": (16, SOFT, "t.mueller@gmail.com"),
    "17_yahoo_plain_text.eml": (17, HARD, "nobody.here.2026@yahoo.com"),
    "18_postfix_yahoo_policy.eml": (18, POLICY, "s.ivanova@yahoo.com"),
    "19_postfix_yahoo_deferred_tss04.eml": (19, SOFT, "w.chen@yahoo.com"),
    "20_qmail_no_mailbox.eml": (20, HARD, "olduser@example-hosting.test"),
    "21_qmail_remote_user_unknown.eml": (21, HARD, "h.berg@example.se"),
    "22_sendmail_user_unknown.eml": (22, HARD, "prof.alvarez@example.edu"),
    "23_sendmail_warning_delayed.eml": (23, SOFT, "lab@example.edu"),
    "24_ses_email_bounce.eml": (24, HARD, "gone.away@example.org.test"),
    "25_ses_sns_bounce_permanent.json": (25, HARD, "closed.account@example.net"),
    "26_ses_sns_bounce_transient_mailbox_full.json": (26, SOFT, "busy.inbox@example.com"),
    "27_ses_sns_complaint.json": (27, COMPLAINT, "annoyed.reader@example.com"),
    "28_ses_event_publishing_bounce_content_rejected.json": (28, POLICY, "filtered@example.org"),
    "29_arf_yahoo_cfl.eml": (29, COMPLAINT, "redacted@yahoo.com"),
    "30_arf_microsoft_jmrp.eml": (30, COMPLAINT, None),
    "31_arf_not_spam.eml": (31, None, None),
    "32_arf_auth_failure_dkim.eml": (32, None, None),
    "33_autoreply_outlook_out_of_office.eml": (33, None, None),
    "34_autoreply_gmail_vacation.eml": (34, None, None),
    "35_autoreply_german_abwesenheit.eml": (35, None, None),
    "36_postfix_success_notice.eml": (36, None, None),
    "37_dsn_without_original_envelope_only.eml": (37, HARD, "subscriber.771@example-telecom.test"),
    "38_domino_quoted_printable_headers.eml": (38, HARD, "j.lindqvist@example-manufacturing.test"),
    "39_postfix_smtputf8_global_dsn.eml": (39, HARD, "王伟@例子.test"),
    "40_google_workspace_account_disabled.eml": (
        40,
        HARD,
        "former.employee@workspace-example.test",
    ),
}
ENVELOPE = {
    # No original attached: only the envelope recipient (the VERP address) names it.
    "37_dsn_without_original_envelope_only.eml": [
        "b+0193a5d0002570008000000000000025.sbxyemp2yh@bounces.example.org"
    ],
}


def read(name: str) -> Report | None:
    path = CORPUS / name
    if path.suffix == ".json":
        notification = json.loads(path.read_text())
        return parse_ses(json.loads(notification["Message"]))
    return parse_report(path.read_bytes(), ENVELOPE.get(name, ()))


def test_the_corpus_is_complete() -> None:
    files = sorted(p.name for p in CORPUS.iterdir() if p.suffix in {".eml", ".json"})
    assert files == sorted(EXPECTED)
    reports = [v for v in EXPECTED.values() if v[1] is not None]
    assert len(reports) >= 30
    assert {kind for _, kind, _ in reports} == set(Kind)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_maps_to_its_message_and_kind(name: str) -> None:
    number, kind, recipient = EXPECTED[name]
    report = read(name)
    if kind is None:
        assert report is None, report
        return
    assert report is not None
    assert report.kind is kind, report
    assert report.recipient == recipient
    verified = {verify_ref(KEY, TENANT, ref) for ref in report.refs} - {None}
    assert verified == {message(number)}, report.refs
    # Another workspace's key verifies none of them.
    assert {verify_ref(KEY, OTHER_TENANT, ref) for ref in report.refs} == {None}


SAMPLES = [(CORPUS / name).read_bytes() for name in sorted(EXPECTED) if name.endswith(".eml")]


@settings(max_examples=150, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    cut=st.integers(min_value=0, max_value=5000),
    junk=st.binary(max_size=200),
    where=st.integers(min_value=0, max_value=5000),
)
def test_damaged_reports_never_raise(sample: bytes, cut: int, junk: bytes, where: int) -> None:
    """Truncated, spliced or garbled reports: read as well as can be, never an exception."""
    damaged = sample[:where] + junk + sample[where:cut] if cut > where else sample[:cut] + junk
    report = parse_report(damaged, ["b+" + "0" * 32 + ".aaaaaaaaaa@x", "not an address"])
    assert report is None or isinstance(report.kind, Kind)
