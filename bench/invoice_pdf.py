"""Issuing one invoice's documents: a 3-page Factur-X PDF/A-3b plus CII and UBL XML.

What the worker does after an invoice is finalized (``documents.issue``): the one
``compute()`` of the invoice, the Jinja2 template, WeasyPrint's PDF/A-3b, the CII
XML checked against its XSD and attached as Factur-X, the UBL XML. The invoice has 75
lines in two VAT rates (three A4 pages). Timed in this process, wall clock and CPU
(rendering is single-threaded, so CPU time is what another core count would not
change); p50/p95 over several runs after one warm-up (fonts, schemas).

    uv run --frozen python bench/invoice_pdf.py [--runs N] [--output FILE]

Prints a table and writes JSON (default ``bench/results/invoice_pdf.json``).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pikepdf

from orbit.plugins.builtin.invoicing.documents import build_view, issue

RESULTS = Path(__file__).parent / "results" / "invoice_pdf.json"
TARGET_SECONDS = 1.5
SETTINGS = {
    "seller_name": "Orbit Demo SARL",
    "seller_street": "12 rue de la Paix",
    "seller_postcode": "75002",
    "seller_city": "Paris",
    "seller_country": "FR",
    "seller_vat_id": "FR32123456789",
    "seller_iban": "FR7630006000011234567890189",
    "document_language": "en",
    "einvoice": "factur-x",
}


def _tax(rate: str) -> dict[str, Any]:
    return {"name": f"VAT {rate}%", "rate": rate, "category": "S", "kind": "vat"}


def invoice(lines: int = 75) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A finalized invoice row and its lines as the plugin stores them."""
    row = {
        "id": uuid4(),
        "kind": "invoice",
        "status": "finalized",
        "number": "INV-2026-00001",
        "issue_date": date(2026, 11, 25),
        "due_date": date(2026, 12, 25),
        "currency": "EUR",
        "prices_include_tax": False,
        "discount_percent": Decimal(0),
        "discount_amount": Decimal(0),
        "notes": "",
        "terms": "30 days net",
        "customer": {"name": "Buyer GmbH", "address": "Hauptstraße 5\n10115 Berlin",
                     "country": "DE", "vat_id": "DE123456789"},
        "credited_invoice_id": None,
    }  # fmt: skip
    stored = [
        {
            "kind": "item",
            "position": i,
            "description": f"Service line {i} with a longer description",
            "unit_code": "C62",
            "quantity": Decimal(i % 7 + 1),
            "unit_price": Decimal(f"{i}.{i % 100:02d}"),
            "discount_percent": Decimal(0),
            "taxes": [_tax("20" if i % 2 else "5.5")],
        }
        for i in range(1, lines + 1)
    ]
    return row, stored


def measure(runs: int) -> dict[str, Any]:
    """Time ``runs`` issues after one warm-up."""
    view = build_view(*invoice())
    first = issue(view, SETTINGS)
    pages = len(pikepdf.open(io.BytesIO(first.pdf)).pages)
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        issue(view, SETTINGS)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)

    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]

    return {
        "pages": pages,
        "pdf_bytes": len(first.pdf),
        "runs": runs,
        "wall_p50_s": round(statistics.median(walls), 3),
        "wall_p95_s": round(p95(walls), 3),
        "cpu_p50_s": round(statistics.median(cpus), 3),
        "cpu_p95_s": round(p95(cpus), 3),
        "pdfs_per_s_per_core": round(1 / statistics.median(cpus), 2),
        "target_s": TARGET_SECONDS,
        "met": p95(cpus) <= TARGET_SECONDS,
    }


def report(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    return "\n".join(
        [
            (
                "| invoice documents | pages | wall p50 / p95 s | CPU p50 / p95 s | PDFs/s/core "
                "| target | met |"
            ),
            "|---|---|---|---|---|---|---|",
            (
                f"| Factur-X PDF/A-3b + CII + UBL | {result['pages']} | {result['wall_p50_s']} / "
                f"{result['wall_p95_s']} | {result['cpu_p50_s']} / {result['cpu_p95_s']} | "
                f"{result['pdfs_per_s_per_core']} | ≤ {result['target_s']} s | "
                f"{'yes' if result['met'] else 'NO'} |"
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed issues (after a warm-up)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    print(report(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "invoice_pdf",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "result": result,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
