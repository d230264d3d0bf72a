"""Finding, checking and loading plugins into the one global pluggy ``PluginManager``.

Plugins are Python distributions that name a module in the ``orbit.plugins``
entry-point group. A plugin is loaded only when its module imports, its manifest is
valid, its ``requires_orbit`` range admits this Orbit, its id is not taken and its
hook implementations match the hook specifications; otherwise it is listed as
incompatible with the reason, and Orbit carries on without it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from orbit.platform.version import ORBIT_VERSION
from orbit.plugins import hookspecs
from orbit.plugins.manifest import Manifest, ManifestError, incompatibility, parse_manifest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "orbit.plugins"
BUILTIN: tuple[str, ...] = (
    # one line per builtin plugin package, e.g. "orbit.plugins.builtin.invoicing",
    "orbit.plugins.builtin.email_marketing",
    "orbit.plugins.builtin.invoicing",
    "orbit.plugins.builtin.projects",
)
"""Modules of the plugins that ship with Orbit (``orbit.plugins.builtin.*``)."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One plugin Orbit found, loaded or not (the marketplace lists both)."""

    id: str
    source: str
    """Where it came from: the distribution and entry point, or ``builtin``."""
    manifest: Manifest | None
    problem: str | None = None
    """Why it is not loaded; ``None`` for a loaded plugin."""

    @property
    def loaded(self) -> bool:
        """Whether the plugin's hooks run."""
        return self.problem is None


def declared_hookspecs(manifest: Manifest) -> ModuleType:
    """The module of hooks a plugin declares, checked: each is ``<plugin id>_…``.

    Raises ``ValueError`` (or ``ImportError``) naming what is wrong.
    """
    assert manifest.hookspecs is not None  # noqa: S101 - callers check
    module = importlib.import_module(manifest.hookspecs)
    marker = f"{hookspecs.hookspec.project_name}_spec"
    names = [name for name, value in vars(module).items() if hasattr(value, marker)]
    if not names:
        raise ValueError(f"hookspecs: {manifest.hookspecs} declares no @hookspec function")
    prefix = f"{manifest.id}_"
    wrong = sorted(name for name in names if not name.startswith(prefix))
    if wrong:
        raise ValueError(
            f"hookspecs: {', '.join(wrong)} must be named {prefix}… (the plugin's own hooks)"
        )
    return module


class PluginRegistry:
    """The global plugin manager and what discovery found."""

    def __init__(self, orbit_version: str = ORBIT_VERSION) -> None:
        self.orbit_version = orbit_version
        self.pm = pluggy.PluginManager("orbit")
        self.pm.add_hookspecs(hookspecs)
        self.listings: dict[str, Listing] = {}
        self._subsets: dict[tuple[str, frozenset[str]], Any] = {}

    @classmethod
    def discover(
        cls,
        *,
        orbit_version: str = ORBIT_VERSION,
        found: Iterable[EntryPoint] | None = None,
        builtin: Iterable[str] = BUILTIN,
    ) -> PluginRegistry:
        """Load the builtin plugins and every ``orbit.plugins`` entry point."""
        registry = cls(orbit_version)
        for module in builtin:
            registry.load(f"builtin {module}", partial(importlib.import_module, module))
        points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
        for point in points:
            dist = point.dist.name if point.dist is not None else "?"
            registry.load(f"{dist} ({point.name} = {point.value})", point.load)
        return registry

    def load(self, source: str, obtain: Callable[[], Any]) -> Listing:
        """Import one plugin, check it and register it; its listing either way."""
        checked = self._checked(source, obtain)
        if isinstance(checked, Listing):
            return checked
        plugin, manifest = checked
        try:
            if manifest.hookspecs:
                self.pm.add_hookspecs(declared_hookspecs(manifest))
            self.pm.register(plugin, name=manifest.id)
            self._check_pending()
        except (pluggy.PluginValidationError, ValueError, ImportError) as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            return self._refuse(manifest.id, source, manifest, f"bad hook: {exc}")
        listing = Listing(id=manifest.id, source=source, manifest=manifest)
        self.listings[manifest.id] = listing
        self._subsets.clear()
        log.info("plugin %s %s loaded from %s", manifest.id, manifest.version, source)
        return listing

    def _check_pending(self) -> None:
        """Every implementation has a specification, except of plugins' own hooks.

        An implementation of ``<other plugin>_…`` waits for that plugin's hookspecs
        (pluggy checks it against them when they are added); Orbit's ``orbit_…`` hooks
        must all exist.
        """
        for name, caller in vars(self.pm.hook).items():
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if name.startswith(("orbit_", f"{impl.plugin_name}_")):
                    raise pluggy.PluginValidationError(
                        impl.plugin, f"unknown hook {name!r} in plugin {impl.plugin_name}"
                    )

    def _checked(self, source: str, obtain: Callable[[], Any]) -> tuple[object, Manifest] | Listing:
        """The plugin and its manifest, or the listing of why it cannot load."""
        name = source.split(maxsplit=1)[0]
        try:
            plugin = obtain()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop Orbit
            return self._refuse(name, source, None, f"import failed: {exc!r}")
        raw = getattr(plugin, "MANIFEST", None)
        if raw is None:
            return self._refuse(name, source, None, "no MANIFEST")
        try:
            manifest = parse_manifest(raw, source=source)
        except ManifestError as exc:
            return self._refuse(exc.plugin, source, None, "invalid manifest: " + str(exc))
        if manifest.id in self.listings:
            return self._refuse(
                manifest.id, source, manifest, f"id {manifest.id!r} is already taken"
            )
        reason = incompatibility(manifest, self.orbit_version)
        if reason is not None:
            return self._refuse(manifest.id, source, manifest, reason)
        return plugin, manifest

    def _refuse(self, plugin_id: str, source: str, manifest: Manifest | None, why: str) -> Listing:
        log.warning("plugin %s not loaded (%s): %s", plugin_id, source, why)
        key = plugin_id if plugin_id not in self.listings else f"{plugin_id}@{source}"
        listing = Listing(id=plugin_id, source=source, manifest=manifest, problem=why)
        self.listings[key] = listing
        return listing

    def manifest(self, plugin_id: str) -> Manifest | None:
        """The manifest of a loaded plugin."""
        listing = self.listings.get(plugin_id)
        return listing.manifest if listing is not None and listing.loaded else None

    @property
    def loaded(self) -> list[Manifest]:
        """Manifests of the loaded plugins, by id."""
        return sorted(
            (x.manifest for x in self.listings.values() if x.loaded and x.manifest is not None),
            key=lambda m: m.id,
        )

    def plugin(self, plugin_id: str) -> object | None:
        """The registered plugin object (module) of ``plugin_id``."""
        return self.pm.get_plugin(plugin_id)

    def caller(self, hook: str, enabled: frozenset[str]) -> Any:
        """``hook`` restricted to the plugins in ``enabled``, cached per enabled set."""
        key = (hook, enabled)
        subset = self._subsets.get(key)
        if subset is None:
            others = [
                p for name, p in self.pm.list_name_plugin() if name not in enabled and p is not None
            ]
            subset = self.pm.subset_hook_caller(hook, remove_plugins=others)
            if len(self._subsets) > 10_000:  # noqa: PLR2004 - bound the cache, not a tuning knob
                self._subsets.clear()
            self._subsets[key] = subset
        return subset

    def all_results(self, hook: str) -> list[tuple[str, Any]]:
        """Call a tenant-less hook (routes, jobs) on every loaded plugin, isolated.

        A plugin that raises here is left out of the answer and logged.
        """
        results: list[tuple[str, Any]] = []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            try:
                value = impl.function()
            except Exception:
                log.exception("plugin %s: %s failed", impl.plugin_name, hook)
                continue
            if value is not None:
                results.append((impl.plugin_name, value))
        return results
