from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from orbit.billing.catalog import CatalogError, catalog, load_catalog, plan
from orbit.billing.entitlements import entitlements


@pytest.mark.parametrize(
    ("seats", "starter", "pro"),
    [
        (1, "15.00", "39.00"),
        (10, "150.00", "390.00"),
        (11, "162.00", "422.00"),  # 10 × 15 + 1 × 12 ; 10 × 39 + 1 × 32
        (50, "630.00", "1670.00"),  # 10 × 15 + 40 × 12 ; 10 × 39 + 40 × 32
        (51, "639.00", "1695.00"),  # … + 1 × 9 ; … + 1 × 25
        (200, "1980.00", "5420.00"),  # … + 150 × 9 ; … + 150 × 25
    ],
)
def test_graduated_prices_follow_stripes_semantics(seats: int, starter: str, pro: str) -> None:
    plans = catalog()
    assert plans["starter"].price(seats) == Decimal(starter)
    assert plans["pro"].price(seats) == Decimal(pro)


def test_yearly_prices_and_the_free_plan() -> None:
    plans = catalog()
    assert plans["starter"].price(11, "year") == Decimal("1620.00")
    assert plans["free"].is_free
    assert plans["free"].seats == 3
    assert plans["free"].contacts == 10_000


def test_a_broken_catalog_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "plans.toml"
    bad.write_text(
        "[plans.free]\nname='Free'\nseats=3\ncontacts=1\nstorage_mb=1\nemails_per_month=1\n"
        "api_requests_per_minute=1\npaid_plugins=false\n"
        "[plans.x]\nname='X'\nseats=3\ncontacts=1\nstorage_mb=1\nemails_per_month=1\n"
        "api_requests_per_minute=1\npaid_plugins=true\n"
        "monthly_tiers=[{up_to=10, unit_amount='1'}, {up_to=5, unit_amount='1'},"
        " {unit_amount='1'}]\n"
        "yearly_tiers=[{unit_amount='1'}]\n"
    )
    with pytest.raises(CatalogError, match="rise"):
        load_catalog(bad)


NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "since", "read_only", "banner"),
    [
        ("active", None, False, False),
        ("trialing", None, False, False),
        ("past_due", NOW - timedelta(days=3), False, True),
        ("past_due", NOW - timedelta(days=15), True, True),
        ("unpaid", None, True, True),
        ("canceled", None, True, True),
    ],
)
def test_entitlements_per_subscription_status(
    status: str, since: datetime | None, read_only: bool, banner: bool
) -> None:
    result = entitlements("starter", status, since, NOW)  # type: ignore[arg-type]
    assert result.read_only is read_only
    assert (result.banner is not None) is banner
    assert result.seats == 1_000


@pytest.mark.parametrize("seats", [1, 10, 11, 50, 51, 200])
def test_the_breakdown_adds_up_to_the_price(seats: int) -> None:
    from orbit.billing.catalog import breakdown  # noqa: PLC0415

    for key in ("starter", "pro"):
        rows = breakdown(plan(key), seats)
        assert sum(row.amount for row in rows) == plan(key).price(seats)
        assert sum(row.seats for row in rows) == seats
        assert rows[0].first == 1
        assert rows[-1].last == seats


def test_the_breakdown_of_eleven_starter_seats() -> None:
    from orbit.billing.catalog import breakdown  # noqa: PLC0415

    rows = breakdown(plan("starter"), 11)
    assert [(r.first, r.last, r.unit_amount, r.amount) for r in rows] == [
        (1, 10, Decimal("15.00"), Decimal("150.00")),
        (11, 11, Decimal("12.00"), Decimal("12.00")),
    ]
