"""Hooks the invoicing plugin declares for other plugins (manifest ``hookspecs``).

Another plugin calls them through its context, on the workspaces that enabled both::

    answer = await ctx.hooks.first(
        "invoicing_create_draft_invoice",
        customer={"company_id": str(company_id)},
        lines=[{"description": "Design, 6 h", "quantity": "6", "unit_price": "90",
                "unit_code": "HUR", "tax_rate_ids": [...], "ref": "time-entry:42"}],
        source={"plugin": "projects", "project_id": str(project_id)},
    )
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orbit.plugins.api import hookspec

if TYPE_CHECKING:
    from orbit.plugins.api import PluginContext


@hookspec
def invoicing_create_draft_invoice(
    ctx: PluginContext,
    customer: dict[str, Any],
    lines: list[dict[str, Any]],
    source: dict[str, Any],
) -> dict[str, Any] | None:
    """Create a draft invoice (no number yet) for ``customer`` with ``lines``.

    ``customer``: ``company_id`` and/or ``contact_id`` (the name, address and email are
    taken from the CRM), or ``name`` (with optional ``email``, ``address``, ``country``,
    ``vat_id``), which also overrides the CRM's. ``lines``: each as the invoices API
    takes it — ``description``, ``quantity``, ``unit_price``, ``unit_code``,
    ``tax_rate_ids``, ``discount_percent``, or a ``product_id`` priced from the
    catalogue — and a ``ref`` of the caller's (kept on the line and sent back in the
    ``invoicing.invoice_finalized`` event's ``lines``). ``source``: a JSON object kept on
    the invoice (say which plugin and record it came from); ``currency`` in it chooses
    the invoice's currency. Returns ``{"ok": true, "invoice": {...}}`` with the draft as
    the API shows it, or ``{"ok": false, "field": ..., "error": ...}`` for bad input
    (nothing is written then).
    """
