"""``make bench``'s plugin dispatch benchmark runs and writes its table and JSON.

Times are machine-dependent: only the shape of the result is checked, never a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_dispatch_benchmark_reports_per_hook_call(tmp_path: Path) -> None:
    output = tmp_path / "dispatch.json"
    result = subprocess.run(
        [
            *(sys.executable, str(ROOT / "bench" / "plugin_dispatch.py")),
            *("--calls", "20", "--repeats", "1", "--output", str(output)),
        ],
        cwd=ROOT,
        env=os.environ | {"PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "overhead µs" in result.stdout
    report = json.loads(output.read_text())
    assert report["benchmark"] == "plugin_dispatch"
    assert [row["hook"] for row in report["results"]] == [
        "async hook (orbit_event)",
        "sync hook (orbit_validate_settings)",
    ]
    for row in report["results"]:
        assert row["plugins"] == 20
        assert row["target_us_per_call"] == 50.0
        difference = row["dispatched_us_per_call"] - row["direct_us_per_call"]
        assert abs(row["overhead_us_per_call"] - difference) < 0.02
