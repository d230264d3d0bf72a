"""A whole workspace out and back in: a zip of CSV + JSON, restored into a new workspace.

``export_workspace`` writes one CSV per tenant-owned table (``COPY … TO STDOUT`` as the
app role, under row-level security, in one repeatable-read snapshot), ``users.csv``
(the members' e-mail addresses and names) and ``manifest.json`` (format, source, tables
in restore order, row counts). Tables are found in the catalog, so every area's and
plugin's tables travel without a list to keep up to date; transient ones (outbox,
deliveries, API keys, invitations, billing, usage counters) stay behind.

``import_workspace`` creates a new workspace and loads the tables in foreign-key order,
each through a temporary staging table (``COPY FROM`` is refused on RLS tables) and
``INSERT … SELECT`` with the new workspace's id, so row-level security checks every
row. Record ids are kept (keys are ``(tenant_id, id)``); members are matched to this
server's users by e-mail, and unknown people get an account without a password (they
set one through "forgot password" or an admin's new invitation).
"""

from __future__ import annotations

import csv
import json
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from uuid import UUID

from orbit.platform import validation
from orbit.platform.db.migrations import all_migrations
from orbit.platform.errors import InvalidInputError
from orbit.platform.ids import new_id
from orbit.tenants.service import Workspace, WorkspaceService

if TYPE_CHECKING:
    from orbit.platform.db.engine import Database

FORMAT = "orbit.workspace-export/1"
LEFT_BEHIND = frozenset(
    {
        "outbox_events",
        "webhook_deliveries",
        "webhook_attempts",
        "plugin_event_deliveries",
        "api_keys",
        "invitations",
        "notifications",
        "billing_accounts",
        "tenant_usage",
        "email_outbox",
    }
)
"""Tenant tables not exported: transient, secret, or rebuilt by the new workspace."""
NO_PASSWORD = "!restored"  # noqa: S105 - not an argon2 hash: login fails until a reset


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    path: Path
    tables: dict[str, int]


async def tenant_tables(db: Database, *, everything: bool = False) -> list[str]:
    """Tables with a ``tenant_id`` column, parents before children (by their foreign keys).

    Without ``everything``, the tables an export leaves behind are left out.
    """
    found = {
        row["relname"]
        for row in await db.fetch(
            """
            SELECT c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p')
            """
        )
    }
    names = found if everything else found - LEFT_BEHIND
    parents: dict[str, set[str]] = {name: set() for name in names}
    for row in await db.fetch(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
        "FROM pg_constraint WHERE contype = 'f'"
    ):
        if row["child"] in names and row["parent"] in names and row["child"] != row["parent"]:
            parents[row["child"]].add(row["parent"])
    ordered: list[str] = []
    while parents:
        ready = sorted(name for name, deps in parents.items() if not deps - set(ordered))
        if not ready:  # a cycle: cannot happen with Orbit's schema; fail loudly if it does
            raise RuntimeError(f"foreign keys form a cycle among {sorted(parents)}")
        for name in ready:
            ordered.append(name)
            del parents[name]
    return ordered


async def export_workspace(db: Database, workspace: Workspace, path: Path) -> ExportSummary:
    """Write ``workspace`` to the zip at ``path``, in the current transaction.

    For one consistent snapshot of every table, open that transaction REPEATABLE READ
    (``orbit tenants export`` does).
    """
    connection = db.connection
    await db.set_tenant(workspace.id)
    tables = await tenant_tables(db)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="orbit-export-") as scratch:
        folder = Path(scratch)
        for table in tables:
            status = await connection.copy_from_query(
                f"SELECT * FROM {table} WHERE tenant_id = $1",
                workspace.id,
                output=folder / f"{table}.csv",
                format="csv",
                header=True,
            )
            counts[table] = int(status.split()[-1])
        await connection.copy_from_query(
            "SELECT u.id, u.email, u.name FROM users u "
            "JOIN memberships m ON m.user_id = u.id AND m.tenant_id = $1",
            workspace.id,
            output=folder / "users.csv",
            format="csv",
            header=True,
        )
        migrations = max(m.id for m in all_migrations())
        manifest = {
            "format": FORMAT,
            "exported_at": datetime.now(UTC).isoformat(),
            "workspace": {"id": str(workspace.id), "slug": workspace.slug, "name": workspace.name},
            "schema": migrations,
            "tables": [{"name": t, "rows": counts[t]} for t in tables],
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in ["manifest.json", "users.csv", *(f"{t}.csv" for t in tables)]:
                archive.write(folder / name, name)
    return ExportSummary(path=path, tables=counts)


def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    except KeyError:
        raise InvalidInputError("file: not an Orbit workspace export (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"file: manifest.json is not JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise InvalidInputError(
            f"file: format {manifest.get('format')!r} is not {FORMAT!r}; "
            "export it again from an Orbit of this version"
        )
    return manifest


async def _users(db: Database, archive: zipfile.ZipFile) -> dict[str, UUID]:
    """Old user id → this server's user id (matched by e-mail, created when missing)."""
    mapping: dict[str, UUID] = {}
    with archive.open("users.csv") as raw:
        rows = csv.DictReader(line.decode() for line in raw)
        for row in rows:
            key = validation.email_key(row["email"])
            found = await db.fetchval("SELECT id FROM users WHERE email_key = $1", key)
            if found is None:
                found = new_id()
                await db.execute(
                    "INSERT INTO users (id, email, email_key, password_hash, name) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    found,
                    row["email"],
                    key,
                    NO_PASSWORD + secrets.token_hex(8),
                    row["name"],
                )
            mapping[row["id"]] = found
    return mapping


async def import_workspace(db: Database, path: Path, name: str | None = None) -> Workspace:
    """Restore the export at ``path`` into a new workspace (in the current transaction)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"file: {path} is not a zip file ({exc})") from None
    with archive:
        manifest = _read_manifest(archive)
        known = set(await tenant_tables(db))
        unknown = [t["name"] for t in manifest["tables"] if t["name"] not in known]
        if unknown:
            raise InvalidInputError(
                f"file: tables {', '.join(unknown)} do not exist here (install the same "
                "plugins and migrate before importing)"
            )
        users = await _users(db, archive)
        workspace = await WorkspaceService(db).create_empty(name or manifest["workspace"]["name"])
        connection = db.connection
        for entry in manifest["tables"]:
            table = entry["name"]
            with archive.open(f"{table}.csv") as raw:
                header = next(csv.reader([raw.readline().decode()]))
            staging = f"restore_{table}"
            await db.execute(
                f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with archive.open(f"{table}.csv") as raw:
                await connection.copy_to_table(
                    staging,
                    source=cast("BinaryIO", raw),  # a zip member reads like a binary file
                    columns=header,
                    format="csv",
                    header=True,
                )
            if table == "memberships":
                await db.execute(
                    f"UPDATE {staging} s SET user_id = m.new FROM unnest($1::uuid[], $2::uuid[]) "
                    "AS m (old, new) WHERE s.user_id = m.old",
                    [UUID(old) for old in users],
                    list(users.values()),
                )
            columns = ", ".join(f'"{c}"' for c in header)
            chosen = ", ".join("$1::uuid" if c == "tenant_id" else f'"{c}"' for c in header)
            await db.execute(
                f"INSERT INTO {table} ({columns}) SELECT {chosen} FROM {staging}",
                workspace.id,
            )
    return workspace


async def delete_workspace(db: Database, workspace_id: UUID) -> None:
    """Delete a workspace and everything in it (the transaction must be scoped to it).

    Children go before parents, as the app role under row-level security (some
    foreign keys, like a deal's stage, do not cascade); then a narrow definer deletes
    the workspace row, whose cascades take what the app role may not delete itself
    (the append-only audit log).
    """
    for table in reversed(await tenant_tables(db, everything=True)):
        if await db.fetchval("SELECT has_table_privilege($1, 'DELETE')", table):
            await db.execute(f"DELETE FROM {table} WHERE tenant_id = $1", workspace_id)
    await db.execute("SELECT orbit_delete_tenant($1)", workspace_id)
