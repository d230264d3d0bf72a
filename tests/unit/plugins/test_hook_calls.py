"""Isolated hook calls: coroutines that finish at once run without a timer, the others
under their budget; counts and latency reach /metrics from plain counters."""

from __future__ import annotations

import asyncio
import contextvars
import types
from typing import Any, cast
from uuid import UUID

from prometheus_client import generate_latest

from orbit.plugins.api import Manifest, hookimpl
from orbit.plugins.host import Installation, PluginHost, TenantPlugins
from orbit.plugins.registry import PluginRegistry

REQUEST = contextvars.ContextVar("request", default="none")


def _plugin(plugin_id: str, orbit_event: Any) -> types.ModuleType:
    module = types.ModuleType(plugin_id)
    module.orbit_event = hookimpl(orbit_event)  # type: ignore[attr-defined]
    module.MANIFEST = Manifest(  # type: ignore[attr-defined]
        id=plugin_id,
        name=plugin_id,
        version="1.0.0",
        summary="test",
        author="tests",
        license="MIT",
        requires_orbit=">=0",
    )
    return module


async def at_once(event: Any) -> str:
    return f"at once {event} {REQUEST.get()}"


async def after_waiting(event: Any) -> str:
    for _ in range(3):
        await asyncio.sleep(0)
    return f"waited {event} {REQUEST.get()}"


async def too_slow(event: Any) -> str:
    await asyncio.sleep(5)
    return "never"


async def raises_later(event: Any) -> str:
    await asyncio.sleep(0)
    raise RuntimeError("boom")


def sync_answer(event: Any) -> str:
    return "sync"


def _tenant() -> TenantPlugins:
    registry = PluginRegistry()
    hooks = {
        "a_at_once": at_once,
        "b_waiting": after_waiting,
        "c_slow": too_slow,
        "d_raises": raises_later,
        "e_sync": sync_answer,
    }
    for plugin_id, hook in hooks.items():
        module = _plugin(plugin_id, hook)
        assert registry.load(plugin_id, lambda module=module: module).loaded
    # No Redis: counting a failure logs a warning instead (the breaker has its own tests).
    host = PluginHost(
        registry,
        cast("Any", None),
        cast("Any", None),
        cast("Any", None),
        budgets={"orbit_event": 0.2},
    )
    installations = {p: Installation(p, {}, frozenset()) for p in hooks}
    return TenantPlugins(host, UUID(int=1), "t", installations)


async def test_each_plugin_answers_or_fails_on_its_own() -> None:
    plugins = _tenant()
    REQUEST.set("req-1")
    answers = {a.plugin_id: a.value for a in await plugins.call("orbit_event", event="e1")}
    # The caller's context reaches the hook before and after it waits.
    assert answers == {
        "a_at_once": "at once e1 req-1",
        "b_waiting": "waited e1 req-1",
        "e_sync": "sync",
    }
    ok, value = await plugins.call_one("orbit_event", "c_slow", event="e2")
    assert (ok, value) == (False, None)


async def test_calls_reach_the_metrics_exposition() -> None:
    plugins = _tenant()
    for _ in range(2):
        await plugins.call("orbit_event", event="e")
    text = generate_latest(plugins.host.metrics.registry).decode()
    calls = 'orbit_plugin_hook_calls_total{hook="orbit_event",outcome="%s",plugin="%s"} 2.0'
    assert calls % ("ok", "a_at_once") in text
    assert calls % ("ok", "b_waiting") in text
    assert calls % ("timeout", "c_slow") in text
    assert calls % ("error", "d_raises") in text
    count = 'orbit_plugin_hook_duration_seconds_count{hook="orbit_event",plugin="c_slow"} 2.0'
    assert count in text
    # The slow one ran into its 0.2 s budget: in the 0.5 s bucket, not the 0.1 s one.
    bucket = 'orbit_plugin_hook_duration_seconds_bucket{hook="orbit_event",le="%s",plugin="c_slow"}'
    assert f"{bucket % '0.1'} 0.0" in text
    assert f"{bucket % '0.5'} 2.0" in text
    assert f"{bucket % '+Inf'} 2.0" in text
