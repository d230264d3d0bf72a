"""Platform overhead of one hook call dispatched to 20 enabled plugins.

Twenty plugin modules with trivial hooks are loaded into a real ``PluginRegistry`` and
enabled for one workspace; one ``TenantPlugins.call`` (what a page or the worker does
per hook call: pluggy's per-tenant subset caller, a context per plugin, the isolation
wrapper with its time budget, failure handling and metrics) is timed against awaiting
the same 20 functions directly. The difference, per hook call, is the platform's
overhead. No database or Redis is touched: the enabled set is read once per request,
not per hook call, and trivial hooks never open ``ctx.db``. Times are this process's
CPU time (medians of several runs), so other load on the machine barely moves them.

    uv run --frozen python bench/plugin_dispatch.py [--calls N] [--repeats R] [--output FILE]

Prints a table and writes JSON (default ``bench/results/plugin_dispatch.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from orbit.plugins.api import ORBIT_PLUGIN_API_VERSION, Event, Manifest, hookimpl
from orbit.plugins.host import Installation, PluginHost, TenantPlugins
from orbit.plugins.registry import PluginRegistry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orbit.plugins.api import PluginContext

PLUGINS = 20
TARGET_MICROSECONDS = 50.0
TENANT = UUID("01938f0c-0000-7000-8000-000000000001")
RESULTS = Path(__file__).parent / "results" / "plugin_dispatch.json"


def _plugin(index: int) -> types.ModuleType:
    """A plugin module, as an entry point would load it, with trivial hooks."""
    module = types.ModuleType(f"bench_plugin_{index:02d}")

    async def orbit_event(ctx: PluginContext, event: Event) -> None:
        return None

    def orbit_validate_settings(settings: dict[str, Any]) -> list[str]:
        return []

    module.orbit_event = hookimpl(orbit_event)  # type: ignore[attr-defined]
    module.orbit_validate_settings = hookimpl(orbit_validate_settings)  # type: ignore[attr-defined]
    module.MANIFEST = Manifest(  # type: ignore[attr-defined]
        id=f"bench_{index:02d}",
        name=f"Bench {index}",
        version="1.0.0",
        summary="A trivial plugin",
        author="bench",
        license="MIT",
        requires_orbit=">=0",
        events=("contact.created",),
    )
    return module


def tenant_plugins(count: int = PLUGINS) -> TenantPlugins:
    """``count`` trivial plugins, all enabled for one workspace."""
    registry = PluginRegistry()
    modules = [_plugin(i) for i in range(count)]
    for module in modules:
        listing = registry.load(f"bench ({module.__name__})", lambda module=module: module)
        assert listing.loaded, listing.problem  # noqa: S101 - the bench's own set-up
    # No database or Redis: trivial hooks never open ctx.db and never fail.
    host = PluginHost(registry, cast("Any", None), cast("Any", None), cast("Any", None))
    installations = {m.MANIFEST.id: Installation(m.MANIFEST.id, {}, frozenset()) for m in modules}
    return TenantPlugins(host, TENANT, "bench", installations)


async def _time(calls: int, once: Callable[[], Awaitable[object]]) -> float:
    """CPU seconds per call of ``once``, over ``calls`` calls.

    CPU time of this process rather than wall time: nothing here waits on I/O, and on a
    shared machine wall time also counts the time other processes held the CPU.
    """
    started = time.process_time()
    for _ in range(calls):
        await once()
    return (time.process_time() - started) / calls


async def measure(calls: int = 2000, repeats: int = 7) -> list[dict[str, Any]]:
    """Per hook kind: direct and dispatched time per hook call, and the overhead (µs)."""
    plugins = tenant_plugins()
    event = Event(UUID(int=1), "contact.created", datetime.now(UTC), {"id": str(UUID(int=2))})
    contexts = {p: plugins.context(p) for p in sorted(plugins.enabled)}
    functions = {
        hook: [(getattr(plugins.host.registry.plugin(p), hook), contexts[p]) for p in contexts]
        for hook in ("orbit_event", "orbit_validate_settings")
    }

    async def direct_async() -> None:
        for function, ctx in functions["orbit_event"]:
            await function(ctx=ctx, event=event)

    async def direct_sync() -> None:
        for function, _ in functions["orbit_validate_settings"]:
            function(settings={})

    kinds: list[tuple[str, Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]] = [
        (
            "async hook (orbit_event)",
            direct_async,
            lambda: plugins.call("orbit_event", event=event),
        ),
        (
            "sync hook (orbit_validate_settings)",
            direct_sync,
            lambda: plugins.call("orbit_validate_settings", settings={}),
        ),
    ]
    rows = []
    for name, direct, dispatched in kinds:
        await _time(calls // 10 or 1, direct)  # warm up: caches, metric children
        await _time(calls // 10 or 1, dispatched)
        direct_s, dispatched_s = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            direct_s.append(await _time(calls, direct))
            dispatched_s.append(await _time(calls, dispatched))
        direct_us = statistics.median(direct_s) * 1e6
        dispatched_us = statistics.median(dispatched_s) * 1e6
        overhead = dispatched_us - direct_us
        rows.append(
            {
                "hook": name,
                "plugins": PLUGINS,
                "direct_us_per_call": round(direct_us, 2),
                "dispatched_us_per_call": round(dispatched_us, 2),
                "overhead_us_per_call": round(overhead, 2),
                "overhead_us_per_plugin": round(overhead / PLUGINS, 3),
                "target_us_per_call": TARGET_MICROSECONDS,
                "within_target": overhead < TARGET_MICROSECONDS,
            }
        )
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    header = (
        f"{'hook call to ' + str(PLUGINS) + ' plugins':<38} {'direct µs':>10} "
        f"{'dispatched µs':>14} {'overhead µs':>12} {'per plugin':>11}  target"
    )
    lines = [header, "-" * len(header)]
    lines += [
        f"{r['hook']:<38} {r['direct_us_per_call']:>10.2f} {r['dispatched_us_per_call']:>14.2f} "
        f"{r['overhead_us_per_call']:>12.2f} {r['overhead_us_per_plugin']:>11.3f}  "
        f"{'<' if r['within_target'] else '>='} {r['target_us_per_call']:.0f} µs"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="hook calls per timing")
    parser.add_argument("--repeats", type=int, default=7, help="timings per kind (median)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.calls, args.repeats))
    print(report(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "plugin_dispatch",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "plugin_api": ORBIT_PLUGIN_API_VERSION,
                "calls": args.calls,
                "repeats": args.repeats,
                "results": rows,
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
