"""The workspace's suppression list: addresses no marketing email goes to.

One row per address and reason: ``bounce-hard`` (the address does not exist),
``bounce-soft`` (``soft_bounce_limit`` soft or policy bounces of different messages
within ``soft_bounce_days``), ``complaint`` (marked as spam: permanent),
``unsubscribe`` and ``manual`` (added by an admin). The send pipeline asks
:func:`suppressed` for a batch of recipients; every path that learns something about
an address (a bounce report, an SMTP reply at send time, a complaint, an unsubscribe,
an admin) goes through :func:`suppress`, which is idempotent.

Admins list the entries and add or remove manual ones and bounces (the address may
have been fixed); complaints and unsubscribes are the person's own decision and are
undone only by their own confirmed opt-in (:mod:`.consent`), never by an admin or an
import.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from orbit.plugins.api import PluginContext


class Reason(StrEnum):
    """Why an address is suppressed."""

    BOUNCE_HARD = "bounce-hard"
    BOUNCE_SOFT = "bounce-soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"


ADMIN_REMOVABLE = frozenset({Reason.MANUAL, Reason.BOUNCE_HARD, Reason.BOUNCE_SOFT})
"""Reasons an admin may lift; a complaint or an unsubscribe only the person can undo."""
MAX_PAGE = 500


def normalise(email: str) -> str:
    """The form addresses are compared in: trimmed, lower case."""
    return email.strip().lower()


async def suppressed(ctx: PluginContext, emails: Iterable[str]) -> set[str]:
    """Those of ``emails`` (as given) that must not be sent to, in one query."""
    given = {email: normalise(email) for email in emails}
    if not given:
        return set()
    rows = await ctx.db.fetch(
        "SELECT DISTINCT email FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = ANY($2::text[])",
        ctx.tenant_id,
        list(set(given.values())),
    )
    hit = {row["email"] for row in rows}
    return {email for email, key in given.items() if key in hit}


async def suppress(
    ctx: PluginContext, email: str, reason: Reason | str, source: str, detail: str = ""
) -> bool:
    """Add ``email`` to the list for ``reason``; ``False`` when it was there already."""
    address = normalise(email)
    if "@" not in address.strip("@"):
        raise ValueError(f"email {email!r} is not an address")
    status = await ctx.db.execute(
        "INSERT INTO email_marketing_suppressions (tenant_id, email, reason, source, detail) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, email, reason) DO NOTHING",
        ctx.tenant_id,
        address,
        Reason(reason).value,
        source[:200],
        detail[:1000],
    )
    return status.endswith(" 1")


async def unsuppress(ctx: PluginContext, email: str, reason: Reason | str) -> bool:
    """Lift one entry an admin may lift; ``False`` when there was none."""
    reason = Reason(reason)
    if reason not in ADMIN_REMOVABLE:
        raise PermissionError(
            f"a {reason.value} suppression is the person's own choice: "
            "only their confirmed opt-in lifts it"
        )
    status = await ctx.db.execute(
        "DELETE FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 AND reason = $3",
        ctx.tenant_id,
        normalise(email),
        reason.value,
    )
    return status.endswith(" 1")


async def lift_for_opt_in(ctx: PluginContext, email: str) -> None:
    """The person confirmed an opt-in themselves: their unsubscribe no longer holds.

    A complaint stays (permanent), as do bounces (the address still fails).
    """
    await ctx.db.execute(
        "DELETE FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 AND reason = $3",
        ctx.tenant_id,
        normalise(email),
        Reason.UNSUBSCRIBE.value,
    )


async def entries(
    ctx: PluginContext,
    *,
    q: str = "",
    reason: Reason | None = None,
    before: tuple[datetime, str, str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest entries first (keyset after ``before``: created_at, email, reason)."""
    limit = min(max(limit, 1), MAX_PAGE)
    rows = await ctx.db.fetch(
        "SELECT email, reason, source, detail, created_at FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND ($2 = '' OR email LIKE '%' || $2 || '%') "
        "AND ($3::text IS NULL OR reason = $3) "
        "AND ($4::timestamptz IS NULL OR (created_at, email, reason) < ($4, $5, $6)) "
        "ORDER BY created_at DESC, email DESC, reason DESC LIMIT $7",
        ctx.tenant_id,
        normalise(q).replace("%", "").replace("_", r"\_"),
        reason.value if reason else None,
        before[0] if before else None,
        before[1] if before else "",
        before[2] if before else "",
        limit,
    )
    return [dict(row) for row in rows]


async def for_email(ctx: PluginContext, email: str) -> list[dict[str, Any]]:
    """Every entry of one address (a person's data export)."""
    rows = await ctx.db.fetch(
        "SELECT email, reason, source, detail, created_at FROM email_marketing_suppressions "
        "WHERE tenant_id = $1 AND email = $2 ORDER BY created_at",
        ctx.tenant_id,
        normalise(email),
    )
    return [dict(row) for row in rows]
