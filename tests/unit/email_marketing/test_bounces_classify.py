"""The return path's signature and RFC 3463 classification, without a database."""

from __future__ import annotations

from uuid import UUID

import pytest

from orbit.plugins.builtin.email_marketing.bounces import (
    MAX_REFS,
    Kind,
    classify,
    parse_report,
    parse_return_path,
    sign_ref,
    smtp_status,
    verify_ref,
)

KEY = b"k" * 32
TENANT = UUID("0193a5c2-7d10-7a51-9c3e-5f1b2a3c4d5e")
MESSAGE = UUID("0193a5d0-0001-7000-8000-000000000001")


def test_a_ref_verifies_only_for_its_workspace_key_and_message() -> None:
    ref = sign_ref(KEY, TENANT, MESSAGE)
    assert ref.startswith(MESSAGE.hex + ".")
    assert len(f"b+{ref}") <= 64  # an RFC 5321 local part
    assert verify_ref(KEY, TENANT, ref) == MESSAGE
    assert verify_ref(KEY, TENANT, ref.upper()) == MESSAGE  # some servers change case
    assert verify_ref(b"x" * 32, TENANT, ref) is None  # another workspace's key
    assert verify_ref(KEY, UUID(int=1), ref) is None  # another workspace
    other = UUID("0193a5d0-0001-7000-8000-000000000002")
    assert verify_ref(KEY, TENANT, f"{other.hex}.{ref.split('.')[1]}") is None  # swapped id
    tampered = ref[:-1] + ("a" if ref[-1] != "a" else "b")
    assert verify_ref(KEY, TENANT, tampered) is None
    assert verify_ref(KEY, TENANT, "not a ref") is None


@pytest.mark.parametrize(
    ("address", "ref"),
    [
        ("b+0193a5d0000170008000000000000001.egyxq2totg@bounces.example.org",
         "0193a5d0000170008000000000000001.egyxq2totg"),
        ("<B+0193A5D0000170008000000000000001.EGYXQ2TOTG@Bounces.Example.org>",
         "0193a5d0000170008000000000000001.egyxq2totg"),
        ("news@shop.example.com", None),
        ("b+short.egyxq2totg@bounces.example.org", None),
        ("", None),
    ],
)  # fmt: skip
def test_parse_return_path(address: str, ref: str | None) -> None:
    assert parse_return_path(address) == ref


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        ("5.1.1", "User unknown", Kind.HARD),
        ("5.1.10", "RecipientNotFound", Kind.HARD),
        ("5.4.4", "Host or domain name not found", Kind.HARD),
        ("5.2.1", "account disabled", Kind.HARD),
        ("5.2.2", "Mailbox full", Kind.SOFT),
        ("5.3.4", "Message too big", Kind.SOFT),
        ("5.4.7", "Delivery time expired", Kind.SOFT),
        ("4.2.2", "Mailbox full", Kind.SOFT),
        ("4.7.0", "[TSS04] temporarily deferred", Kind.SOFT),
        ("5.7.1", "Client host blocked using zen.spamhaus.org", Kind.POLICY),
        ("5.7.26", "unauthenticated sender", Kind.POLICY),
        ("5.7.1", "550 5.7.1 No such user here", Kind.HARD),
        ("5.0.0", "550 Recipient address rejected: User unknown", Kind.HARD),
        ("5.0.0", "quota exceeded", Kind.SOFT),
        ("2.0.0", "Ok: queued", None),
        (None, "550 No such user", Kind.HARD),
        (None, "554: delivery error: dd Not a valid recipient", Kind.HARD),
        (None, "451 Temporary local problem", Kind.SOFT),
        (None, "550 Message rejected as spam", Kind.POLICY),
        (None, "Sorry, no mailbox here by that name. (#5.1.1)", Kind.HARD),
        (None, "Thanks for your message", None),
    ],
)
def test_classify(status: str | None, text: str, kind: Kind | None) -> None:
    assert classify(status, text) is kind


def test_smtp_status_takes_the_enhanced_code_of_the_same_class() -> None:
    assert smtp_status(550, "5.1.1 <x@example.com>: Recipient address rejected") == "5.1.1"
    assert smtp_status(421, "4.7.0 Try again later") == "4.7.0"
    assert smtp_status(550, "Requested action not taken") is None
    assert smtp_status(550, "4.2.2 odd server") is None


def test_a_report_stuffed_with_refs_keeps_the_most_telling_few() -> None:
    verp = "b+" + sign_ref(KEY, TENANT, MESSAGE) + "@bounces.example.org"
    junk = "\n".join(f"{UUID(int=i).hex}.aaaaaaaaaa" for i in range(5000))
    raw = (
        "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail Returned to Sender\n"
        f"To: {verp}\n\n550 5.1.1 User unknown\n{junk}\n"
    ).encode()
    report = parse_report(raw, [verp])
    assert report is not None
    assert len(report.refs) == MAX_REFS
    assert verify_ref(KEY, TENANT, report.refs[0]) == MESSAGE  # the envelope's, first
