"""A plugin's manifest: who it is, what Orbit it needs, what it may touch, what it costs.

A plugin module exposes ``MANIFEST`` (a :class:`Manifest` or a plain ``dict`` with the
same keys). :func:`parse_manifest` checks it completely and reports every problem at
once, so the marketplace can list an invalid plugin as incompatible with the reason
instead of loading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from orbit.platform.events.outbox import EVENT_TYPES, is_plugin_event_type

PLUGIN_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
"""Plugin ids: lower-case, start with a letter, 2–40 characters (they name URLs and tables)."""

PLUGIN_SCOPES = frozenset(
    {
        "contacts:read",
        "contacts:write",
        "companies:read",
        "companies:write",
        "deals:read",
        "deals:write",
        "activities:read",
        "activities:write",
        "tasks:read",
        "tasks:write",
        "users:read",
        "mail:send",
    }
)
"""Scopes a plugin may ask for: the CRM data an admin grants it when enabling."""

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "contacts:read": "Read contacts",
    "contacts:write": "Change contacts and their tags",
    "companies:read": "Read companies",
    "companies:write": "Change companies",
    "deals:read": "Read deals",
    "deals:write": "Move deals between stages and mark them won",
    "activities:read": "Read the timeline's activities",
    "activities:write": "Log activities",
    "tasks:read": "Read tasks",
    "tasks:write": "Create tasks for members",
    "users:read": "See the workspace's members: names, email addresses, roles, time zones",
    "mail:send": "Send email from the workspace (counts against the plan's emails a month)",
}
"""What each scope lets a plugin do, as the consent page says it (English msgids)."""

UI_SLOTS = frozenset({"contact.sidebar", "deal.sidebar", "company.sidebar", "dashboard"})
"""Named places in Orbit's pages a plugin may fill (``orbit_ui_slot``)."""

SETTING_TYPES = frozenset({"string", "integer", "number", "boolean", "secret", "choice"})

REQUIRED = ("id", "name", "version", "summary", "author", "license", "requires_orbit")


class ManifestError(ValueError):
    """A manifest that cannot be loaded; ``problems`` names each field that is wrong."""

    def __init__(self, plugin: str, problems: list[str]) -> None:
        super().__init__(f"plugin {plugin}: " + "; ".join(problems))
        self.plugin = plugin
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of a plugin's settings form.

    ``type`` is ``string``, ``integer``, ``number``, ``boolean``, ``secret`` (stored
    encrypted, never shown again) or ``choice`` (one of ``choices``).
    """

    name: str
    label: str
    type: str = "string"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a plugin declares about itself (see docs/plugins.md)."""

    id: str
    name: str
    version: str
    summary: str
    author: str
    license: str
    requires_orbit: str
    """A PEP 440 version range, e.g. ``">=0.1,<1"``."""
    homepage: str = ""
    scopes: tuple[str, ...] = ()
    """CRM data the plugin reads or writes for a tenant; granted by the admin on enabling."""
    settings: tuple[Setting, ...] = ()
    slots: tuple[str, ...] = ()
    """UI slots the plugin fills."""
    events: tuple[str, ...] = ()
    """Event types delivered to its ``orbit_event``: Orbit's domain events and other
    plugins' declared ones (``"*"``: all of them)."""
    emits: tuple[str, ...] = ()
    """Event types the plugin emits with ``ctx.events.emit``: ``<plugin id>.<name>``."""
    hookspecs: str | None = None
    """Dotted path of a module of ``@hookspec`` functions named ``<plugin id>_…``: hooks
    other plugins implement and this one calls with ``ctx.hooks``."""
    price_per_seat: Decimal | None = None
    """Monthly price per seat in USD; ``None`` is a free plugin."""
    readme: str = ""
    """Markdown shown on the marketplace detail page."""
    screenshots: tuple[str, ...] = ()
    migrations: str | None = None
    """Dotted path of the plugin's Piccolo app module (``…piccolo_app``) with its tables."""
    tables: tuple[str, ...] = ()
    """The plugin's tenant-owned tables: uninstalling with "delete data" empties them."""
    nav: tuple[str, str] | None = None
    """``(label, path)``: a link to its page ``/t/{slug}/apps/{id}{path}`` in the workspace
    navigation while the plugin is enabled there."""

    @property
    def free(self) -> bool:
        """Whether the plugin costs nothing."""
        return self.price_per_seat is None

    def setting(self, name: str) -> Setting | None:
        """The settings field called ``name``."""
        return next((s for s in self.settings if s.name == name), None)


def _strings(value: Any, name: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        problems.append(f"{name}: must be a list of strings")
        return ()
    return tuple(value)


def _setting(raw: Any, index: int, problems: list[str]) -> Setting | None:
    where = f"settings[{index}]"
    if isinstance(raw, Setting):
        raw = {f.name: getattr(raw, f.name) for f in fields(Setting)}
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table with name, label and type")
        return None
    unknown = set(raw) - {f.name for f in fields(Setting)}
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    name, label, kind = raw.get("name"), raw.get("label"), raw.get("type", "string")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        problems.append(f"{where}.name: a lower-case identifier is required")
    if not isinstance(label, str) or not label.strip():
        problems.append(f"{where}.label: is required")
    if kind not in SETTING_TYPES:
        problems.append(f"{where}.type: {kind!r} is not one of {', '.join(sorted(SETTING_TYPES))}")
    choices = _strings(raw.get("choices"), f"{where}.choices", problems)
    if kind == "choice" and not choices:
        problems.append(f"{where}.choices: a choice setting needs choices")
    if unknown or not isinstance(name, str) or not isinstance(label, str):
        return None
    return Setting(
        name=name,
        label=label,
        type=str(kind),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        choices=choices,
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        help=str(raw.get("help", "")),
    )


def _price(value: Any, problems: list[str]) -> Decimal | None:
    if value in (None, "free", 0, "0"):
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        problems.append(f"price_per_seat: {value!r} is not a number")
        return None
    if price <= 0 or price != price.quantize(Decimal("0.01")):
        problems.append("price_per_seat: a positive amount with at most two decimals")
        return None
    return price


NAV_PATH = re.compile(r"/(?:[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?)?")
"""A nav link's path under the plugin's pages: ``/``, ``/campaigns``, ``/quotes/open``."""
MAX_NAV_LABEL = 30


def _nav(value: Any, problems: list[str]) -> tuple[str, str] | None:
    if value is None:
        return None
    if (
        isinstance(value, str)
        or not isinstance(value, tuple | list)
        or len(value) != 2  # noqa: PLR2004 - a pair
        or not all(isinstance(v, str) for v in value)
    ):
        problems.append('nav: must be a pair (label, path), e.g. ("Campaigns", "/")')
        return None
    label, path = value[0].strip(), value[1]
    if not label or len(label) > MAX_NAV_LABEL:
        problems.append(f"nav: the label must be 1-{MAX_NAV_LABEL} characters")
    if not NAV_PATH.fullmatch(path):
        problems.append(
            f"nav: the path {path!r} must start with '/' and name one of the plugin's pages"
        )
    return (label, path)


def _identity_problems(raw: dict[str, Any]) -> list[str]:
    """Problems with the keys, id, version and Orbit range."""
    problems: list[str] = []
    unknown = set(raw) - {f.name for f in fields(Manifest)}
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    problems += [
        f"{key}: is required"
        for key in REQUIRED
        if not isinstance(raw.get(key), str) or not raw[key].strip()
    ]
    plugin_id = raw.get("id")
    if isinstance(plugin_id, str) and not PLUGIN_ID.match(plugin_id):
        problems.append(
            f"id: {plugin_id!r} must be 2-40 lower-case letters, digits or '_', "
            "starting with a letter"
        )
    if isinstance(raw.get("version"), str):
        try:
            Version(raw["version"])
        except InvalidVersion:
            problems.append(f"version: {raw['version']!r} is not a PEP 440 version")
    if isinstance(raw.get("requires_orbit"), str):
        try:
            SpecifierSet(raw["requires_orbit"])
        except InvalidSpecifier:
            problems.append(
                f"requires_orbit: {raw['requires_orbit']!r} is not a version range "
                "(e.g. '>=0.1,<1')"
            )
    return problems


def parse_manifest(raw: Manifest | dict[str, Any], *, source: str = "?") -> Manifest:
    """A checked :class:`Manifest`; :class:`ManifestError` lists every problem found."""
    if isinstance(raw, Manifest):
        raw = {f.name: getattr(raw, f.name) for f in fields(Manifest)}
    if not isinstance(raw, dict):
        raise ManifestError(source, ["MANIFEST must be a Manifest or a dict"])
    plugin = str(raw.get("id") or source)
    problems = _identity_problems(raw)
    plugin_id = raw.get("id")
    scopes = _strings(raw.get("scopes"), "scopes", problems)
    bad_scopes = sorted(set(scopes) - PLUGIN_SCOPES)
    if bad_scopes:
        problems.append(
            f"scopes: unknown {', '.join(map(repr, bad_scopes))} "
            f"(known: {', '.join(sorted(PLUGIN_SCOPES))})"
        )
    slots = _strings(raw.get("slots"), "slots", problems)
    bad_slots = sorted(set(slots) - UI_SLOTS)
    if bad_slots:
        problems.append(
            f"slots: unknown {', '.join(map(repr, bad_slots))} "
            f"(known: {', '.join(sorted(UI_SLOTS))})"
        )
    raw_settings = raw.get("settings") or ()
    settings = tuple(
        s for i, item in enumerate(raw_settings) if (s := _setting(item, i, problems)) is not None
    )
    names = [s.name for s in settings]
    if len(names) != len(set(names)):
        problems.append("settings: names must be unique")
    price = _price(raw.get("price_per_seat"), problems)
    events = _strings(raw.get("events"), "events", problems)
    problems += [f"events: {why}" for t in events if (why := _subscription_problem(t))]
    emits = _strings(raw.get("emits"), "emits", problems)
    hookspecs = raw.get("hookspecs") or None
    if hookspecs is not None and (
        not isinstance(hookspecs, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", hookspecs)
    ):
        problems.append("hookspecs: must be the dotted path of a module")
    tables = _strings(raw.get("tables"), "tables", problems)
    if isinstance(plugin_id, str):
        prefix = f"{plugin_id}_"
        problems += [
            f"tables: {t!r} must start with the plugin id ({prefix}…)"
            for t in tables
            if not t.startswith(prefix) or not re.fullmatch(r"[a-z0-9_]{1,63}", t)
        ]
        problems += [
            f"emits: {t!r} must be {plugin_id}.<name> (lower-case letters, digits, '_')"
            for t in emits
            if not t.startswith(f"{plugin_id}.") or not is_plugin_event_type(t)
        ]
    nav = _nav(raw.get("nav"), problems)
    if problems:
        raise ManifestError(plugin, problems)
    return Manifest(
        id=raw["id"],
        name=raw["name"],
        version=raw["version"],
        summary=raw["summary"],
        author=raw["author"],
        license=raw["license"],
        requires_orbit=raw["requires_orbit"],
        homepage=str(raw.get("homepage") or ""),
        scopes=scopes,
        settings=settings,
        slots=slots,
        events=events,
        emits=emits,
        hookspecs=hookspecs,
        price_per_seat=price,
        readme=str(raw.get("readme") or ""),
        screenshots=_strings(raw.get("screenshots"), "screenshots", []),
        migrations=raw.get("migrations") or None,
        tables=tables,
        nav=nav,
    )


def _subscription_problem(event_type: str) -> str | None:
    """Why ``events`` cannot list ``event_type``: neither Orbit's nor a plugin's type."""
    if event_type == "*" or event_type in EVENT_TYPES or is_plugin_event_type(event_type):
        return None
    return (
        f"unknown event type {event_type!r}: one of Orbit's "
        f"({', '.join(sorted(EVENT_TYPES))}), a plugin's <plugin id>.<name> or '*'"
    )


def incompatibility(manifest: Manifest, orbit_version: str) -> str | None:
    """Why this Orbit cannot run the plugin, or ``None`` when its range admits it."""
    if Version(orbit_version) in SpecifierSet(manifest.requires_orbit, prereleases=True):
        return None
    return f"needs Orbit {manifest.requires_orbit}; this is Orbit {orbit_version}"


__all__ = [
    "PLUGIN_SCOPES",
    "SCOPE_DESCRIPTIONS",
    "UI_SLOTS",
    "Manifest",
    "ManifestError",
    "Setting",
    "incompatibility",
    "parse_manifest",
]
