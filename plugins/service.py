"""The marketplace for one tenant.

Browse plugins, enable with consent to their scopes, configure, disable, uninstall.
Admins only (``plugins:write``); every change emits a ``plugin.*`` event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orbit.billing.catalog import plan
from orbit.platform.audit.log import record
from orbit.platform.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
)
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.platform.search.normalize import fold
from orbit.plugins.secrets import SecretsUnreadableError
from orbit.tenants.roles import Role, Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.plugins.host import PluginHost
    from orbit.plugins.manifest import Manifest, Setting
    from orbit.plugins.registry import Listing
    from orbit.tenants.context import TenantContext

log = logging.getLogger(__name__)

MAX_TEXT_SETTING = 2000


@dataclass(frozen=True, slots=True)
class PluginEntry:
    """A plugin as one tenant's marketplace shows it."""

    listing: Listing
    installed: bool
    enabled: bool
    installed_count: int
    disabled_reason: str | None = None
    settings: dict[str, Any] | None = None
    """Saved settings (secrets masked), for the configure form."""
    secrets_set: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        """The plugin id."""
        return self.listing.id

    @property
    def manifest(self) -> Manifest | None:
        """The manifest, when it could be read."""
        return self.listing.manifest

    def as_json(self) -> dict[str, Any]:
        """The API's view."""
        m = self.manifest
        return {
            "id": self.id,
            "name": m.name if m else self.id,
            "version": m.version if m else None,
            "summary": m.summary if m else "",
            "author": m.author if m else "",
            "homepage": m.homepage if m else "",
            "license": m.license if m else "",
            "price_per_seat": str(m.price_per_seat) if m and m.price_per_seat else None,
            "scopes": list(m.scopes) if m else [],
            "slots": list(m.slots) if m else [],
            "compatible": self.listing.loaded,
            "problem": self.listing.problem,
            "installed": self.installed,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "installed_count": self.installed_count,
            "settings": self.settings,
            "settings_schema": [
                {
                    "name": s.name,
                    "label": s.label,
                    "type": s.type,
                    "required": s.required,
                    "default": s.default,
                    "choices": list(s.choices),
                    "help": s.help,
                }
                for s in (m.settings if m else ())
            ],
        }


def _number(setting: Setting, value: Any) -> float:
    kind = "an integer" if setting.type == "integer" else "a number"
    if isinstance(value, bool):
        raise ValueError(f"must be {kind}")  # noqa: TRY004 - a reason for the user
    try:
        number: float = int(value) if setting.type == "integer" else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be {kind}") from None
    if setting.minimum is not None and number < setting.minimum:
        raise ValueError(f"must be at least {setting.minimum:g}")
    if setting.maximum is not None and number > setting.maximum:
        raise ValueError(f"must be at most {setting.maximum:g}")
    return number


def _coerce(setting: Setting, value: Any) -> Any:
    """``value`` as the setting's type; ``ValueError`` with the reason otherwise."""
    if setting.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "on", "1", "yes", "false", "0"}:
            return value.lower() in {"true", "on", "1", "yes"}
        raise ValueError("must be true or false")
    if setting.type in {"integer", "number"}:
        return _number(setting, value)
    if not isinstance(value, str):
        raise ValueError("must be text")  # noqa: TRY004 - a reason for the user, not a bug
    if len(value) > MAX_TEXT_SETTING or "\x00" in value:
        raise ValueError(f"must be text of at most {MAX_TEXT_SETTING} characters")
    if setting.type == "choice" and value not in setting.choices:
        raise ValueError(f"must be one of {', '.join(setting.choices)}")
    return value


def check_settings(
    manifest: Manifest, values: dict[str, Any], saved_secrets: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plain settings and secrets from ``values``, checked against the manifest's schema.

    A blank secret keeps the saved one. Raises :class:`InvalidInputError` naming
    every field that is wrong.
    """
    problems: dict[str, str] = {}
    unknown = sorted(set(values) - {s.name for s in manifest.settings})
    for name in unknown:
        problems[f"settings.{name}"] = f"{manifest.name} has no setting {name!r}"
    plain: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for setting in manifest.settings:
        value = values.get(setting.name)
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank:
            if setting.type == "boolean" and setting.name in values:
                plain[setting.name] = False
            elif setting.required and setting.default is None and setting.name not in saved_secrets:
                problems[f"settings.{setting.name}"] = f"{setting.label} is required"
            continue
        try:
            clean = _coerce(setting, value)
        except ValueError as exc:
            problems[f"settings.{setting.name}"] = f"{setting.label} {exc}"
            continue
        (secrets if setting.type == "secret" else plain)[setting.name] = clean
    if problems:
        first = next(iter(problems.values()))
        raise InvalidInputError(f"settings: {first}", fields=problems)
    return plain, secrets


class MarketplaceService:
    """Per-tenant plugin management on top of the :class:`PluginHost`."""

    def __init__(self, db: Database, host: PluginHost) -> None:
        self.db = db
        self.host = host

    # --- reading -----------------------------------------------------------------

    async def catalog(self, ctx: TenantContext, query: str = "") -> list[PluginEntry]:
        """Every plugin Orbit found, filtered by ``query`` (name, summary, author, id)."""
        ctx.require(Scope.PLUGINS_WRITE)
        counts = {
            row["plugin_id"]: row["installed"]
            for row in await self.db.fetch("SELECT * FROM orbit_plugin_install_counts()")
        }
        rows = {
            row["plugin_id"]: row
            for row in await self.db.fetch(
                "SELECT plugin_id, enabled, disabled_reason FROM plugin_installations "
                "WHERE tenant_id = $1",
                ctx.tenant_id,
            )
        }
        needle = fold(query.strip())
        entries = []
        for key, listing in sorted(self.host.registry.listings.items()):
            m = listing.manifest
            words = (key, m.name, m.summary, m.author) if m else (key,)
            haystack = fold(" ".join(words))
            if needle and needle not in haystack:
                continue
            row = rows.get(listing.id) if listing.loaded else None
            entries.append(
                PluginEntry(
                    listing=listing,
                    installed=row is not None,
                    enabled=bool(row and row["enabled"]),
                    disabled_reason=row["disabled_reason"] if row else None,
                    installed_count=counts.get(listing.id, 0) if listing.loaded else 0,
                )
            )
        return entries

    async def entry(self, ctx: TenantContext, plugin_id: str) -> PluginEntry:
        """One plugin with this tenant's state and settings (secrets masked)."""
        ctx.require(Scope.PLUGINS_WRITE)
        listing = self.host.registry.listings.get(plugin_id)
        if listing is None:
            raise NotFoundError(f"plugin {plugin_id!r} is not installed on this Orbit")
        row = None
        if listing.loaded:
            row = await self.db.fetchrow(
                "SELECT enabled, disabled_reason, settings, secrets FROM plugin_installations "
                "WHERE tenant_id = $1 AND plugin_id = $2",
                ctx.tenant_id,
                plugin_id,
            )
        count = await self.db.fetchval(
            "SELECT installed FROM orbit_plugin_install_counts() WHERE plugin_id = $1", plugin_id
        )
        secrets_set: frozenset[str] = frozenset()
        if row is not None and row["secrets"] is not None:
            try:
                secrets_set = frozenset(self.host.cipher.decrypt(row["secrets"]))
            except SecretsUnreadableError:
                log.warning("plugin %s: secrets unreadable in %s", plugin_id, ctx.tenant_slug)
        return PluginEntry(
            listing=listing,
            installed=row is not None,
            enabled=bool(row and row["enabled"]),
            disabled_reason=row["disabled_reason"] if row else None,
            installed_count=count or 0,
            settings=json.loads(row["settings"]) if row else None,
            secrets_set=secrets_set,
        )

    def _manifest(self, plugin_id: str) -> Manifest:
        listing = self.host.registry.listings.get(plugin_id)
        if listing is None:
            raise NotFoundError(f"plugin {plugin_id!r} is not installed on this Orbit")
        if not listing.loaded or listing.manifest is None:
            raise ConflictError(f"plugin {plugin_id!r} cannot be enabled: {listing.problem}")
        return listing.manifest

    # --- changing ------------------------------------------------------------------

    async def enable(
        self,
        ctx: TenantContext,
        plugin_id: str,
        *,
        granted_scopes: list[str],
        settings: dict[str, Any] | None = None,
    ) -> PluginEntry:
        """Install (first time) and enable ``plugin_id`` with the admin's consent to its scopes."""
        ctx.require(Scope.PLUGINS_WRITE)
        manifest = self._manifest(plugin_id)
        missing = sorted(set(manifest.scopes) - set(granted_scopes))
        extra = sorted(set(granted_scopes) - set(manifest.scopes))
        if missing or extra:
            reason = (
                f"consent to {', '.join(missing)} is needed to enable {manifest.name}"
                if missing
                else f"{manifest.name} does not ask for {', '.join(extra)}"
            )
            raise InvalidInputError(f"scopes: {reason}", fields={"scopes": reason})
        if not manifest.free:
            plan_key = await self.db.fetchval(
                "SELECT plan FROM tenants WHERE id = $1", ctx.tenant_id
            )
            chosen = plan(plan_key)
            if not chosen.paid_plugins:
                raise PaymentRequiredError(
                    f"{manifest.name} is a paid plugin; the {chosen.name} plan includes free "
                    "plugins only: upgrade to Starter or Pro to enable it"
                )
        existing = await self.db.fetchrow(
            "SELECT enabled, secrets FROM plugin_installations "
            "WHERE tenant_id = $1 AND plugin_id = $2 FOR UPDATE",
            ctx.tenant_id,
            plugin_id,
        )
        saved = (
            frozenset(self.host.cipher.decrypt(existing["secrets"]))
            if existing is not None and existing["secrets"] is not None
            else frozenset()
        )
        if existing is not None and existing["enabled"]:
            raise ConflictError(f"{manifest.name} is already enabled in this workspace")
        plain, secrets = check_settings(manifest, settings or {}, saved)
        if existing is None:
            await self.db.execute(
                "INSERT INTO plugin_installations (tenant_id, plugin_id, enabled, settings, "
                "secrets, granted_scopes, installed_by) "
                "VALUES ($1, $2, true, $3::jsonb, $4, $5, $6)",
                ctx.tenant_id,
                plugin_id,
                json.dumps(plain),
                self.host.cipher.encrypt(secrets) if secrets else None,
                sorted(granted_scopes),
                ctx.user_id,
            )
        else:
            await self.db.execute(
                "UPDATE plugin_installations SET enabled = true, granted_scopes = $3, "
                "disabled_reason = NULL, updated_at = now(), "
                "settings = CASE WHEN $4::jsonb = '{}'::jsonb THEN settings ELSE $4::jsonb END "
                "WHERE tenant_id = $1 AND plugin_id = $2",
                ctx.tenant_id,
                plugin_id,
                sorted(granted_scopes),
                json.dumps(plain),
            )
        await self.host.reset_failures(ctx.tenant_id, plugin_id)
        plugins = await self.host.for_tenant(ctx.tenant_id, ctx.tenant_slug)
        if existing is None:
            await plugins.call("orbit_plugin_installed", only=plugin_id)
            await self._emit(ctx.tenant_id, "plugin.installed", plugin_id, ctx)
        await plugins.call("orbit_plugin_enabled", only=plugin_id)
        await self._emit(ctx.tenant_id, "plugin.enabled", plugin_id, ctx)
        await record(
            self.db,
            ctx,
            "create" if existing is None else "update",
            "plugin",
            None,
            label=plugin_id,
            details={"enabled": True, "granted_scopes": sorted(granted_scopes)},
        )
        return await self.entry(ctx, plugin_id)

    async def configure(
        self, ctx: TenantContext, plugin_id: str, values: dict[str, Any]
    ) -> PluginEntry:
        """Save new settings (checked by the schema, then by the plugin's own validator)."""
        ctx.require(Scope.PLUGINS_WRITE)
        manifest = self._manifest(plugin_id)
        row = await self.db.fetchrow(
            "SELECT enabled, secrets, settings FROM plugin_installations "
            "WHERE tenant_id = $1 AND plugin_id = $2 FOR UPDATE",
            ctx.tenant_id,
            plugin_id,
        )
        if row is None:
            raise NotFoundError(f"{manifest.name} is not installed in this workspace")
        saved: dict[str, Any] = (
            self.host.cipher.decrypt(row["secrets"]) if row["secrets"] is not None else {}
        )
        plain, secrets = check_settings(manifest, values, frozenset(saved))
        merged_secrets = {**saved, **secrets}
        if row["enabled"]:
            plugins = await self.host.for_tenant(ctx.tenant_id, ctx.tenant_slug)
            answers = await plugins.call(
                "orbit_validate_settings", only=plugin_id, settings={**plain, **merged_secrets}
            )
            problems = [str(p) for answer in answers for p in answer.value]
            if problems:
                raise InvalidInputError(
                    f"settings: {problems[0]}",
                    fields={f"settings.{i}": p for i, p in enumerate(problems)},
                )
        await self.db.execute(
            "UPDATE plugin_installations "
            "SET settings = $3::jsonb, secrets = $4, updated_at = now() "
            "WHERE tenant_id = $1 AND plugin_id = $2",
            ctx.tenant_id,
            plugin_id,
            json.dumps(plain),
            self.host.cipher.encrypt(merged_secrets) if merged_secrets else None,
        )
        await record(
            self.db,
            ctx,
            "update",
            "plugin",
            None,
            label=plugin_id,
            before={"settings": json.loads(row["settings"])},
            after={"settings": plain},
            # Which secrets changed, never their values.
            details={"secrets_changed": sorted(secrets)} if secrets else None,
        )
        return await self.entry(ctx, plugin_id)

    async def disable(self, ctx: TenantContext, plugin_id: str) -> PluginEntry:
        """Disable ``plugin_id`` for the tenant; its data stays."""
        ctx.require(Scope.PLUGINS_WRITE)
        manifest = self._manifest(plugin_id)
        enabled = await self.db.fetchval(
            "SELECT enabled FROM plugin_installations WHERE tenant_id = $1 AND plugin_id = $2 "
            "FOR UPDATE",
            ctx.tenant_id,
            plugin_id,
        )
        if not enabled:
            raise ConflictError(f"{manifest.name} is not enabled in this workspace")
        plugins = await self.host.for_tenant(ctx.tenant_id, ctx.tenant_slug)
        await plugins.call("orbit_plugin_disabled", only=plugin_id, reason="admin")
        await self.db.execute(
            "UPDATE plugin_installations SET enabled = false, disabled_reason = 'admin', "
            "updated_at = now() WHERE tenant_id = $1 AND plugin_id = $2",
            ctx.tenant_id,
            plugin_id,
        )
        await self._emit(ctx.tenant_id, "plugin.disabled", plugin_id, ctx, reason="admin")
        await record(
            self.db, ctx, "update", "plugin", None, label=plugin_id, details={"enabled": False}
        )
        return await self.entry(ctx, plugin_id)

    async def uninstall(self, ctx: TenantContext, plugin_id: str, *, keep_data: bool) -> None:
        """Remove ``plugin_id`` from the tenant, keeping or deleting its tables' rows."""
        ctx.require(Scope.PLUGINS_WRITE)
        manifest = self._manifest(plugin_id)
        enabled = await self.db.fetchval(
            "SELECT enabled FROM plugin_installations WHERE tenant_id = $1 AND plugin_id = $2 "
            "FOR UPDATE",
            ctx.tenant_id,
            plugin_id,
        )
        if enabled is None:
            raise NotFoundError(f"{manifest.name} is not installed in this workspace")
        if enabled:
            plugins = await self.host.for_tenant(ctx.tenant_id, ctx.tenant_slug)
            await plugins.call("orbit_plugin_disabled", only=plugin_id, reason="admin")
            await plugins.call("orbit_plugin_uninstalled", only=plugin_id, keep_data=keep_data)
        if not keep_data:
            for table in manifest.tables:  # checked names: "<plugin id>_…", [a-z0-9_]
                await self.db.execute(
                    f"DELETE FROM {table} WHERE tenant_id = $1",
                    ctx.tenant_id,
                )
        await self.db.execute(
            "DELETE FROM plugin_installations WHERE tenant_id = $1 AND plugin_id = $2",
            ctx.tenant_id,
            plugin_id,
        )
        await self._emit(ctx.tenant_id, "plugin.uninstalled", plugin_id, ctx, keep_data=keep_data)
        await record(
            self.db,
            ctx,
            "delete",
            "plugin",
            None,
            label=plugin_id,
            details={"keep_data": keep_data},
        )

    async def trip(self, tenant_id: UUID, plugin_id: str) -> None:
        """The circuit breaker: disable the plugin for the tenant and tell its admins.

        Runs in its own transaction, so it holds even when the failing request rolls back.
        """
        manifest = self.host.registry.manifest(plugin_id)
        name = manifest.name if manifest else plugin_id
        async with self.db.transaction(tenant_id):
            await self.db.execute("SET LOCAL lock_timeout = '2s'")
            changed = await self.db.fetchval(
                "UPDATE plugin_installations SET enabled = false, "
                "disabled_reason = 'circuit_breaker', updated_at = now() "
                "WHERE tenant_id = $1 AND plugin_id = $2 AND enabled RETURNING true",
                tenant_id,
                plugin_id,
            )
            if not changed:
                return
            slug = await self.db.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
            admins = await self.db.fetch(
                "SELECT id FROM memberships WHERE tenant_id = $1 AND role = ANY ($2) "
                "AND status = 'active'",
                tenant_id,
                [Role.OWNER.value, Role.ADMIN.value],
            )
            for admin in admins:
                await self.db.execute(
                    "INSERT INTO notifications (tenant_id, id, membership_id, kind, title, link) "
                    "VALUES ($1, $2, $3, 'plugin.disabled', $4, $5)",
                    tenant_id,
                    new_id(),
                    admin["id"],
                    f"{name} was disabled after repeated errors",
                    f"/t/{slug}/marketplace/{plugin_id}",
                )
            await emit(
                self.db,
                tenant_id,
                "plugin.disabled",
                {"plugin": plugin_id, "reason": "circuit_breaker"},
            )

    async def _emit(
        self,
        tenant_id: UUID,
        event_type: str,
        plugin_id: str,
        ctx: TenantContext,
        **extra: Any,
    ) -> None:
        await emit(
            self.db,
            tenant_id,
            event_type,
            {"plugin": plugin_id, "by": str(ctx.user_id) if ctx.user_id else None, **extra},
        )
