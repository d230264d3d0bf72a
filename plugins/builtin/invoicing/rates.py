"""Exchange rates from the European Central Bank's reference rates, shipped offline.

``currencyconverter`` carries the ECB's daily euro reference rates as a file in the
package (no network at run time); cross rates (USD → CHF) go through the euro as the
ECB publishes them. An invoice in a foreign currency takes the last reference rate
published on or before its issue date, and records that rate's own date; a rate more
than :data:`MAX_AGE` old is not used (the user gives one).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

MAX_AGE = timedelta(days=45)
SOURCE = "ECB euro reference rate"


@cache
def _converter() -> Any:
    from currency_converter import CurrencyConverter  # noqa: PLC0415 - parses a file: once, lazily

    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


def _lookup(currency: str, books: str, on: date) -> tuple[Decimal, date] | None:
    converter = _converter()
    known = converter.currencies
    if currency not in known or books not in known:
        return None
    day = on
    while on - day <= MAX_AGE:
        try:
            value = converter.convert(1, currency, books, date=day)
        except Exception:  # noqa: BLE001 - no fixing that day (weekend, holiday, beyond the data)
            day -= timedelta(days=1)
            continue
        return Decimal(str(value)).quantize(Decimal("0.000001")), day
    return None


async def ecb_rate(currency: str, books: str, on: date) -> tuple[Decimal, date] | None:
    """Units of ``books`` per unit of ``currency`` on or before ``on``, with the rate's date.

    ``None`` when the ECB publishes no rate for one of them or none recent enough.
    """
    return await asyncio.to_thread(_lookup, currency, books, on)
