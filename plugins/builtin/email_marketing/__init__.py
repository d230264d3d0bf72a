"""Email marketing, a builtin Orbit plugin built only on ``orbit.plugins.api``.

Lists and segments of contacts, block templates, campaigns sent through a per-workspace
queue with throttling, opens and clicks told apart between people and machines, and
one-click unsubscribe. Its data lives in its own tables (``tables`` below); bounces,
complaints, consent and the suppression list are its deliverability half
(``bounces``, ``consent``, ``suppression``, ``inbound``).
"""

from __future__ import annotations

from orbit.plugins.api import Manifest, Setting

__version__ = "0.1.0"

README = """\
Send newsletters and campaigns to your contacts, from Orbit.

- **Lists** you fill by hand and **segments** that follow your contacts' fields, tags,
  custom fields and what they did with your emails.
- **Templates** built from blocks, personalised with the contact's fields, with a text
  part written for you and a preview on a real contact.
- **Campaigns** sent at your pace (per workspace and per receiving domain), paused
  automatically when bounces or complaints spike, with live counters.
- **Opens and clicks** split between people and machines (privacy proxies, link scanners).
- **One-click unsubscribe** in every email (RFC 8058): a scanner cannot unsubscribe anyone.
"""

MANIFEST = Manifest(
    id="email_marketing",
    name="Email marketing",
    version=__version__,
    summary="Lists, segments, templates and campaigns with human/machine tracking",
    author="Orbit",
    license="AGPL-3.0-or-later",
    requires_orbit=">=0.1",
    scopes=("contacts:read",),
    events=("contact.deleted", "contact.merged"),
    settings=(
        Setting(
            name="smtp_url",
            label="SMTP server",
            default="smtp://127.0.0.1:25",
            help="smtp://host:port (STARTTLS when offered) or smtps://host:port; "
            "user name in the URL, password below.",
        ),
        Setting(name="smtp_password", label="SMTP password", type="secret"),
        Setting(name="from_email", label="Default sender address", default=""),
        Setting(name="from_name", label="Default sender name", default=""),
        Setting(
            name="unsubscribe_mailto",
            label="Unsubscribe mailbox",
            default="",
            help="Address for List-Unsubscribe mailto (default: the sender's address).",
        ),
        Setting(
            name="rate_per_second",
            label="Messages per second",
            type="integer",
            default=50,
            minimum=1,
            maximum=5000,
            help="The workspace's sending pace.",
        ),
        Setting(
            name="domain_rate_per_second",
            label="Messages per second per receiving domain",
            type="integer",
            default=20,
            minimum=1,
            maximum=5000,
        ),
    ),
    tables=(
        "email_marketing_lists",
        "email_marketing_list_members",
        "email_marketing_segments",
        "email_marketing_templates",
        "email_marketing_campaigns",
        "email_marketing_messages",
        "email_marketing_events",
        "email_marketing_throttle",
    ),
    migrations="orbit.plugins.builtin.email_marketing.piccolo_app",
    readme=README,
)
