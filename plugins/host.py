"""Calling plugins for one tenant, each call isolated, timed, counted and breaker-guarded.

:meth:`PluginHost.for_tenant` reads which plugins the tenant enabled (one indexed
query in the current transaction) and returns a :class:`TenantPlugins` whose
:meth:`~TenantPlugins.call` runs a hook on exactly those plugins, through pluggy's
``subset_hook_caller`` cached per enabled set.

Each implementation runs on its own: an exception, a coroutine that outlives the
hook's time budget (cancelled) or a synchronous call that overran it is logged with
the plugin id and tenant, counted in Prometheus, and never reaches the caller or the
next plugin. Failures are counted per tenant and plugin in Redis; ``threshold`` of
them within ``window`` trip the breaker: the plugin is disabled for that tenant (in
its own transaction) and the tenant's admins get a notification.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import inspect
import itertools
import json
import logging
import time
import types
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from orbit.plugins.context import PluginContext, ScheduledJob

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
    from uuid import UUID

    from redis.asyncio import Redis

    from orbit.platform.db.engine import Database
    from orbit.plugins.links import PluginLinks
    from orbit.plugins.registry import PluginRegistry
    from orbit.plugins.secrets import SettingsCipher

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 2.0
BUDGETS: dict[str, float] = {
    "orbit_ui_slot": 0.5,
    "orbit_dashboard_widgets": 0.5,
    "orbit_timeline_entries": 0.5,
    "orbit_event": 10.0,
    "orbit_contact_export": 10.0,
    "orbit_contact_erase": 10.0,
}
JOB_BUDGET = 60.0
"""Seconds a scheduled job (hook name ``job:<name>``) may run."""
"""Seconds each call of a hook may take; pages wait on the short ones."""

BREAKER_THRESHOLD = 5
BREAKER_WINDOW = 600
"""Failures of one plugin for one tenant within this many seconds that disable it."""

CALL_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class _CallStats:
    """Calls of one plugin's hook with one outcome: count, total seconds, per bucket."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(CALL_BUCKETS) + 1)  # the last one: over every bucket


class _HookCallCollector(Collector):
    """Exposes the plain counters :class:`PluginMetrics` keeps as Prometheus families."""

    def __init__(self, stats: dict[tuple[str, str, str], _CallStats]) -> None:
        self._stats = stats

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "orbit_plugin_hook_calls",
                "Plugin hook calls by plugin, hook and outcome (ok, error, timeout).",
                labels=["plugin", "hook", "outcome"],
            ),
            HistogramMetricFamily(
                "orbit_plugin_hook_duration_seconds",
                "Time one plugin took in one hook call.",
                labels=["plugin", "hook"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        """The two families, without samples (for the registry's name checks)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Call counts per outcome; latency per plugin and hook, all outcomes together."""
        calls, latency = self._families()
        per_hook: dict[tuple[str, str], _CallStats] = {}
        for (plugin, hook, outcome), stats in list(self._stats.items()):
            calls.add_metric([plugin, hook, outcome], stats.count)
            total = per_hook.setdefault((plugin, hook), _CallStats())
            total.seconds += stats.seconds
            total.buckets = [a + b for a, b in zip(total.buckets, stats.buckets, strict=True)]
        bounds = [*(str(b) for b in CALL_BUCKETS), "+Inf"]  # as prometheus_client writes them
        for (plugin, hook), total in per_hook.items():
            cumulative = list(itertools.accumulate(total.buckets))
            latency.add_metric(
                [plugin, hook], list(zip(bounds, cumulative, strict=True)), total.seconds
            )
        return (calls, latency)


class PluginMetrics:
    """Per-plugin call counts, failures and latency (served at ``/metrics``).

    Hook calls are counted in plain Python numbers and turned into Prometheus
    families only when ``/metrics`` is scraped: this runs on every call of every
    plugin, where ``prometheus_client``'s locked counters cost more than the call.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stats: dict[tuple[str, str, str], _CallStats] = {}
        self.registry.register(_HookCallCollector(self._stats))
        self.trips = Counter(
            "orbit_plugin_breaker_trips",
            "Times a plugin was disabled for a tenant after repeated failures.",
            ["plugin"],
            registry=self.registry,
        )

    def observe(self, plugin: str, hook: str, outcome: str, seconds: float) -> None:
        """Count one call."""
        key = (plugin, hook, outcome)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = _CallStats()
        stats.count += 1
        stats.seconds += seconds
        stats.buckets[bisect.bisect_left(CALL_BUCKETS, seconds)] += 1


@dataclass(frozen=True, slots=True)
class Installation:
    """A plugin as one tenant enabled it."""

    plugin_id: str
    settings: dict[str, Any]
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class CallResult:
    """One plugin's answer to one hook call."""

    plugin_id: str
    value: Any


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, Any, Any]:
    """Await the rest of a ``coroutine`` already stepped once (it yielded ``waiting``).

    Passes what the event loop sends or throws (a cancellation at the budget's end)
    through to the coroutine, as ``await`` does.
    """
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:  # noqa: BLE001 - cancellation and all: the coroutine's
            try:
                waiting = coroutine.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                waiting = coroutine.send(sent)
            except StopIteration as done:
                return done.value


async def _awaited(value: Awaitable[Any], budget: float) -> Any:
    """What ``value`` (a hook's awaitable answer) resolves to, within ``budget`` seconds."""
    if type(value) is CoroutineType:
        # Step the coroutine once: most hooks finish without waiting on anything, and
        # those need no timer (arming one costs more than the plugin's own work).
        try:
            waiting = value.send(None)
        except StopIteration as done:
            return done.value
        async with asyncio.timeout(budget):
            return await _resume(value, waiting)
    async with asyncio.timeout(budget):
        return await value


class HookOverrunError(TimeoutError):
    """A synchronous hook implementation ran past its budget (it could not be cancelled)."""


class PluginHost:
    """Runs hooks for tenants: the registry plus isolation, metrics and the breaker."""

    def __init__(
        self,
        registry: PluginRegistry,
        db: Database,
        redis: Redis,
        cipher: SettingsCipher,
        *,
        threshold: int = BREAKER_THRESHOLD,
        window: int = BREAKER_WINDOW,
        budgets: Mapping[str, float] | None = None,
        links: PluginLinks | None = None,
    ) -> None:
        self.registry = registry
        self.db = db
        self.redis = redis
        self.cipher = cipher
        self.threshold = threshold
        self.window = window
        self.budgets = {**BUDGETS, **(budgets or {})}
        self.metrics = PluginMetrics()
        self.links = links
        """Signs plugins' tokens and builds their absolute URLs (``ctx.sign``, ``ctx.url``)."""
        self._jobs: list[tuple[str, ScheduledJob]] | None = None
        self.on_trip: Callable[[UUID, str], Coroutine[Any, Any, None]] | None = None
        """Disables a plugin for a tenant and tells its admins (set by the plugin service)."""

    def scheduled_jobs(self) -> list[tuple[str, ScheduledJob]]:
        """Every loaded plugin's periodic jobs (asked once; plugins declare them statically)."""
        if self._jobs is None:
            self._jobs = [
                (plugin_id, job)
                for plugin_id, jobs in self.registry.all_results("orbit_scheduled_jobs")
                for job in jobs
                if isinstance(job, ScheduledJob)
            ]
        return self._jobs

    async def installations(self, tenant_id: UUID) -> dict[str, Installation]:
        """The loaded plugins the tenant enabled, with their settings and scopes."""
        if not self.registry.listings:
            return {}
        rows = await self.db.fetch(
            "SELECT plugin_id, settings, secrets, granted_scopes FROM plugin_installations "
            "WHERE tenant_id = $1 AND enabled",
            tenant_id,
        )
        found: dict[str, Installation] = {}
        for row in rows:
            manifest = self.registry.manifest(row["plugin_id"])
            if manifest is None:
                continue  # installed once, no longer loaded here: skipped, not an error
            settings = {s.name: s.default for s in manifest.settings if s.default is not None}
            settings.update(json.loads(row["settings"]))
            if row["secrets"] is not None:
                settings.update(self.cipher.decrypt(row["secrets"]))
            found[row["plugin_id"]] = Installation(
                row["plugin_id"], settings, frozenset(row["granted_scopes"])
            )
        return found

    async def for_tenant(self, tenant_id: UUID, tenant_slug: str) -> TenantPlugins:
        """The tenant's enabled plugins, ready to call."""
        return TenantPlugins(self, tenant_id, tenant_slug, await self.installations(tenant_id))

    async def run(
        self,
        hook: str,
        ctx: PluginContext,
        function: Callable[..., Any],
        kwargs: dict[str, Any],
    ) -> tuple[bool, Any]:
        """Call one implementation isolated; whether it succeeded, and its value."""
        budget = self.budgets.get(hook)
        if budget is None:
            budget = JOB_BUDGET if hook.startswith("job:") else DEFAULT_BUDGET
        plugin_id = ctx.plugin_id
        started = time.perf_counter()
        outcome = "ok"
        value: Any = None
        try:
            value = function(**kwargs)
            if type(value) is CoroutineType or inspect.isawaitable(value):
                value = await _awaited(value, budget - (time.perf_counter() - started))
            if time.perf_counter() - started > budget:
                raise HookOverrunError  # noqa: TRY301 - handled with the async overruns below
        except TimeoutError:
            outcome, value = "timeout", None
            log.warning(
                "plugin %s: %s ran over its %ss budget (tenant %s)",
                plugin_id,
                hook,
                budget,
                ctx.tenant_slug,
            )
        except Exception:
            outcome, value = "error", None
            log.exception("plugin %s: %s failed (tenant %s)", plugin_id, hook, ctx.tenant_slug)
        if ctx.db.opened:
            try:
                await ctx.db.settle(ok=outcome == "ok")
            except Exception:
                log.exception("plugin %s: could not end its savepoint", plugin_id)
                outcome = "error"
        self.metrics.observe(plugin_id, hook, outcome, time.perf_counter() - started)
        if outcome != "ok":
            await self._failed(ctx.tenant_id, plugin_id)
        return outcome == "ok", value

    async def _failed(self, tenant_id: UUID, plugin_id: str) -> None:
        key = f"orbit:plugin-failures:{tenant_id}:{plugin_id}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
                count, _ = await pipe.execute()
        except Exception:  # noqa: BLE001 - a Redis outage must not fail the request
            log.warning("plugin %s: could not count a failure (Redis)", plugin_id)
            return
        if int(count) == self.threshold:
            self.metrics.trips.labels(plugin_id).inc()
            log.error(
                "plugin %s: %d failures in %ss for tenant %s; disabling it there",
                plugin_id,
                count,
                self.window,
                tenant_id,
            )
            if self.on_trip is not None:
                try:
                    # In a fresh context: the caller's transaction stays out of the
                    # breaker's own (which must commit even if the caller rolls back).
                    await asyncio.create_task(
                        self.on_trip(tenant_id, plugin_id), context=contextvars.Context()
                    )
                except Exception:
                    log.exception("plugin %s: the circuit breaker could not disable it", plugin_id)

    async def reset_failures(self, tenant_id: UUID, plugin_id: str) -> None:
        """Forget counted failures (an admin enabled the plugin again)."""
        await self.redis.delete(f"orbit:plugin-failures:{tenant_id}:{plugin_id}")


class TenantPlugins:
    """One tenant's enabled plugins for the current transaction."""

    def __init__(
        self,
        host: PluginHost,
        tenant_id: UUID,
        tenant_slug: str,
        installations: dict[str, Installation],
    ) -> None:
        self.host = host
        self.tenant_id = tenant_id
        self.tenant_slug = tenant_slug
        self.installations = installations
        self.enabled = frozenset(installations)
        self._contexts: dict[str, PluginContext] = {}

    def context(self, plugin_id: str) -> PluginContext:
        """The context ``plugin_id`` acts in for this tenant."""
        ctx = self._contexts.get(plugin_id)
        if ctx is None:
            installation = self.installations[plugin_id]
            manifest = self.host.registry.manifest(plugin_id)
            ctx = self._contexts[plugin_id] = PluginContext(
                plugin_id=plugin_id,
                tenant_id=self.tenant_id,
                tenant_slug=self.tenant_slug,
                settings=installation.settings,
                scopes=installation.scopes,
                core_db=self.host.db,
                links=self.host.links,
                emits=frozenset(manifest.emits) if manifest else frozenset(),
                plugins=self,
            )
        return ctx

    def implementers(self, hook: str) -> list[str]:
        """Enabled plugins that implement ``hook``, in call order."""
        if not self.enabled:
            return []
        caller = self.host.registry.caller(hook, self.enabled)
        return [impl.plugin_name for impl in reversed(caller.get_hookimpls())]

    async def call_one(self, hook: str, plugin_id: str, **kwargs: Any) -> tuple[bool, Any]:
        """Run ``hook`` on one enabled plugin: whether it succeeded (or has no such hook)."""
        caller = self.host.registry.caller(hook, self.enabled)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin_id:
                ctx = self.context(plugin_id)
                available = {**kwargs, "ctx": ctx}
                args = {name: available[name] for name in impl.argnames}
                return await self.host.run(hook, ctx, impl.function, args)
        return True, None

    async def call(
        self, hook: str, *, only: str | None = None, first: bool = False, **kwargs: Any
    ) -> list[CallResult]:
        """Run ``hook`` on every enabled plugin (or ``only`` that one); their answers.

        Plugins that fail or answer ``None`` are left out; with ``first``, the calls
        stop at the first answer.
        """
        if not self.enabled:
            return []
        caller = self.host.registry.caller(hook, self.enabled)
        results: list[CallResult] = []
        for impl in reversed(caller.get_hookimpls()):
            plugin_id = impl.plugin_name
            if only is not None and plugin_id != only:
                continue
            ctx = self._contexts.get(plugin_id) or self.context(plugin_id)
            args = {name: ctx if name == "ctx" else kwargs[name] for name in impl.argnames}
            ok, value = await self.host.run(hook, ctx, impl.function, args)
            if ok and value is not None:
                results.append(CallResult(plugin_id, value))
                if first:
                    break
        return results
