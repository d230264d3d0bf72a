"""Running an import: batches of rows staged with COPY and written with INSERT … SELECT.

``COPY FROM`` is refused on tables with row-level security, so each batch is
copied into a ``TEMP`` staging table inside the tenant transaction and written
from there with one ``INSERT … SELECT`` (new records) and one ``UPDATE … FROM``
(existing ones); RLS checks every row. Existing records are found by the dedupe
key in one query per batch and merged in Python (empty cells keep the stored
value), so every written row is complete and its search text is computed by the
same normaliser the services use.

Durability: a non-strict import commits each batch together with its checkpoint
(``rows_done``), its counters and its error lines, so a worker that dies resumes
after the last committed batch: no row twice, none missed. A strict import runs
in one transaction and writes nothing when any row is bad (or when it is
cancelled or crashes; it then starts over).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orbit.platform.audit.log import record
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.ids import new_id
from orbit.platform.imports import files
from orbit.platform.imports.targets import (
    COLUMNS,
    CUSTOM,
    PLURAL,
    TABLES,
    CellError,
    Lookups,
    cell_reader,
    search_text,
)
from orbit.platform.search.normalize import fold, search_document
from orbit.tenants.context import TenantContext
from orbit.tenants.quotas import QuotaExceededError, Quotas
from orbit.tenants.roles import ROLE_SCOPES, Role

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from uuid import UUID

    from orbit.platform.db.engine import Database

log = logging.getLogger(__name__)

BATCH_ROWS = 5000
LEASE_SECONDS = 120
"""How long a claimed job is a worker's; each batch renews it, a dead worker's runs out."""
MAX_ATTEMPTS = 5


class ImportCancelledError(Exception):
    """The import was cancelled while it ran."""


class ImportTakenOverError(Exception):
    """Another run of the same import went on from a later checkpoint; this one stops."""


class StrictImportError(Exception):
    """A strict import met bad rows: everything is rolled back."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(errors)} bad rows")
        self.errors = errors


@dataclass
class BatchResult:
    """What one batch did."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Parsed:
    """A batch's rows after the cell checks: values by field, and the bad lines."""

    rows: int
    values: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def import_path(home: Path, tenant_id: UUID, import_id: UUID, file_format: str) -> Path:
    """Where an import's uploaded file is kept until the import ends."""
    return files.upload_dir(home, tenant_id) / f"{import_id}.{file_format}"


def system_context(job: Any, tenant_id: UUID) -> TenantContext:
    """The principal a job acts as: the member who started it (for the audit log)."""
    return TenantContext(
        tenant_id=tenant_id,
        tenant_slug="",
        tenant_name="",
        scopes=ROLE_SCOPES[Role.OWNER],
        membership_id=job["created_by"],
        user_id=job.get("user_id"),
    )


async def load_lookups(db: Database, ctx: TenantContext, object_type: str) -> Lookups:
    """Members, stages and custom fields rows may refer to (one query each)."""
    lookups = Lookups()
    for row in await db.fetch(
        "SELECT m.id, lower(u.email) AS email FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE m.tenant_id = $1 AND m.status = 'active'",
        ctx.tenant_id,
    ):
        lookups.members[row["email"]] = row["id"]
    if object_type == "deal":
        stages = await db.fetch(
            "SELECT s.pipeline_id, s.id, s.name, s.kind FROM pipeline_stages s "
            "JOIN pipelines p ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id "
            "WHERE s.tenant_id = $1 ORDER BY p.position, p.created_at, s.position",
            ctx.tenant_id,
        )
        for row in stages:
            found = (row["pipeline_id"], row["id"], row["kind"])
            lookups.stages.setdefault(fold(row["name"]), found)
            if lookups.first_stage is None:
                lookups.first_stage = found
    definitions = await CustomFieldService(db).definitions(ctx, [object_type])
    lookups.custom = {d.key: d for d in definitions}
    return lookups


class BatchWriter:
    """Writes batches of one import: checks cells, merges with existing records, stages, writes."""

    def __init__(
        self,
        db: Database,
        ctx: TenantContext,
        job: Any,
        columns: list[str],
        lookups: Lookups,
    ) -> None:
        self.db = db
        self.ctx = ctx
        self.object_type: str = job["object_type"]
        self.mode: str = job["mode"]
        self.key: str | None = job["dedupe_key"]
        self.table = TABLES[self.object_type]
        self.lookups = lookups
        mapping = json.loads(job["mapping"]) if isinstance(job["mapping"], str) else job["mapping"]
        self.readers: list[tuple[int, Callable[[str], tuple[str, Any]]]] = [
            (columns.index(column), cell_reader(target, lookups))
            for column, target in mapping.items()
        ]
        self.default_owner: UUID | None = job["created_by"]
        self.company_cache: dict[str, UUID] = {}

    def _parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for index, reader in self.readers:
            cell = cells[index].strip() if index < len(cells) else ""
            if not cell:
                continue
            try:
                name, value = reader(cell)
            except CellError as exc:
                problems.append(str(exc))
                continue
            values[name] = value
        if problems:
            raise CellError("; ".join(problems))
        values["_line"] = line
        return values

    def _key_of(self, values: dict[str, Any]) -> str | None:
        if self.key is None:
            return None
        value = values.get(self.key)
        return None if value is None else str(value)

    async def _existing(self, keys: list[str]) -> dict[str, Any]:
        if not keys or self.key is None:
            return {}
        if self.key.startswith(CUSTOM):
            expr = f"r.custom ->> '{self.key.removeprefix(CUSTOM)}'"
        else:
            expr = f"r.{self.key}"
        company = ", co.name AS company_name" if self.object_type in {"contact", "deal"} else ""
        join = (
            " LEFT JOIN companies co ON co.tenant_id = r.tenant_id AND co.id = r.company_id"
            if company
            else ""
        )
        rows = await self.db.fetch(
            f"SELECT r.*{company}, {expr} AS import_key FROM {self.table} r{join} "
            f"WHERE r.tenant_id = $1 AND {expr} = ANY($2::text[])",
            self.ctx.tenant_id,
            keys,
        )
        return {row["import_key"]: row for row in rows}

    async def _company_ids(self, names: set[str]) -> dict[str, UUID]:
        """Companies by folded name: found, or created (contacts and deals name them)."""
        wanted = {name.lower(): name for name in names if name.lower() not in self.company_cache}
        if wanted:
            rows = await self.db.fetch(
                "SELECT DISTINCT ON (lower(name)) id, lower(name) AS key FROM companies "
                "WHERE tenant_id = $1 AND lower(name) = ANY($2::text[]) "
                "ORDER BY lower(name), created_at",
                self.ctx.tenant_id,
                list(wanted),
            )
            for row in rows:
                self.company_cache[row["key"]] = row["id"]
            missing = [(k, v) for k, v in wanted.items() if k not in self.company_cache]
            if missing:
                ids = [new_id() for _ in missing]
                await self.db.execute(
                    """
                    INSERT INTO companies (tenant_id, id, name, owner_id, search_text)
                    SELECT $1, n.id, n.name, $5, n.search
                    FROM unnest($2::uuid[], $3::text[], $4::text[]) AS n(id, name, search)
                    """,
                    self.ctx.tenant_id,
                    ids,
                    [name for _, name in missing],
                    [search_document(name) for _, name in missing],
                    self.default_owner,
                )
                for (key, _), company_id in zip(missing, ids, strict=True):
                    self.company_cache[key] = company_id
        return {name: self.company_cache[name.lower()] for name in names}

    def _merged(self, values: dict[str, Any], existing: Any) -> dict[str, Any]:
        """The complete record: the stored one (or defaults) with the row's values on top."""
        columns = [name for name, _ in COLUMNS[self.object_type]]
        if existing is not None:
            merged = {name: existing[name] for name in columns}
            custom = existing["custom"]
            merged["custom"] = dict(json.loads(custom) if isinstance(custom, str) else custom)
            merged["_company_name"] = existing.get("company_name")
            merged["_old_stage"] = existing.get("stage_id")
        else:
            merged = dict.fromkeys(columns)
            merged.update({"custom": {}, "owner_id": self.default_owner, "_company_name": None})
            if self.object_type in {"contact", "company"}:
                merged["tags"] = []
            if self.object_type == "contact":
                merged.update(first_name="", last_name="")
            if self.object_type == "deal":
                merged.update(amount=0, currency="USD", status="open", _old_stage=None)
        for name, value in values.items():
            if name.startswith(CUSTOM):
                merged["custom"][name.removeprefix(CUSTOM)] = value
            elif name == "company_name":
                merged["_company_name"] = value
            elif name == "stage":
                merged["pipeline_id"], merged["stage_id"], merged["status"] = value
            elif not name.startswith("_"):
                merged[name] = value
        return merged

    def _complete(self, merged: dict[str, Any]) -> None:
        """Check what a whole record needs; raise :class:`CellError` otherwise."""
        if self.object_type == "contact":
            if not (merged["first_name"] or merged["last_name"] or merged["email"]):
                msg = "a contact needs a first name, a last name or an email"
                raise CellError(msg)
        elif self.object_type == "company":
            if not merged["name"]:
                raise CellError("name: a company needs a name")
        else:
            if not merged["title"]:
                raise CellError("title: a deal needs a title")
            if merged["stage_id"] is None:
                if self.lookups.first_stage is None:
                    raise CellError("stage: this workspace has no pipeline")
                merged["pipeline_id"], merged["stage_id"], merged["status"] = (
                    self.lookups.first_stage
                )
            if merged["status"] != "open" and merged.get("closed_at") is None:
                merged["closed_at"] = datetime.now(UTC)

    def parse(self, batch: list[tuple[int, list[str]]]) -> Parsed:
        """Check every cell of a batch (pure Python: a thread does it for the next batch)."""
        parsed = Parsed(rows=len(batch))
        for line, cells in batch:
            try:
                parsed.values.append(self._parse(line, cells))
            except CellError as exc:
                parsed.errors.append((line, str(exc)))
        return parsed

    async def write(self, batch: list[tuple[int, list[str]]]) -> BatchResult:
        """Check, merge and write one batch; bad rows come back as (line, reason)."""
        return await self.write_parsed(self.parse(batch))

    async def write_parsed(  # noqa: C901, PLR0915 - one pass keeps the merge rules together
        self, checked: Parsed
    ) -> BatchResult:
        """Merge a checked batch with the stored records and write it."""
        result = BatchResult(errors=list(checked.errors))
        parsed = checked.values
        keys = sorted({k for values in parsed if (k := self._key_of(values)) is not None})
        existing = await self._existing(keys)
        names = {v["company_name"] for v in parsed if v.get("company_name")}
        companies = await self._company_ids(names) if names else {}
        pending: dict[str, dict[str, Any]] = {}
        records: list[dict[str, Any]] = []
        for values in parsed:
            line = values["_line"]
            key = self._key_of(values)
            if key is None and self.mode == "update":
                what = self.key or "a dedupe key"
                result.errors.append((line, f"{what}: empty, so no existing record to update"))
                continue
            earlier = pending.get(key) if key is not None else None
            stored = existing.get(key) if key is not None else None
            if stored is not None and self.mode == "create":
                result.errors.append(
                    (line, f"{self.key}: a {self.object_type} with {key!r} already exists")
                )
                continue
            if stored is None and earlier is None and self.mode == "update":
                result.errors.append((line, f"{self.key}: no {self.object_type} with {key!r}"))
                continue
            base = earlier if earlier is not None else stored
            try:
                merged = self._merged(values, base)
                self._complete(merged)
            except CellError as exc:
                result.errors.append((line, str(exc)))
                continue
            if earlier is not None:  # the same key twice in one batch: the later row wins
                merged["_id"], merged["_new"] = earlier["_id"], earlier["_new"]
                merged["_stored"], merged["_earlier"] = earlier.get("_stored"), True
                earlier.clear()
                earlier.update(merged)
                continue
            merged["_id"] = stored["id"] if stored is not None else new_id()
            merged["_new"] = stored is None
            merged["_stored"] = stored
            records.append(merged)
            if key is not None:
                pending[key] = merged
        for merged in records:
            name = merged.pop("_company_name", None)
            if self.object_type != "company" and name and name in companies:
                merged["company_id"] = companies[name]
            merged["search_text"] = search_text(self.object_type, merged, name)
        new = sum(1 for r in records if r["_new"])
        updated = len(records) - new
        # A matched record whose values are all the same is not rewritten (re-imports are cheap).
        records = [r for r in records if not self._unchanged(r)]
        if self.object_type == "contact" and new:
            await Quotas(self.db).check_contacts(self.ctx.tenant_id, new)
        await self._stage_and_write(records)
        result.created = new
        result.updated = updated
        return result

    def _unchanged(self, merged: dict[str, Any]) -> bool:
        stored = merged.pop("_stored", None)
        if stored is None or merged.get("_earlier"):
            return False
        for name, _ in COLUMNS[self.object_type]:
            value = stored[name]
            if name == "custom":
                value = json.loads(value) if isinstance(value, str) else dict(value or {})
            elif name == "tags":
                value = list(value or [])
            if merged[name] != value:
                return False
        return True

    async def _stage_and_write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        columns = COLUMNS[self.object_type]
        staged = ", ".join(
            f"{name} {'text' if kind == 'jsonb' else kind}" for name, kind in columns
        )
        await self.db.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS import_stage (id uuid, is_new boolean, "
            f"old_stage_id uuid, history_id uuid, {staged}) ON COMMIT DROP"
        )
        await self.db.execute("TRUNCATE import_stage")
        names = [name for name, _ in columns]
        rows = [
            (
                r["_id"],
                r["_new"],
                r.get("_old_stage"),
                new_id() if self.object_type == "deal" else None,
                *(json.dumps(r[name]) if name == "custom" else r[name] for name in names),
            )
            for r in records
        ]
        await self.db.connection.copy_records_to_table(
            "import_stage",
            records=rows,
            columns=["id", "is_new", "old_stage_id", "history_id", *names],
        )
        # Statistics for the planner: otherwise it guesses and may join by scanning the table.
        await self.db.execute("ANALYZE import_stage")
        values = ", ".join(f"s.{n}::jsonb" if n == "custom" else f"s.{n}" for n in names)
        await self.db.execute(
            f"INSERT INTO {self.table} (tenant_id, id, {', '.join(names)}, created_at, updated_at) "
            f"SELECT $1, s.id, {values}, now(), now() FROM import_stage s WHERE s.is_new",
            self.ctx.tenant_id,
        )
        sets = ", ".join(f"{n} = s.{n}::jsonb" if n == "custom" else f"{n} = s.{n}" for n in names)
        await self.db.execute(
            f"UPDATE {self.table} r SET {sets}, updated_at = now() FROM import_stage s "
            f"WHERE NOT s.is_new AND r.tenant_id = $1 AND r.id = s.id",
            self.ctx.tenant_id,
        )
        if self.object_type == "deal":
            await self.db.execute(
                """
                INSERT INTO deal_stage_history (tenant_id, id, deal_id, from_stage_id,
                                                to_stage_id, moved_at, moved_by)
                SELECT $1, s.history_id, s.id, s.old_stage_id, s.stage_id, now(), $2
                FROM import_stage s
                WHERE s.is_new OR s.old_stage_id IS DISTINCT FROM s.stage_id
                """,
                self.ctx.tenant_id,
                self.default_owner,
            )


def batches(
    records: Iterator[tuple[int, list[str]]], size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    """``records`` in lists of ``size``."""
    batch: list[tuple[int, list[str]]] = []
    for item in records:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _save_errors(
    db: Database, tenant_id: UUID, import_id: UUID, errors: list[tuple[int, str]]
) -> None:
    if not errors:
        return
    await db.execute(
        """
        INSERT INTO import_errors (tenant_id, import_id, line, reason)
        SELECT $1, $2, e.line, e.reason FROM unnest($3::int[], $4::text[]) AS e(line, reason)
        ON CONFLICT DO NOTHING
        """,
        tenant_id,
        import_id,
        [line for line, _ in errors],
        [reason[:1000] for _, reason in errors],
    )


async def _finish(
    db: Database, tenant_id: UUID, import_id: UUID, status: str, message: str = ""
) -> None:
    await db.execute(
        "UPDATE imports SET status = $3, message = $4, finished_at = now(), updated_at = now(), "
        "lease_until = NULL WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        import_id,
        status,
        message[:2000],
    )


async def _audit_and_clean(
    db: Database, home: Path, job: Any, ctx: TenantContext, status: str
) -> None:
    row = await db.fetchrow(
        "SELECT * FROM imports WHERE tenant_id = $1 AND id = $2", job["tenant_id"], job["id"]
    )
    if row is None:
        return
    await record(
        db,
        ctx,
        "import",
        job["object_type"],
        None,
        label=f"{PLURAL[job['object_type']]} from {row['file_name']}",
        changes={},
        details={
            "import_id": str(row["id"]),
            "status": status,
            "mode": row["mode"],
            "rows": row["rows_done"],
            "created": row["created_count"],
            "updated": row["updated_count"],
            "skipped": row["error_count"],
        },
    )
    path = import_path(home, job["tenant_id"], job["id"], job["file_format"])
    if path.exists():
        await Quotas(db).use_storage(job["tenant_id"], -int(row["size_bytes"]))
        path.unlink()


async def run_import(
    db: Database,
    home: Path,
    tenant_id: UUID,
    import_id: UUID,
    *,
    batch_rows: int = BATCH_ROWS,
    after_batch: Callable[[int], None] | None = None,
) -> str:
    """Run (or resume) one import to its end; its final status.

    ``after_batch`` (tests) is called with each committed batch's number; raising
    there simulates a worker dying between batches.
    """
    async with db.transaction(tenant_id):
        found = await db.fetchrow(
            "SELECT i.*, m.user_id FROM imports i LEFT JOIN memberships m "
            "ON m.tenant_id = i.tenant_id AND m.id = i.created_by "
            "WHERE i.tenant_id = $1 AND i.id = $2",
            tenant_id,
            import_id,
        )
        if found is None or found["status"] not in {"queued", "running"}:
            return "gone" if found is None else str(found["status"])
        job: dict[str, Any] = dict(found)
        if job["attempts"] > MAX_ATTEMPTS:
            await _finish(db, tenant_id, import_id, "failed", "the import failed repeatedly")
            return "failed"
        strict = bool(job["strict"])
        await db.execute(
            "UPDATE imports SET status = 'running', started_at = coalesce(started_at, now()), "
            "rows_done = CASE WHEN $3 THEN 0 ELSE rows_done END, "
            "lease_until = now() + make_interval(secs => $4), updated_at = now() "
            "WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            import_id,
            strict,
            LEASE_SECONDS,
        )
        if strict:
            job["rows_done"] = 0
    ctx = system_context(job, tenant_id)
    info = files.FileInfo(job["file_format"], job["encoding"])
    path = import_path(home, tenant_id, import_id, job["file_format"])
    columns = json.loads(job["columns"]) if isinstance(job["columns"], str) else job["columns"]
    records = files.rows(path, info)
    next(records, None)  # the heading
    for _ in range(job["rows_done"]):  # resume: skip what committed batches wrote
        next(records, None)
    try:
        if strict:
            status = await _run_strict(db, ctx, job, columns, records, batch_rows)
        else:
            status = await _run_batches(db, ctx, job, columns, records, batch_rows, after_batch)
    except ImportCancelledError:
        status = "cancelled"
    except ImportTakenOverError:
        return "taken over"
    async with db.transaction(tenant_id):
        if status == "cancelled":
            await _finish(db, tenant_id, import_id, "cancelled", "cancelled")
        await _audit_and_clean(db, home, job, ctx, status)
    return status


async def _progress(db: Database, ctx: TenantContext, import_id: UUID, done: int) -> None:
    """Lock the import for this batch; stop when it was cancelled or another run took over.

    A run whose lease ran out (a stalled worker) may find the import claimed again; the
    checkpoint then differs from the rows this run has written, and it stops unwritten.
    """
    row = await db.fetchrow(
        "SELECT status, rows_done FROM imports WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        ctx.tenant_id,
        import_id,
    )
    if row is None or row["status"] != "running":
        raise ImportCancelledError
    if row["rows_done"] != done:
        raise ImportTakenOverError


async def _run_batches(
    db: Database,
    ctx: TenantContext,
    job: dict[str, Any],
    columns: list[str],
    records: Iterator[tuple[int, list[str]]],
    batch_rows: int,
    after_batch: Callable[[int], None] | None,
) -> str:
    tenant_id, import_id = ctx.tenant_id, job["id"]
    async with db.transaction(tenant_id):
        lookups = await load_lookups(db, ctx, job["object_type"])
    writer = BatchWriter(db, ctx, job, columns, lookups)
    chunks = batches(records, batch_rows)

    def read_and_check() -> tuple[int, Parsed] | None:
        batch = next(chunks, None)
        return None if batch is None else (batch[0][0], writer.parse(batch))

    # The next batch is read and checked in a thread while this one is written:
    # Python's share and PostgreSQL's overlap.
    ahead = asyncio.ensure_future(anyio.to_thread.run_sync(read_and_check))
    number, done = 0, int(job["rows_done"])
    try:
        while (item := await ahead) is not None:
            first_line, parsed = item
            ahead = asyncio.ensure_future(anyio.to_thread.run_sync(read_and_check))
            number += 1
            try:
                async with db.transaction(tenant_id):
                    await _progress(db, ctx, import_id, done)
                    result = await writer.write_parsed(parsed)
                    await _checkpoint(db, tenant_id, import_id, parsed.rows, result)
                done += parsed.rows
            except QuotaExceededError as exc:  # the batch rolled back: nothing beyond the quota
                async with db.transaction(tenant_id):
                    message = f"stopped at line {first_line}: {exc.message}"
                    await _finish(db, tenant_id, import_id, "failed", message)
                return "failed"
            if after_batch is not None:
                after_batch(number)
    finally:
        if not ahead.done():
            with contextlib.suppress(Exception):
                await ahead
    async with db.transaction(tenant_id):
        await _finish(db, tenant_id, import_id, "done")
    return "done"


async def _checkpoint(
    db: Database, tenant_id: UUID, import_id: UUID, rows: int, result: BatchResult
) -> None:
    """Commit a batch's progress, counters and error lines with the batch itself."""
    await _save_errors(db, tenant_id, import_id, result.errors)
    await db.execute(
        """
        UPDATE imports SET rows_done = rows_done + $3, created_count = created_count + $4,
            updated_count = updated_count + $5, error_count = error_count + $6,
            lease_until = now() + make_interval(secs => $7), updated_at = now()
        WHERE tenant_id = $1 AND id = $2
        """,
        tenant_id,
        import_id,
        rows,
        result.created,
        result.updated,
        len(result.errors),
        LEASE_SECONDS,
    )


async def _run_strict(
    db: Database,
    ctx: TenantContext,
    job: dict[str, Any],
    columns: list[str],
    records: Iterator[tuple[int, list[str]]],
    batch_rows: int,
) -> str:
    """All rows in one transaction; any bad row (or a quota refusal) rolls all of it back."""
    tenant_id, import_id = ctx.tenant_id, job["id"]
    totals = BatchResult()
    done = 0
    try:
        async with db.transaction(tenant_id):
            # One run at a time: a second claim of the same import waits for no one.
            if not await db.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", str(import_id)
            ):
                raise ImportTakenOverError
            lookups = await load_lookups(db, ctx, job["object_type"])
            writer = BatchWriter(db, ctx, job, columns, lookups)
            for batch in batches(records, batch_rows):
                result = await writer.write(batch)
                totals.errors += result.errors
                totals.created += result.created
                totals.updated += result.updated
                done += len(batch)
                # Progress on another connection: the big transaction stays invisible.
                await _side_progress(db, tenant_id, import_id, done)
            if totals.errors:
                raise StrictImportError(totals.errors)  # noqa: TRY301 - rolls the block back
            await db.execute(
                "UPDATE imports SET created_count = $3, updated_count = $4, updated_at = now() "
                "WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                import_id,
                totals.created,
                totals.updated,
            )
            await _finish(db, tenant_id, import_id, "done")
    except StrictImportError as exc:
        async with db.transaction(tenant_id):
            await _save_errors(db, tenant_id, import_id, exc.errors)
            await db.execute(
                "UPDATE imports SET error_count = $3 WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                import_id,
                len(exc.errors),
            )
            await _finish(
                db,
                tenant_id,
                import_id,
                "failed",
                f"strict mode: {len(exc.errors)} bad rows, nothing was imported",
            )
        return "failed"
    except QuotaExceededError as exc:
        async with db.transaction(tenant_id):
            await _finish(db, tenant_id, import_id, "failed", f"{exc.message}; nothing imported")
        return "failed"
    return "done"


async def _side_progress(db: Database, tenant_id: UUID, import_id: UUID, done: int) -> None:
    """Record a strict import's progress outside its transaction; stop when it was cancelled."""
    pool = db.engine.pool
    if pool is None:
        return
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        status = await connection.fetchval(
            "UPDATE imports SET rows_done = $3, lease_until = now() + make_interval(secs => $4), "
            "updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING status",
            tenant_id,
            import_id,
            done,
            LEASE_SECONDS,
        )
    if status != "running":
        raise ImportCancelledError


def rate_and_eta(row: Any) -> tuple[float | None, float | None]:
    """Rows per second so far and seconds left, for a running import."""
    started = row["started_at"]
    if started is None or not row["rows_done"]:
        return None, None
    end = row["finished_at"] or datetime.now(UTC)
    elapsed = max((end - started).total_seconds(), 0.001)
    rate = row["rows_done"] / elapsed
    left = max(row["total_rows"] - row["rows_done"], 0)
    return round(rate, 1), (round(left / rate, 1) if row["finished_at"] is None else 0.0)


def monotonic() -> float:
    """A clock for measuring (kept here so scripts and the CLI share it)."""
    return time.monotonic()
