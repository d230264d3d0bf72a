"""What a workspace may do, from its plan and its subscription's status.

active and trialing: everything the plan allows. past_due: the same, with a banner,
for a grace period. unpaid, canceled, or past_due after the grace: read-only —
reads and exports work, writes get a 402 that says how to fix it. Data is never
deleted for non-payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from orbit.billing.catalog import Plan, plan

GRACE = timedelta(days=14)
Status = Literal["active", "trialing", "past_due", "unpaid", "canceled"]


@dataclass(frozen=True, slots=True)
class Entitlements:
    """Limits and mode of one workspace right now."""

    plan: Plan
    read_only: bool
    banner: str | None

    @property
    def seats(self) -> int:
        """Active members allowed (each is a seat)."""
        return self.plan.seats

    @property
    def contacts(self) -> int:
        """Contacts allowed."""
        return self.plan.contacts


def entitlements(
    plan_key: str, status: Status, past_due_since: datetime | None, now: datetime
) -> Entitlements:
    """The one function every limit comes from."""
    chosen = plan(plan_key)
    if status in {"active", "trialing"}:
        return Entitlements(chosen, read_only=False, banner=None)
    if status == "past_due" and past_due_since is not None and now - past_due_since < GRACE:
        days = (past_due_since + GRACE - now).days
        return Entitlements(
            chosen,
            read_only=False,
            banner=f"Payment failed: update your card within {days} days to keep editing.",
        )
    return Entitlements(
        chosen,
        read_only=True,
        banner="This workspace is read-only until its subscription is paid.",
    )
