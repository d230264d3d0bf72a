"""The plan catalog, read from ``plans.toml`` and checked on load."""

from __future__ import annotations

import functools
import itertools
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

CATALOG_FILE = Path(__file__).with_name("plans.toml")
Interval = Literal["month", "year"]


class CatalogError(ValueError):
    """``plans.toml`` breaks a rule (a typo there must never reach Stripe or customers)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """Seats up to ``up_to`` (``None``: all the rest) cost ``unit_amount`` each."""

    up_to: int | None
    unit_amount: Decimal


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan: its limits and, for paid plans, graduated per-seat prices."""

    key: str
    name: str
    seats: int
    contacts: int
    storage_mb: int
    emails_per_month: int
    api_requests_per_minute: int
    paid_plugins: bool
    monthly_tiers: tuple[Tier, ...] = ()
    yearly_tiers: tuple[Tier, ...] = ()

    @property
    def is_free(self) -> bool:
        """Whether the plan has no price."""
        return not self.monthly_tiers

    def tiers(self, interval: Interval) -> tuple[Tier, ...]:
        """The price tiers for billing every month or every year."""
        return self.monthly_tiers if interval == "month" else self.yearly_tiers

    def price(self, seats: int, interval: Interval = "month") -> Decimal:
        """What ``seats`` seats cost per ``interval``, graduated like Stripe.

        Each seat is priced by the tier it falls in (11 seats on Starter: 10 × 15 + 1 × 12).
        """
        total = Decimal(0)
        floor = 0
        for tier in self.tiers(interval):
            ceiling = seats if tier.up_to is None else min(seats, tier.up_to)
            if ceiling > floor:
                total += (ceiling - floor) * tier.unit_amount
            if tier.up_to is None or seats <= tier.up_to:
                break
            floor = tier.up_to
        return total


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One row of the tier arithmetic: seats ``first``..``last`` at ``unit_amount`` each."""

    first: int
    last: int
    unit_amount: Decimal

    @property
    def seats(self) -> int:
        """How many seats fall in this tier."""
        return self.last - self.first + 1

    @property
    def amount(self) -> Decimal:
        """What they cost."""
        return self.seats * self.unit_amount


def breakdown(chosen: Plan, seats: int, interval: Interval = "month") -> list[TierCharge]:
    """:meth:`Plan.price` shown line by line (11 Starter seats: 1–10 × 15, 11–11 × 12)."""
    rows: list[TierCharge] = []
    floor = 0
    for tier in chosen.tiers(interval):
        ceiling = seats if tier.up_to is None else min(seats, tier.up_to)
        if ceiling > floor:
            rows.append(TierCharge(floor + 1, ceiling, tier.unit_amount))
        if tier.up_to is None or seats <= tier.up_to:
            break
        floor = tier.up_to
    return rows


def _tiers(raw: list[dict[str, Any]], where: str) -> tuple[Tier, ...]:
    tiers = tuple(
        Tier(up_to=item.get("up_to"), unit_amount=Decimal(str(item["unit_amount"]))) for item in raw
    )
    bounds = [t.up_to for t in tiers]
    if not tiers or bounds[-1] is not None or None in bounds[:-1]:
        raise CatalogError(f"{where}: tiers must end with exactly one open tier (no up_to)")
    closed = [bound for bound in bounds[:-1] if bound is not None]
    if any(lower >= upper for lower, upper in itertools.pairwise(closed)) or any(
        bound < 1 for bound in closed
    ):
        raise CatalogError(f"{where}: tier bounds must be positive and rise")
    if any(t.unit_amount < 0 for t in tiers):
        raise CatalogError(f"{where}: a unit amount is negative")
    return tiers


def load_catalog(path: Path = CATALOG_FILE) -> dict[str, Plan]:
    """Every plan by key, checked."""
    data = tomllib.loads(path.read_text())
    plans: dict[str, Plan] = {}
    for key, raw in data.get("plans", {}).items():
        fields = {k: v for k, v in raw.items() if not k.endswith("_tiers")}
        plan = Plan(
            key=key,
            monthly_tiers=_tiers(raw["monthly_tiers"], f"{key}.monthly_tiers")
            if "monthly_tiers" in raw
            else (),
            yearly_tiers=_tiers(raw["yearly_tiers"], f"{key}.yearly_tiers")
            if "yearly_tiers" in raw
            else (),
            **fields,
        )
        if bool(plan.monthly_tiers) != bool(plan.yearly_tiers):
            raise CatalogError(f"{key}: a paid plan needs monthly and yearly tiers")
        plans[key] = plan
    if "free" not in plans or not plans["free"].is_free:
        raise CatalogError("the catalog needs a free plan without prices")
    return plans


@functools.cache
def catalog() -> dict[str, Plan]:
    """The catalog shipped with Orbit."""
    return load_catalog()


def plan(key: str) -> Plan:
    """One plan; an unknown key (a data bug) falls back to nothing: it raises."""
    try:
        return catalog()[key]
    except KeyError:
        raise CatalogError(f"unknown plan {key!r}") from None
