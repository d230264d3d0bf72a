"""Hooks email marketing offers other plugins (``hookspecs`` in its manifest).

Another plugin adds a way to send (SES, SendGrid, Postmark, Mailgun…) by implementing
:func:`email_marketing_transport`; without one, email marketing sends over SMTP itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orbit.plugins.api import hookspec

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext


@hookspec
def email_marketing_transport(ctx: PluginContext, messages: list[Any]) -> list[Any] | None:
    """Send ``messages`` and say how each went.

    Each is an ``OutgoingMessage``: ``message_id``, ``sender`` (the envelope's return
    path), ``recipient`` and ``data``, the whole RFC 5322 message as bytes.
    Return one ``Delivery`` per message in the same order (``ok``, ``code``, ``detail``,
    ``permanent``: a 5xx the receiver will never accept), or ``None`` to leave the
    sending to the next transport (the built-in SMTP one is last). Called from the
    workspace's send job, batch by batch.
    """
