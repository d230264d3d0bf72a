"""`orbit billing sync-catalog`: Stripe's catalog follows plans.toml, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orbit.billing.gateway import StripeGateway

ROOT = Path(__file__).resolve().parents[3]


def _orbit(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_STRIPE")}
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", "billing", "sync-catalog"],
        cwd=ROOT,
        env=base | {"ORBIT_HOME": str(home), "PYTHONSAFEPATH": "1"} | env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_sync_catalog_twice_changes_nothing_the_second_time(
    tmp_path: Path, gateway: StripeGateway, localstripe_url: str
) -> None:
    env = {"ORBIT_STRIPE_SECRET_KEY": "sk_test_orbit", "ORBIT_STRIPE_API_BASE": localstripe_url}
    first = _orbit(tmp_path, **env)
    second = _orbit(tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert "product orbit_starter: unchanged" in lines
    assert "product orbit_pro: unchanged" in lines
    for key in ("starter_monthly", "starter_yearly", "pro_monthly", "pro_yearly"):
        assert f"plan {key}: unchanged" in lines
    plans = await gateway.client.v1.plans.list_async()
    keys = sorted(p.id for p in plans.data)
    assert keys == ["pro_monthly", "pro_yearly", "starter_monthly", "starter_yearly"]


def test_sync_catalog_without_a_key_says_what_to_set(tmp_path: Path) -> None:
    result = _orbit(tmp_path)
    assert result.returncode == 2
    assert "ORBIT_STRIPE_SECRET_KEY" in result.stderr
