"""Pipelines, their stages, and deals moving through them (with stage history)."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
from babel.numbers import list_currencies

from orbit.platform import validation
from orbit.platform.audit.log import Action, record
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.schemas import (
    DealCreate,
    DealMove,
    DealOut,
    DealPage,
    DealPatch,
    ForecastRow,
    ListCount,
    PipelineIn,
    PipelineOut,
    StageIn,
    StageMoveOut,
    StageOut,
    StagePatch,
)
from orbit.platform.crm.service import (
    DEFAULT_PAGE,
    Listing,
    checked_custom,
    checked_links,
    checked_member,
    list_count,
    list_page,
    may_see,
    visible_owner_list,
)
from orbit.platform.errors import ConflictError, InvalidInputError, NotFoundError
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.platform.search.normalize import search_document
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.crm.views import ListSpec
    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

DEFAULT_PIPELINE = "Sales"
DEFAULT_STAGES = (
    StageIn(name="Lead", probability=Decimal(10)),
    StageIn(name="Qualified", probability=Decimal(25)),
    StageIn(name="Proposal", probability=Decimal(50)),
    StageIn(name="Negotiation", probability=Decimal(75)),
    StageIn(name="Won", probability=Decimal(100), kind="won"),
    StageIn(name="Lost", probability=Decimal(0), kind="lost"),
)
MAX_AMOUNT_DECIMALS = 4
MAX_AMOUNT = Decimal(10) ** 14

_DEAL_SELECT = """
    SELECT d.*, s.name AS stage_name, s.probability,
           coalesce(array(SELECT dc.contact_id FROM deal_contacts dc
                          WHERE dc.tenant_id = d.tenant_id AND dc.deal_id = d.id
                          ORDER BY dc.contact_id), '{}') AS contact_ids
    FROM deals d
    JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
"""


_DEAL_COLUMNS = """
    r.*, s.name AS stage_name, s.probability,
    coalesce(array(SELECT dc.contact_id FROM deal_contacts dc
                   WHERE dc.tenant_id = r.tenant_id AND dc.deal_id = r.id
                   ORDER BY dc.contact_id), '{}') AS contact_ids
"""
_DEAL_TABLE = "deals r JOIN pipeline_stages s ON s.tenant_id = r.tenant_id AND s.id = r.stage_id"
"""The deal list's columns and table (the record as ``r``, as lists and views expect)."""

_NOT_MONEY = frozenset({"XXX", "XTS"})
"""ISO 4217's "no currency" and "testing" codes."""


@functools.cache
def iso_currencies() -> frozenset[str]:
    """ISO 4217 codes Babel knows."""
    return frozenset(list_currencies())


def currency_code(value: str) -> str:
    """``value`` as an upper-case ISO 4217 code, or a 400 naming ``currency``."""
    code = value.strip().upper()
    if code not in iso_currencies() or code in _NOT_MONEY:
        reason = f"{value!r} is not an ISO 4217 currency code (like EUR, USD, JPY)"
        raise InvalidInputError(f"currency: {reason}", fields={"currency": reason})
    return code


def exact_amount(value: Decimal) -> Decimal:
    """``value`` if Orbit can store it exactly: 0 ≤ amount < 10¹⁴, at most 4 decimals."""
    exponent = value.as_tuple().exponent
    reason = None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        reason = f"must be a number from 0 up to {MAX_AMOUNT - 1}"
    elif isinstance(exponent, int) and exponent < -MAX_AMOUNT_DECIMALS:
        reason = f"must have at most {MAX_AMOUNT_DECIMALS} decimal places"
    if reason:
        raise InvalidInputError(f"amount {reason}", fields={"amount": reason})
    return value


def win_probability(value: Decimal) -> Decimal:
    """``value`` when it is a percentage (0–100, two decimals), else a 400 naming it."""
    if not value.is_finite() or not 0 <= value <= 100 or value != round(value, 2):  # noqa: PLR2004
        reason = "must be a percentage from 0 to 100 with at most 2 decimals"
        raise InvalidInputError(f"probability {reason}", fields={"probability": reason})
    return value


def deal_out(row: Any) -> DealOut:
    """A joined deal row as the API's deal."""
    return DealOut(
        id=row["id"],
        title=row["title"],
        amount=row["amount"],
        currency=row["currency"],
        pipeline_id=row["pipeline_id"],
        stage_id=row["stage_id"],
        stage_name=row["stage_name"],
        probability=row["probability"],
        status=row["status"],
        lost_reason=row["lost_reason"],
        expected_close_date=row["expected_close_date"],
        owner_id=row["owner_id"],
        company_id=row["company_id"],
        contact_ids=list(row["contact_ids"]),
        custom=json.loads(custom) if isinstance(custom := row["custom"], str) else dict(custom),
        closed_at=row["closed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _pipeline_fields(pipeline: PipelineOut) -> dict[str, object]:
    """What the audit log compares: the name and the stages in order, with probabilities."""
    return {
        "name": pipeline.name,
        "stages": [f"{stage.name} ({stage.probability}%)" for stage in pipeline.stages],
    }


class PipelineService:
    """Pipelines and stages; admins change them, everyone reads them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_default(self, tenant_id: UUID) -> None:
        """Give a new workspace its "Sales" pipeline (Lead … Won, Lost)."""
        await self._insert(tenant_id, DEFAULT_PIPELINE, list(DEFAULT_STAGES))

    async def all(self, ctx: TenantContext) -> list[PipelineOut]:
        """Pipelines in order, each with its stages in order."""
        ctx.require(Scope.DEALS_READ)
        pipelines = await self.db.fetch(
            "SELECT * FROM pipelines WHERE tenant_id = $1 ORDER BY position, created_at",
            ctx.tenant_id,
        )
        stages = await self.db.fetch(
            "SELECT * FROM pipeline_stages WHERE tenant_id = $1 ORDER BY pipeline_id, position",
            ctx.tenant_id,
        )
        return [
            PipelineOut(
                id=p["id"],
                name=p["name"],
                position=p["position"],
                stages=[_stage_out(s) for s in stages if s["pipeline_id"] == p["id"]],
            )
            for p in pipelines
        ]

    async def get(self, ctx: TenantContext, pipeline_id: UUID) -> PipelineOut:
        """One pipeline; 404 when it is not in this workspace."""
        for pipeline in await self.all(ctx):
            if pipeline.id == pipeline_id:
                return pipeline
        raise NotFoundError(f"pipeline {pipeline_id} not found in this workspace")

    async def create(self, ctx: TenantContext, data: PipelineIn) -> PipelineOut:
        """Create a pipeline; a 409 naming ``name`` when the workspace has one so called."""
        ctx.require(Scope.PIPELINES_WRITE)
        name = validation.text(data.name, "name", max_length=100, required=True)
        _check_stage_names([stage.name for stage in data.stages])
        pipeline_id = await self._insert(ctx.tenant_id, name, data.stages)
        return await self._changed(ctx, pipeline_id, None)

    async def rename(self, ctx: TenantContext, pipeline_id: UUID, name: str) -> PipelineOut:
        """Rename a pipeline."""
        ctx.require(Scope.PIPELINES_WRITE)
        name = validation.text(name, "name", max_length=100, required=True)
        before = await self.get(ctx, pipeline_id)
        try:
            done = await self.db.fetchval(
                "UPDATE pipelines SET name = $3 WHERE tenant_id = $1 AND id = $2 RETURNING id",
                ctx.tenant_id,
                pipeline_id,
                name,
            )
        except asyncpg.UniqueViolationError:
            raise _name_taken("pipeline", name) from None
        if done is None:
            raise NotFoundError(f"pipeline {pipeline_id} not found in this workspace")
        return await self._changed(ctx, pipeline_id, before)

    async def add_stage(self, ctx: TenantContext, pipeline_id: UUID, data: StageIn) -> PipelineOut:
        """Append a stage to a pipeline."""
        ctx.require(Scope.PIPELINES_WRITE)
        pipeline = await self.get(ctx, pipeline_id)
        _check_stage_names([s.name for s in pipeline.stages] + [data.name])
        await self._insert_stage(ctx.tenant_id, pipeline_id, data, len(pipeline.stages))
        return await self._changed(ctx, pipeline_id, pipeline)

    async def update_stage(
        self, ctx: TenantContext, stage_id: UUID, patch: StagePatch
    ) -> PipelineOut:
        """Rename a stage or change its win probability."""
        ctx.require(Scope.PIPELINES_WRITE)
        stage = await self._stage(ctx, stage_id)
        name = stage["name"] if patch.name is msgspec.UNSET else patch.name
        probability = (
            stage["probability"] if patch.probability is msgspec.UNSET else patch.probability
        )
        name = validation.text(name, "name", max_length=100, required=True)
        win_probability(probability)
        before = await self.get(ctx, stage["pipeline_id"])
        try:
            await self.db.execute(
                "UPDATE pipeline_stages SET name = $3, probability = $4 "
                "WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                stage_id,
                name,
                probability,
            )
        except asyncpg.UniqueViolationError:
            raise _name_taken("stage", name) from None
        return await self._changed(ctx, stage["pipeline_id"], before)

    async def reorder(
        self, ctx: TenantContext, pipeline_id: UUID, stage_ids: list[UUID]
    ) -> PipelineOut:
        """Put the pipeline's stages in the given order (every stage exactly once)."""
        ctx.require(Scope.PIPELINES_WRITE)
        pipeline = await self.get(ctx, pipeline_id)
        current = {stage.id for stage in pipeline.stages}
        if set(stage_ids) != current or len(stage_ids) != len(current):
            reason = "must list every stage of this pipeline exactly once"
            raise InvalidInputError(f"stage_ids {reason}", fields={"stage_ids": reason})
        await self.db.execute(
            """
            UPDATE pipeline_stages s SET position = o.position - 1
            FROM unnest($2::uuid[]) WITH ORDINALITY AS o (id, position)
            WHERE s.tenant_id = $1 AND s.id = o.id
            """,
            ctx.tenant_id,
            stage_ids,
        )
        return await self._changed(ctx, pipeline_id, pipeline)

    async def remove_stage(
        self, ctx: TenantContext, stage_id: UUID, move_deals_to: UUID | None
    ) -> PipelineOut:
        """Remove a stage; its deals must be moved to another stage of the pipeline first."""
        ctx.require(Scope.PIPELINES_WRITE)
        stage = await self._stage(ctx, stage_id)
        before = await self.get(ctx, stage["pipeline_id"])
        deals = await self.db.fetchval(
            "SELECT count(*) FROM deals WHERE tenant_id = $1 AND stage_id = $2",
            ctx.tenant_id,
            stage_id,
        )
        siblings = await self.db.fetchval(
            "SELECT count(*) FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2",
            ctx.tenant_id,
            stage["pipeline_id"],
        )
        if siblings <= 1:
            raise ConflictError("a pipeline keeps at least one stage")
        if deals and move_deals_to is None:
            raise ConflictError(
                f"stage {stage['name']!r} has {deals} deal(s); pass move_deals_to with another "
                "stage of this pipeline",
                fields={"move_deals_to": "is required while the stage has deals"},
            )
        if deals:
            target = await self._stage(ctx, move_deals_to, field="move_deals_to")
            if target["pipeline_id"] != stage["pipeline_id"] or target["id"] == stage_id:
                reason = "must be another stage of the same pipeline"
                raise InvalidInputError(f"move_deals_to {reason}", fields={"move_deals_to": reason})
            deal_service = DealService(self.db)
            for deal_id in await self.db.fetch(
                "SELECT id FROM deals WHERE tenant_id = $1 AND stage_id = $2",
                ctx.tenant_id,
                stage_id,
            ):
                await deal_service.move(
                    ctx, deal_id["id"], DealMove(stage_id=target["id"], lost_reason="stage removed")
                )
        await self.db.execute(
            "DELETE FROM pipeline_stages WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, stage_id
        )
        await self.db.execute(
            """
            UPDATE pipeline_stages s SET position = o.position - 1
            FROM (SELECT id, row_number() OVER (ORDER BY position) AS position
                  FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2) o
            WHERE s.tenant_id = $1 AND s.id = o.id
            """,
            ctx.tenant_id,
            stage["pipeline_id"],
        )
        return await self._changed(ctx, stage["pipeline_id"], before)

    async def _changed(
        self, ctx: TenantContext, pipeline_id: UUID, before: PipelineOut | None
    ) -> PipelineOut:
        """The pipeline as it is now, with the change in the audit log."""
        after = await self.get(ctx, pipeline_id)
        await record(
            self.db,
            ctx,
            "create" if before is None else "update",
            "pipeline",
            pipeline_id,
            label=after.name,
            before=_pipeline_fields(before) if before else None,
            after=_pipeline_fields(after),
        )
        return after

    async def _stage(
        self, ctx: TenantContext, stage_id: UUID | None, field: str = "stage_id"
    ) -> asyncpg.Record:
        row = await self.db.fetchrow(
            "SELECT * FROM pipeline_stages WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            stage_id,
        )
        if row is None:
            if field == "stage_id":
                raise NotFoundError(f"stage {stage_id} not found in this workspace")
            reason = f"no stage {stage_id} in this workspace"
            raise InvalidInputError(f"{field}: {reason}", fields={field: reason})
        return row

    async def _insert(self, tenant_id: UUID, name: str, stages: list[StageIn]) -> UUID:
        pipeline_id = new_id()
        try:
            await self.db.execute(
                "INSERT INTO pipelines (tenant_id, id, name, position) VALUES ($1, $2, $3, "
                "(SELECT count(*) FROM pipelines WHERE tenant_id = $1))",
                tenant_id,
                pipeline_id,
                name,
            )
        except asyncpg.UniqueViolationError:
            raise _name_taken("pipeline", name) from None
        for position, stage in enumerate(stages):
            await self._insert_stage(tenant_id, pipeline_id, stage, position)
        return pipeline_id

    async def _insert_stage(
        self, tenant_id: UUID, pipeline_id: UUID, stage: StageIn, position: int
    ) -> None:
        name = validation.text(stage.name, "name", max_length=100, required=True)
        win_probability(stage.probability)
        await self.db.execute(
            """
            INSERT INTO pipeline_stages (tenant_id, id, pipeline_id, name, position,
                                         probability, kind)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            tenant_id,
            new_id(),
            pipeline_id,
            name,
            position,
            stage.probability,
            stage.kind,
        )


def _stage_out(row: Any) -> StageOut:
    return StageOut(
        id=row["id"],
        name=row["name"],
        position=row["position"],
        probability=row["probability"],
        kind=row["kind"],
    )


def _check_stage_names(names: list[str]) -> None:
    folded = [name.strip().casefold() for name in names]
    if len(set(folded)) != len(folded):
        reason = "stage names must differ within a pipeline"
        raise InvalidInputError(f"stages: {reason}", fields={"stages": reason})


def _name_taken(what: str, name: str) -> ConflictError:
    return ConflictError(
        f"this workspace already has a {what} called {name!r}",
        fields={"name": "is already taken"},
    )


class DealService:
    """Deals of one workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(
        self,
        ctx: TenantContext,
        *,
        pipeline_id: UUID | None = None,
        stage_id: UUID | None = None,
        status: str | None = None,
        owner_id: UUID | None = None,
        company_id: UUID | None = None,
        contact_id: UUID | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
        custom: dict[str, list[str]] | None = None,
        spec: ListSpec | None = None,
    ) -> DealPage:
        """Deals, most recently updated first (or in ``spec``'s sort), filtered.

        ``custom`` maps ``custom.<key>`` to values the deal's custom field must equal
        (for a multi-select: contain); ``spec`` (a saved view, filters, sort) comes
        from ``SavedViewService.list_spec``.
        """
        ctx.require(Scope.DEALS_READ)
        listing = await self._listing(ctx, q, custom, spec)
        for column, value in (
            ("r.pipeline_id", pipeline_id),
            ("r.stage_id", stage_id),
            ("r.status", status),
            ("r.owner_id", owner_id),
            ("r.company_id", company_id),
        ):
            if value is not None:
                listing.where(f"{column} = {{}}", value)
        if contact_id is not None:
            listing.where(
                "EXISTS (SELECT 1 FROM deal_contacts dc WHERE dc.tenant_id = r.tenant_id "
                "AND dc.deal_id = r.id AND dc.contact_id = {})",
                contact_id,
            )
        rows, next_cursor = await list_page(self.db, listing, cursor, limit)
        return DealPage(items=[deal_out(row) for row in rows], next_cursor=next_cursor)

    async def count(
        self,
        ctx: TenantContext,
        *,
        q: str | None = None,
        custom: dict[str, list[str]] | None = None,
        spec: ListSpec | None = None,
        status: str | None = None,
        pipeline_id: UUID | None = None,
        exact: bool = False,
    ) -> ListCount:
        """How many deals ``find`` would list: estimated unless ``exact`` (or few)."""
        ctx.require(Scope.DEALS_READ)
        listing = await self._listing(ctx, q, custom, spec)
        for column, value in (("r.status", status), ("r.pipeline_id", pipeline_id)):
            if value is not None:
                listing.where(f"{column} = {{}}", value)
        return await list_count(self.db, listing, exact=exact)

    async def _listing(
        self,
        ctx: TenantContext,
        q: str | None,
        custom: dict[str, list[str]] | None,
        spec: ListSpec | None,
    ) -> Listing:
        listing = Listing(ctx, "deals", spec, _DEAL_TABLE, _DEAL_COLUMNS)
        return await listing.narrowed(self.db, "deal", q, custom)

    async def get(self, ctx: TenantContext, deal_id: UUID) -> DealOut:
        """One deal; 404 when it is not in this workspace."""
        ctx.require(Scope.DEALS_READ)
        row = await self.db.fetchrow(
            f"{_DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id = $2", ctx.tenant_id, deal_id
        )
        if row is None or not may_see(ctx, row["owner_id"]):
            raise NotFoundError(f"deal {deal_id} not found in this workspace")
        return deal_out(row)

    async def create(self, ctx: TenantContext, data: DealCreate) -> DealOut:
        """Create a deal in its pipeline's first stage (or the stage given)."""
        ctx.require(Scope.DEALS_WRITE)
        fields = await self._checked(ctx, msgspec.structs.asdict(data), custom_written=True)
        stage = await self._start_stage(ctx, data.pipeline_id, data.stage_id)
        deal_id = new_id()
        now = datetime.now(UTC)
        await self.db.execute(
            """
            INSERT INTO deals (tenant_id, id, pipeline_id, stage_id, title, amount, currency,
                               expected_close_date, owner_id, company_id, status, closed_at,
                               search_text, created_at, updated_at, custom)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15::jsonb)
            """,
            ctx.tenant_id,
            deal_id,
            stage["pipeline_id"],
            stage["id"],
            fields["title"],
            fields["amount"],
            fields["currency"],
            fields["expected_close_date"],
            fields["owner_id"],
            fields["company_id"],
            stage["kind"],
            now if stage["kind"] != "open" else None,
            search_document(fields["title"]),
            now,
            json.dumps(fields["custom"]),
        )
        await self._set_contacts(ctx, deal_id, fields["contact_ids"])
        await self._record_move(ctx, deal_id, None, stage["id"])
        deal = await self.get(ctx, deal_id)
        await emit(self.db, ctx.tenant_id, "deal.created", msgspec.to_builtins(deal))
        await self._audit(ctx, "create", None, deal)
        return deal

    async def update(self, ctx: TenantContext, deal_id: UUID, patch: DealPatch) -> DealOut:
        """Change the fields present in ``patch``."""
        ctx.require(Scope.DEALS_WRITE)
        current = await self.get(ctx, deal_id)
        merged = msgspec.structs.asdict(current)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        merged.update(changes)
        fields = await self._checked(ctx, merged, custom_written="custom" in changes)
        await self.db.execute(
            """
            UPDATE deals SET title = $3, amount = $4, currency = $5, expected_close_date = $6,
                owner_id = $7, company_id = $8, search_text = $9, custom = $10::jsonb,
                updated_at = now()
            WHERE tenant_id = $1 AND id = $2
            """,
            ctx.tenant_id,
            deal_id,
            fields["title"],
            fields["amount"],
            fields["currency"],
            fields["expected_close_date"],
            fields["owner_id"],
            fields["company_id"],
            search_document(fields["title"]),
            json.dumps(fields["custom"]),
        )
        if patch.contact_ids is not msgspec.UNSET:
            await self._set_contacts(ctx, deal_id, fields["contact_ids"])
        deal = await self.get(ctx, deal_id)
        await emit(self.db, ctx.tenant_id, "deal.updated", msgspec.to_builtins(deal))
        await self._audit(ctx, "update", current, deal)
        return deal

    async def delete(self, ctx: TenantContext, deal_id: UUID) -> None:
        """Delete a deal with its history and timeline entries."""
        ctx.require(Scope.DEALS_WRITE)
        row = await self.db.fetchrow(
            f"{_DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id = $2", ctx.tenant_id, deal_id
        )
        deleted = await self.db.fetchval(
            "DELETE FROM deals WHERE tenant_id = $1 AND id = $2 RETURNING id",
            ctx.tenant_id,
            deal_id,
        )
        if deleted is None or row is None:
            raise NotFoundError(f"deal {deal_id} not found in this workspace")
        await emit(self.db, ctx.tenant_id, "deal.deleted", {"id": str(deal_id)})
        await self._audit(ctx, "delete", deal_out(row), None)

    async def move(self, ctx: TenantContext, deal_id: UUID, data: DealMove) -> DealOut:
        """Move a deal to another stage of its pipeline; won/lost stages close it."""
        ctx.require(Scope.DEALS_WRITE)
        # Two moves of one deal at once would both record the same "from" stage.
        await self.db.execute(
            "SELECT 1 FROM deals WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            ctx.tenant_id,
            deal_id,
        )
        deal = await self.get(ctx, deal_id)
        stage = await self.db.fetchrow(
            "SELECT * FROM pipeline_stages WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            data.stage_id,
        )
        if stage is None or stage["pipeline_id"] != deal.pipeline_id:
            reason = f"stage {data.stage_id} is not a stage of this deal's pipeline"
            raise InvalidInputError(f"stage_id: {reason}", fields={"stage_id": reason})
        if stage["id"] == deal.stage_id:
            return deal
        lost_reason = validation.text(data.lost_reason, "lost_reason", max_length=500)
        if stage["kind"] == "lost" and not lost_reason:
            reason = "is required when a deal is lost"
            raise InvalidInputError(f"lost_reason {reason}", fields={"lost_reason": reason})
        await self.db.execute(
            """
            UPDATE deals SET stage_id = $3, status = $4::varchar, lost_reason = $5,
                closed_at = CASE WHEN $4::varchar = 'open' THEN NULL ELSE now() END,
                updated_at = now()
            WHERE tenant_id = $1 AND id = $2
            """,
            ctx.tenant_id,
            deal_id,
            stage["id"],
            stage["kind"],
            lost_reason if stage["kind"] == "lost" else None,
        )
        await self._record_move(ctx, deal_id, deal.stage_id, stage["id"])
        moved = await self.get(ctx, deal_id)
        await self._timeline_entry(ctx, deal, moved)
        payload = msgspec.to_builtins(moved) | {"from_stage_id": str(deal.stage_id)}
        await emit(self.db, ctx.tenant_id, "deal.stage_changed", payload)
        if stage["kind"] in {"won", "lost"}:
            await emit(self.db, ctx.tenant_id, f"deal.{stage['kind']}", payload)
        await self._audit(ctx, "update", deal, moved)
        return moved

    async def _audit(
        self, ctx: TenantContext, action: Action, before: DealOut | None, after: DealOut | None
    ) -> None:
        """Record a deal's creation, change or deletion in the audit log."""
        deal = after or before
        assert deal is not None  # noqa: S101 - one of the two always exists
        await record(
            self.db,
            ctx,
            action,
            "deal",
            deal.id,
            label=deal.title,
            owner_id=deal.owner_id,
            before=msgspec.to_builtins(before) if before else None,
            after=msgspec.to_builtins(after) if after else None,
        )

    async def history(self, ctx: TenantContext, deal_id: UUID) -> list[StageMoveOut]:
        """Every move of the deal, oldest first, with time spent in the stage it left."""
        await self.get(ctx, deal_id)
        rows = await self.db.fetch(
            """
            SELECT from_stage_id, to_stage_id, moved_at, moved_by,
                   extract(epoch FROM moved_at - lag(moved_at) OVER (ORDER BY moved_at, id))
                       AS seconds
            FROM deal_stage_history WHERE tenant_id = $1 AND deal_id = $2
            ORDER BY moved_at, id
            """,
            ctx.tenant_id,
            deal_id,
        )
        return [
            StageMoveOut(
                from_stage_id=row["from_stage_id"],
                to_stage_id=row["to_stage_id"],
                moved_at=row["moved_at"],
                moved_by=row["moved_by"],
                seconds_in_previous_stage=None if row["seconds"] is None else int(row["seconds"]),
            )
            for row in rows
        ]

    async def forecast(
        self, ctx: TenantContext, pipeline_id: UUID | None = None
    ) -> list[ForecastRow]:
        """Open deals by close month, owner and currency: weighted and best-case totals."""
        ctx.require(Scope.DEALS_READ)
        rows = await self.db.fetch(
            """
            SELECT date_trunc('month', d.expected_close_date)::date AS month, d.owner_id,
                   d.currency, count(*) AS deals,
                   sum(d.amount * s.probability / 100) AS weighted, sum(d.amount) AS best_case
            FROM deals d JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
            WHERE d.tenant_id = $1 AND d.status = 'open'
              AND ($2::uuid IS NULL OR d.pipeline_id = $2)
              AND ($3::uuid[] IS NULL OR d.owner_id = ANY($3))
            GROUP BY 1, 2, 3 ORDER BY 1 NULLS LAST, 3, 2 NULLS LAST
            """,
            ctx.tenant_id,
            pipeline_id,
            visible_owner_list(ctx),
        )
        return [
            ForecastRow(
                month=row["month"],
                owner_id=row["owner_id"],
                currency=row["currency"],
                deals=row["deals"],
                weighted=row["weighted"].quantize(Decimal("0.01")),
                best_case=row["best_case"],
            )
            for row in rows
        ]

    async def _start_stage(
        self, ctx: TenantContext, pipeline_id: UUID | None, stage_id: UUID | None
    ) -> asyncpg.Record:
        if stage_id is not None:
            stage = await self.db.fetchrow(
                "SELECT * FROM pipeline_stages WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                stage_id,
            )
            if stage is None or (pipeline_id is not None and stage["pipeline_id"] != pipeline_id):
                reason = f"no stage {stage_id} in " + (
                    "that pipeline" if pipeline_id else "this workspace"
                )
                raise InvalidInputError(f"stage_id: {reason}", fields={"stage_id": reason})
            return stage
        stage = await self.db.fetchrow(
            """
            SELECT s.* FROM pipeline_stages s JOIN pipelines p
              ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id
            WHERE s.tenant_id = $1 AND ($2::uuid IS NULL OR p.id = $2)
            ORDER BY p.position, p.created_at, s.position LIMIT 1
            """,
            ctx.tenant_id,
            pipeline_id,
        )
        if stage is None:
            reason = f"no pipeline {pipeline_id} in this workspace"
            raise InvalidInputError(f"pipeline_id: {reason}", fields={"pipeline_id": reason})
        return stage

    async def _record_move(
        self, ctx: TenantContext, deal_id: UUID, from_stage: UUID | None, to_stage: UUID
    ) -> None:
        await self.db.execute(
            """
            INSERT INTO deal_stage_history (tenant_id, id, deal_id, from_stage_id, to_stage_id,
                                            moved_at, moved_by)
            VALUES ($1, $2, $3, $4, $5, clock_timestamp(), $6)
            """,
            ctx.tenant_id,
            new_id(),
            deal_id,
            from_stage,
            to_stage,
            ctx.membership_id,
        )

    async def _timeline_entry(self, ctx: TenantContext, before: DealOut, after: DealOut) -> None:
        from orbit.platform.crm.activities import ActivityService  # noqa: PLC0415 - mutual use

        await ActivityService(self.db).record(
            ctx,
            kind="stage_change",
            subject=f"{before.stage_name} → {after.stage_name}",
            deal_id=after.id,
            company_id=after.company_id,
            data={"from_stage_id": str(before.stage_id), "to_stage_id": str(after.stage_id)},
        )

    async def _set_contacts(
        self, ctx: TenantContext, deal_id: UUID, contact_ids: list[UUID]
    ) -> None:
        await self.db.execute(
            "DELETE FROM deal_contacts WHERE tenant_id = $1 AND deal_id = $2",
            ctx.tenant_id,
            deal_id,
        )
        await self.db.execute(
            "INSERT INTO deal_contacts (tenant_id, deal_id, contact_id) "
            "SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
            ctx.tenant_id,
            deal_id,
            contact_ids,
        )

    async def _checked(
        self, ctx: TenantContext, data: dict[str, Any], *, custom_written: bool
    ) -> dict[str, Any]:
        """Every field checked; custom values against the deal fields when written."""
        problems = validation.FieldProblems()
        out: dict[str, Any] = {
            "custom": checked_custom(problems, data.get("custom")),
            "title": problems.check(
                validation.text, data["title"], "title", max_length=200, required=True
            ),
            "currency": problems.check(currency_code, data["currency"]),
            "amount": problems.check(exact_amount, Decimal(data["amount"])),
            "expected_close_date": problems.check(
                validation.plausible_time, data.get("expected_close_date"), "expected_close_date"
            ),
            "owner_id": await checked_member(self.db, ctx, problems, data.get("owner_id")),
            "company_id": data.get("company_id"),
            "contact_ids": list(dict.fromkeys(data.get("contact_ids") or [])),
        }
        out |= await checked_links(
            self.db, ctx, problems, out, links=(("company_id", "companies", "company"),)
        )
        if out["contact_ids"]:
            found = await self.db.fetchval(
                "SELECT count(*) FROM contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
                ctx.tenant_id,
                out["contact_ids"],
            )
            if found != len(out["contact_ids"]):
                problems.add("contact_ids", "lists contacts that are not in this workspace")
        if custom_written:
            out["custom"] = await CustomFieldService(self.db).checked_values(
                ctx, "deal", problems, out["custom"]
            )
        problems.raise_any()
        return out
