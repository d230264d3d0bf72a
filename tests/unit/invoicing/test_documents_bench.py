"""``make bench``'s invoice PDF benchmark runs and writes its table and JSON.

Only the shape is checked here (times depend on the machine); the 1.5 s bound itself is
asserted in test_documents_render on CPU time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_invoice_pdf_benchmark_reports_a_three_page_pdf(tmp_path: Path) -> None:
    output = tmp_path / "invoice_pdf.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "invoice_pdf.py"), "--runs", "1",
         "--output", str(output)],
        cwd=ROOT,
        env=os.environ | {"PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Factur-X PDF/A-3b + CII + UBL" in result.stdout
    report = json.loads(output.read_text())
    assert report["benchmark"] == "invoice_pdf"
    assert report["result"]["pages"] == 3
    assert report["result"]["target_s"] == 1.5
    assert report["result"]["cpu_p50_s"] > 0
