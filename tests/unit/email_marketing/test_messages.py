"""Templates, MIME and the human/machine verdicts, without a database."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from litestar.exceptions import ValidationException

from orbit.plugins.builtin.email_marketing import mime, templates, tracking

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_composed_messages_carry_any_script_and_long_lines_intact() -> None:
    text = "Γειά σου Ελένη = 100%\n" + "x" * 300 + "\n.leading dot"
    html = "<p>Привет, 世界 &amp; ‘quotes’</p>" + "<span>" + "y" * 500 + "</span>"
    unsubscribe = "https://orbit.example/p/email_marketing/u/" + "T" * 110
    data = mime.compose(
        [
            ("From", mime.address("Ελένη Παπαδοπούλου", "news@shop.example.com")),
            ("To", "ada@example.org"),
            ("Subject", "Νέα προσφορά για σένα, Ελένη — 20% έκπτωση σε όλα τα προϊόντα μας"),
            ("List-Unsubscribe", f"<{unsubscribe}>, <mailto:u@shop.example.com?subject=x>"),
        ],
        text,
        html,
        "=_orbit_test",
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends only
    parsed = _parse(data)
    assert str(parsed["Subject"]).startswith("Νέα προσφορά για σένα, Ελένη")
    assert parsed["From"].addresses[0].display_name == "Ελένη Παπαδοπούλου"
    assert str(parsed["List-Unsubscribe"]).startswith(f"<{unsubscribe}>")
    plain = parsed.get_body(preferencelist=("plain",))
    rich = parsed.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == text
    assert rich.get_content().rstrip("\r\n") == html


def test_personal_values_are_escaped_in_html_and_kept_in_text() -> None:
    blocks = [
        {"type": "heading", "text": "Hi {{ contact.first_name }}"},
        {"type": "button", "text": "Go", "url": "https://shop.example.com/a?b=1&c=2"},
    ]
    made = templates.compile_template("For {{ contact.first_name }}", "", blocks)
    rendered = templates.render(
        made,
        {"contact": {"first_name": "<script>x</script>"}},
        templates.PlainLinks(made.links),
    )
    assert "<script>x</script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "Hi <script>x</script>" in rendered.text
    assert rendered.subject == "For <script>x</script>"
    assert made.links == ("https://shop.example.com/a?b=1&c=2",)
    assert 'href="https://shop.example.com/a?b=1&amp;c=2"' in rendered.html


def test_the_sandbox_refuses_to_reach_python_objects() -> None:
    with pytest.raises(ValidationException) as refused:
        templates.check_template(
            "Hi", "", [{"type": "text", "text": "{{ contact.__class__.__mro__ }}"}],
            {"contact": {"first_name": "A"}},
        )  # fmt: skip
    assert "template error" in str(refused.value.detail)


@pytest.mark.parametrize(
    ("ip", "agent", "after", "machine", "reason"),
    [
        ("17.58.1.2", BROWSER, 3600, True, "Apple privacy proxy"),
        ("203.0.113.5", "Mozilla/5.0", 3600, True, "privacy proxy (generic user agent)"),
        ("203.0.113.5", "python-requests/2.32", 3600, True, "automated user agent"),
        ("203.0.113.5", BROWSER, 2, True, "seconds after delivery"),
        ("203.0.113.5", BROWSER, 3600, False, ""),
    ],
)
def test_machine_opens(ip: str, agent: str, after: int, machine: bool, reason: str) -> None:
    verdict = tracking.classify_open(
        ip=ip, user_agent=agent, sent_at=NOW, at=NOW + timedelta(seconds=after)
    )
    assert verdict == tracking.Verdict(machine=machine, reason=reason)


def test_scanner_clicks() -> None:
    later = NOW + timedelta(hours=2)

    def click(**kw: object) -> tracking.Verdict:
        args: dict[str, object] = {"honeypot": False, "user_agent": BROWSER, "sent_at": NOW,
                                   "at": later, "other_links_just_clicked": False}  # fmt: skip
        return tracking.classify_click(**{**args, **kw})  # type: ignore[arg-type]

    assert click().machine is False
    assert click(honeypot=True).reason == "hidden link"
    assert click(other_links_just_clicked=True).reason == "every link at once"
    assert click(user_agent="Mimecast Link Scanner").machine is True
    assert click(at=NOW + timedelta(seconds=1)).reason == "seconds after delivery"
