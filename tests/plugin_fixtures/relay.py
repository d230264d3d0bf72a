"""A plugin that sends email marketing's messages itself (``email_marketing_transport``).

Stands for an ESP adapter (SES, SendGrid…): it keeps what it was given, per workspace,
and answers each message as delivered, except addresses at ``refused.example``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orbit.plugins.api import Manifest, PluginContext, hookimpl
from orbit.plugins.builtin.email_marketing.transport import Delivery

RELAYED: dict[str, list[Any]] = defaultdict(list)
"""Tenant slug → the messages the relay was handed."""


class Relay:
    """Answers email marketing's transport hook."""

    MANIFEST = Manifest(
        id="mail_relay",
        name="Mail relay",
        version="1.0.0",
        summary="Sends campaign emails through a provider",
        author="Orbit tests",
        license="MIT",
        requires_orbit=">=0.1",
    )

    @hookimpl
    def email_marketing_transport(self, ctx: PluginContext, messages: list[Any]) -> list[Any]:
        RELAYED[ctx.tenant_slug].extend(messages)
        return [
            Delivery(ok=False, code=550, detail="5.1.1 unknown", permanent=True)
            if m.recipient.endswith("@refused.example")
            else Delivery(ok=True, code=250)
            for m in messages
        ]
