"""Quotes & invoices: Orbit's builtin invoicing plugin, built only on ``orbit.plugins.api``.

Products and price lists per currency, tax rates, quotes made from deals and accepted by
the customer in a portal, invoices and credit notes numbered without gaps when they are
finalized, and exact EN 16931 arithmetic (:mod:`.money`) for every total shown, printed
or exported. The features live in part modules (:mod:`.parts` says how they plug in);
this module holds the manifest and the hooks, which gather what the parts contribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orbit.plugins.api import Manifest, Setting, hookimpl
from orbit.plugins.builtin.invoicing.invoices import draft_for_plugin
from orbit.plugins.builtin.invoicing.parts import gather_names, load_parts

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import Event, Fragment, PluginContext, ScheduledJob, TimelineEntry

__version__ = "0.1.0"

PARTS = load_parts()

README = """\
Quotes and invoices for your deals.

- **Products and price lists** per currency, units and tax rates (inclusive or exclusive
  prices, several taxes per line, exempt and reverse-charge codes, withholding).
- **Quotes from deals** with sections, optional lines, discounts, versions and expiry; the
  customer opens a link, reads the quote and accepts it with their name and signature, or
  declines with a reason. An accepted quote becomes a draft invoice and the deal is won.
- **Invoices and credit notes** numbered without gaps when they are finalized; a finalized
  invoice never changes (corrections are credit notes).
- **Exact money**: every total is computed once, the EN 16931 way (VAT per rate on the
  rate's taxable base), so screen, PDF, e-invoice and reports agree to the cent.
"""

BASE_SETTINGS = (
    Setting(
        name="company_currency",
        label="Company currency",
        default="EUR",
        help="ISO 4217 code of your books; invoices in other currencies store the rate.",
    ),
    Setting(name="invoice_prefix", label="Invoice number prefix", default="INV-"),
    Setting(name="credit_note_prefix", label="Credit note number prefix", default="CN-"),
    Setting(name="quote_prefix", label="Quote number prefix", default="Q-"),
    Setting(
        name="payment_terms_days",
        label="Payment terms (days)",
        type="integer",
        default=30,
        minimum=0,
        maximum=365,
    ),
    Setting(
        name="quote_validity_days",
        label="Quotes valid for (days)",
        type="integer",
        default=30,
        minimum=1,
        maximum=365,
    ),
)

MANIFEST = Manifest(
    id="invoicing",
    name="Quotes & invoices",
    version=__version__,
    summary="Quotes from deals, signed in a portal; invoices numbered without gaps",
    author="Orbit",
    license="AGPL-3.0-or-later",
    requires_orbit=">=0.1,<0.2",
    scopes=(
        "deals:read",
        "deals:write",
        "contacts:read",
        "companies:read",
        "mail:send",
        *gather_names(PARTS, "SCOPES"),
    ),
    slots=("deal.sidebar",),
    nav=("Invoicing", "/"),
    events=gather_names(PARTS, "EVENTS"),
    emits=gather_names(PARTS, "EMITS"),
    settings=BASE_SETTINGS + tuple(s for part in PARTS for s in getattr(part, "SETTINGS", ())),
    tables=(
        "invoicing_units",
        "invoicing_tax_rates",
        "invoicing_products",
        "invoicing_price_lists",
        "invoicing_prices",
        "invoicing_number_series",
        "invoicing_quotes",
        "invoicing_quote_lines",
        "invoicing_invoices",
        "invoicing_invoice_lines",
        "invoicing_outbox",
        *gather_names(PARTS, "TABLES"),
    ),
    migrations="orbit.plugins.builtin.invoicing.piccolo_app",
    hookspecs="orbit.plugins.builtin.invoicing.hookspecs",
    readme=README,
)


def _routes(kind: str) -> list[Any]:
    """What the parts' ``kind()`` functions return, one list."""
    return [route for part in PARTS if hasattr(part, kind) for route in getattr(part, kind)()]


@hookimpl
def orbit_api_routes() -> list[Any]:
    """The parts' API routes, under ``/api/v1/apps/invoicing/``."""
    return _routes("api_routes")


@hookimpl
def orbit_page_routes() -> list[Any]:
    """The parts' pages, under ``/t/{slug}/apps/invoicing/``."""
    return _routes("page_routes")


@hookimpl
def orbit_public_routes() -> list[Any]:
    """The parts' public routes (portal, Stripe's webhook), under ``/p/invoicing/``."""
    return _routes("public_routes")


@hookimpl
def orbit_scheduled_jobs() -> list[ScheduledJob]:
    """The parts' periodic jobs (the outbox among them)."""
    return _routes("scheduled_jobs")


@hookimpl
async def orbit_plugin_installed(ctx: PluginContext) -> None:
    """Set up what a workspace needs first (units, for instance)."""
    for part in PARTS:
        if hasattr(part, "on_installed"):
            await part.on_installed(ctx)


@hookimpl
async def orbit_event(ctx: PluginContext, event: Event) -> None:
    """Hand a domain event to the parts that subscribed to its type."""
    for part in PARTS:
        if event.type in getattr(part, "EVENTS", ()) and hasattr(part, "on_event"):
            await part.on_event(ctx, event)


@hookimpl
async def orbit_timeline_entries(
    ctx: PluginContext, subject_type: str, subject_id: UUID
) -> list[TimelineEntry] | None:
    """Quotes, invoices and what happened to them, on the customer's records."""
    entries: list[TimelineEntry] = []
    for part in PARTS:
        if hasattr(part, "timeline_entries"):
            entries += await part.timeline_entries(ctx, subject_type, subject_id)
    entries.sort(key=lambda entry: entry.occurred_at, reverse=True)
    return entries[:50] or None


@hookimpl
async def orbit_ui_slot(ctx: PluginContext, slot: str, subject_id: UUID | None) -> Fragment | None:
    """The first part's panel for ``slot`` (the deal sidebar's "Create quote")."""
    for part in PARTS:
        if hasattr(part, "ui_slot"):
            fragment: Fragment | None = await part.ui_slot(ctx, slot, subject_id)
            if fragment is not None:
                return fragment
    return None


@hookimpl
async def orbit_contact_export(ctx: PluginContext, contact_id: UUID) -> dict[str, Any] | None:
    """What the parts keep about a person (their quotes and invoices, …)."""
    found: dict[str, Any] = {}
    for part in PARTS:
        if hasattr(part, "contact_export"):
            found.update(await part.contact_export(ctx, contact_id))
    return found or None


@hookimpl
async def orbit_contact_erase(ctx: PluginContext, contact_id: UUID) -> None:
    """Each part forgets the person, keeping what the law makes it keep (see the parts)."""
    for part in PARTS:
        if hasattr(part, "contact_erase"):
            await part.contact_erase(ctx, contact_id)


@hookimpl
async def invoicing_create_draft_invoice(
    ctx: PluginContext,
    customer: dict[str, Any],
    lines: list[dict[str, Any]],
    source: dict[str, Any],
) -> dict[str, Any]:
    """A draft invoice for another plugin (see :mod:`.hookspecs`)."""
    return await draft_for_plugin(ctx, customer, lines, source)
