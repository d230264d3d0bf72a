"""What a plugin gets when it acts for one tenant, and the values hooks exchange with Orbit.

:class:`PluginContext` carries the tenant, settings, scopes and services; events,
fragments, widgets, timeline entries and jobs are the values hooks take or return.

A context's services check the scopes the tenant's admin granted the plugin before
anything else and raise :class:`ScopeError` otherwise. They read through the
tenant's own transaction, where row-level security shows that tenant's rows only.
A plugin's own SQL (``ctx.db``) runs as the ``orbit_plugin_data`` role, which may
touch plugin tables only, inside a savepoint that is rolled back if the hook fails.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from markupsafe import Markup

from orbit.platform.errors import (
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
)
from orbit.plugins.links import TokenError
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
    from datetime import timedelta
    from decimal import Decimal
    from uuid import UUID

    import asyncpg

    from orbit.platform.db.engine import Database
    from orbit.plugins.host import TenantPlugins
    from orbit.plugins.links import PluginLinks
    from orbit.tenants.context import TenantContext

T = TypeVar("T")


class ScopeError(PermissionDeniedError):
    """The plugin used a service outside the scopes the tenant granted it (a 403)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A committed domain event (``contact.created``, ``deal.won``, …)."""

    id: UUID
    """Stable across redeliveries: key idempotent effects on it."""
    type: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fragment:
    """HTML a plugin puts into a page slot, under a title.

    ``html`` is inserted as it is: escape anything that came from users (Jinja2
    autoescaping or :func:`markupsafe.escape` do).
    """

    title: str
    html: str


@dataclass(frozen=True, slots=True)
class Widget:
    """A dashboard card."""

    title: str
    html: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line a plugin adds to a record's timeline.

    ``title`` and ``body`` are text (Orbit escapes them); ``url`` (``https://…`` or a path
    starting with ``/``) makes the title a link, e.g. to the plugin's own page.
    """

    occurred_at: datetime
    title: str
    body: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A coroutine the worker runs every ``every`` for each tenant that enabled the plugin."""

    name: str
    every: timedelta
    run: Callable[[PluginContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as plugins see it."""

    id: UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_id: UUID | None
    owner_id: UUID | None
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal as plugins see it; ``amount`` is exact, ``currency`` its ISO 4217 code."""

    id: UUID
    title: str
    amount: Decimal
    currency: str
    status: str
    """``open``, ``won`` or ``lost``."""
    pipeline_id: UUID
    stage_id: UUID
    stage_name: str
    company_id: UUID | None
    contact_ids: tuple[UUID, ...]
    owner_id: UUID | None
    expected_close_date: date | None
    closed_at: datetime | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def contact_id(self) -> UUID | None:
        """The deal's contact: the first of ``contact_ids`` (``None`` when it has none)."""
        return self.contact_ids[0] if self.contact_ids else None


@dataclass(frozen=True, slots=True)
class Company:
    """A company as plugins see it."""

    id: UUID
    name: str
    domain: str | None
    industry: str | None
    size: str | None
    address: str | None
    phone: str | None
    owner_id: UUID | None
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Task:
    """A task as plugins see it; ``assignee_id`` is a member's id (``ctx.users``)."""

    id: UUID
    title: str
    notes: str
    due_at: datetime
    assignee_id: UUID | None
    priority: str
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    done_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """An active member of the workspace; ``id`` is what ``owner_id`` and ``assignee_id`` hold."""

    id: UUID
    name: str
    email: str
    role: str
    """``owner``, ``admin``, ``member`` or ``viewer``."""
    time_zone: str
    """An IANA time zone (``Europe/Athens``); ``UTC`` unless the member chose one."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who called a plugin's route (``ctx.actor``): a signed-in member or an API key."""

    member_id: UUID | None
    """The member's id (what ``ctx.users.list()`` calls ``id``); ``None`` for an API key."""
    role: str | None
    """``owner``, ``admin``, ``member`` or ``viewer``; ``None`` for an API key."""

    @property
    def manager(self) -> bool:
        """An owner or admin (API keys act for the workspace: also a manager)."""
        return self.role in {None, "owner", "admin"}


@dataclass(frozen=True, slots=True)
class Answer:
    """One plugin's answer to a plugin-declared hook (``ctx.hooks.call``)."""

    plugin_id: str
    value: Any


class PluginDatabase:
    """SQL on the plugin's own tables, in the tenant's transaction (``ctx.db``).

    Runs as ``orbit_plugin_data`` (DML on plugin tables only) under row-level
    security: the tenant's rows are the only ones visible, and a row written for
    another tenant is refused. The first query opens a savepoint; Orbit releases it
    when the hook returns and rolls it back when the hook fails.
    """

    def __init__(self, db: Database, plugin_id: str) -> None:
        self._db = db
        self._savepoint = f"orbit_plugin_{plugin_id}"
        self.opened = False

    async def _enter(self) -> None:
        if not self.opened:
            await self._db.execute(f"SAVEPOINT {self._savepoint}; SET LOCAL ROLE orbit_plugin_data")
            self.opened = True

    async def settle(self, *, ok: bool) -> None:
        """End the savepoint: keep the plugin's writes, or undo them (Orbit calls this)."""
        if not self.opened:
            return
        self.opened = False
        if ok:
            await self._db.execute(f"RESET ROLE; RELEASE SAVEPOINT {self._savepoint}")
        else:
            # Rolling back to the savepoint also undoes SET LOCAL ROLE.
            await self._db.execute(
                f"ROLLBACK TO SAVEPOINT {self._savepoint}; RELEASE SAVEPOINT {self._savepoint}"
            )

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Rows of ``query`` (``$1``… placeholders)."""
        await self._enter()
        return await self._db.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """The first row of ``query``."""
        await self._enter()
        return await self._db.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        """The first value of ``query``."""
        await self._enter()
        return await self._db.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        """Run ``query``; its status."""
        await self._enter()
        return await self._db.execute(query, *args)


class _Scoped:
    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx

    @property
    def _db(self) -> Database:
        return self._ctx.core_db

    async def _fetchrow(self, scope: str, query: str, *args: object) -> asyncpg.Record | None:
        rows = await self._fetch(scope, query, *args)
        return rows[0] if rows else None

    async def _fetch(self, scope: str, query: str, *args: object) -> list[asyncpg.Record]:
        self._ctx.require(scope)
        async with self._ctx.as_app():
            return await self._db.fetch(query, self._ctx.tenant_id, *args)

    async def _write(
        self, scope: str, core: Sequence[Scope], action: Callable[[TenantContext], Awaitable[T]]
    ) -> T:
        """Run ``action`` (a call of Orbit's own service) as the plugin, in a savepoint.

        The service sees a principal holding ``core`` only, the platform scopes this
        one call needs; a failure undoes whatever it wrote and leaves the transaction
        usable.
        """
        self._ctx.require(scope)
        async with self._ctx.as_app():
            await self._refuse_when_read_only()
            async with self._db.connection.transaction():
                return await action(self._ctx.principal(*core))

    async def _refuse_when_read_only(self) -> None:
        """A 402, as the API answers, while the workspace's subscription leaves it read-only."""
        from orbit.billing.entitlements import entitlements  # noqa: PLC0415 - plans load late

        row = await self._db.fetchrow(
            "SELECT name, plan, subscription_status, past_due_since FROM tenants WHERE id = $1",
            self._ctx.tenant_id,
        )
        if (
            row is not None
            and entitlements(
                row["plan"], row["subscription_status"], row["past_due_since"], datetime.now(UTC)
            ).read_only
        ):
            raise PaymentRequiredError(
                f"{row['name']} is read-only until its subscription is paid; plugin "
                f"{self._ctx.plugin_id} cannot change its records either"
            )


def _loaded(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _contact(row: asyncpg.Record | Any) -> Contact:
    return Contact(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        company_id=row["company_id"],
        owner_id=row["owner_id"],
        tags=tuple(row["tags"] or ()),
        custom=_loaded(row["custom"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _deal(row: asyncpg.Record) -> Deal:
    return Deal(
        id=row["id"],
        title=row["title"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        pipeline_id=row["pipeline_id"],
        stage_id=row["stage_id"],
        stage_name=row["stage_name"],
        company_id=row["company_id"],
        contact_ids=tuple(row["contact_ids"]),
        owner_id=row["owner_id"],
        expected_close_date=row["expected_close_date"],
        closed_at=row["closed_at"],
        custom=_loaded(row["custom"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_CONTACT_COLUMNS = (
    "r.id, r.first_name, r.last_name, r.email, r.phone, r.company_id, r.owner_id, r.tags, "
    "r.custom, r.created_at, r.updated_at"
)
MAX_QUERY_LIMIT = 1000
"""Contacts one ``ctx.contacts.query`` call returns at most; page on with ``after``."""
CONTACT_FIELDS = frozenset(
    {"first_name", "last_name", "email", "phone", "company_id", "owner_id", "tags", "custom"}
)
"""What ``ctx.contacts.update`` may change."""


def _bad(field: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {reason}", fields={field: reason})


class Contacts(_Scoped):
    """The tenant's contacts (``contacts:read``; changes ``contacts:write``)."""

    async def get(self, contact_id: UUID) -> Contact | None:
        """One contact, or ``None`` when the tenant has no such contact."""
        row = await self._fetchrow(
            "contacts:read",
            f"SELECT {_CONTACT_COLUMNS} FROM contacts r WHERE r.tenant_id = $1 AND r.id = $2",
            contact_id,
        )
        return None if row is None else _contact(row)

    async def recent(self, limit: int = 50) -> list[Contact]:
        """The most recently changed contacts (at most 500)."""
        rows = await self._fetch(
            "contacts:read",
            f"SELECT {_CONTACT_COLUMNS} FROM contacts r WHERE r.tenant_id = $1 "
            "ORDER BY r.updated_at DESC, r.id DESC LIMIT $2",
            min(max(limit, 1), 500),
        )
        return [_contact(row) for row in rows]

    async def by_email(self, email: str) -> Contact | None:
        """The contact with this email address (case-insensitive), or ``None``.

        Several contacts may share an address: the first one created is returned.
        """
        if not isinstance(email, str) or not email.strip():
            return None
        self._ctx.require("contacts:read")
        async with self._ctx.as_app():
            # Through the email index (a query of the app role would read every contact).
            found = await self._db.fetchval("SELECT orbit_contact_by_email($1)", email.strip())
        return None if found is None else await self.get(found)

    async def query(
        self,
        filters: Any = None,
        *,
        q: str | None = None,
        after: UUID | None = None,
        limit: int = 500,
    ) -> list[Contact]:
        """Contacts matching ``filters`` (and ``q``), in id order, after the id ``after``.

        ``filters`` is a list in the saved views' format (``[{"field": "tags", "op":
        "contains", "value": "vip"}]``, see docs/plugins.md); a malformed one raises
        ``InvalidInputError`` (a 400) naming it. ``q`` matches names, email and company
        as a substring, ignoring case and accents. Page on with the last contact's id
        as ``after``; at most 1,000 a call.
        """
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise _bad("limit", f"must be a whole number from 1 to {MAX_QUERY_LIMIT}")
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise _bad("limit", f"must be from 1 to {MAX_QUERY_LIMIT}")
        self._ctx.require("contacts:read")
        async with self._ctx.as_app():
            where, args = await self._where(filters, q)
            if after is not None:
                args.append(after)
                where += f" AND r.id > ${len(args)}::uuid"
            args.append(limit)
            rows = await self._db.fetch(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts r WHERE {where} "
                f"ORDER BY r.id LIMIT ${len(args)}",
                *args,
            )
        return [_contact(row) for row in rows]

    async def count(self, filters: Any = None, *, q: str | None = None) -> int:
        """How many contacts :meth:`query` would go through (one ``count(*)``, exact)."""
        self._ctx.require("contacts:read")
        async with self._ctx.as_app():
            where, args = await self._where(filters, q)
            count = await self._db.fetchval(f"SELECT count(*) FROM contacts r WHERE {where}", *args)
        return int(count)

    async def _where(self, filters: Any, q: str | None) -> tuple[str, list[Any]]:
        """The conditions of ``filters`` and ``q``, checked as saved views check theirs."""
        from orbit.platform.crm.listing import filter_conditions, parse_filters  # noqa: PLC0415
        from orbit.platform.crm.service import checked_query  # noqa: PLC0415
        from orbit.platform.crm.views import SavedViewService  # noqa: PLC0415
        from orbit.platform.search.normalize import like_pattern  # noqa: PLC0415
        from orbit.tenants.roles import Scope  # noqa: PLC0415

        args: list[Any] = [self._ctx.tenant_id]
        conditions = ["r.tenant_id = $1"]
        if filters:
            fields = await SavedViewService(self._db).fields(
                self._ctx.principal(Scope.CONTACTS_READ), "contact"
            )
            conditions += filter_conditions(parse_filters(filters, fields), fields, args)
        query = checked_query(q)
        if query:
            args.append(like_pattern(query))
            conditions.append(f"r.search_text LIKE ${len(args)}")
        return " AND ".join(conditions), args

    async def update(self, contact_id: UUID, **fields: Any) -> Contact:
        """Change some of a contact's fields, as a member's edit would (``contacts:write``).

        Fields: first_name, last_name, email, phone, company_id, owner_id, tags (the
        whole list), custom (the whole dict). Checked like the API's; a bad one raises
        ``InvalidInputError`` naming it; an unknown contact ``NotFoundError``. Writes
        the ``contact.updated`` event and the audit entry (by "plugin <id>").
        """
        unknown = sorted(set(fields) - CONTACT_FIELDS)
        if unknown:
            raise _bad(
                unknown[0],
                f"is not a contact field plugins change ({', '.join(sorted(CONTACT_FIELDS))})",
            )
        patch = _patch(fields)

        async def change(principal: TenantContext) -> Contact:
            from orbit.platform.crm.service import ContactService  # noqa: PLC0415

            return _contact_out(await ContactService(self._db).update(principal, contact_id, patch))

        return await self._write("contacts:write", _CONTACT_WRITE, change)

    async def add_tags(self, contact_id: UUID, tags: Sequence[str]) -> Contact:
        """Add ``tags`` to the contact's (those it has already stay once) (``contacts:write``)."""
        if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
            raise _bad("tags", "must be a list of tags")

        async def tag(principal: TenantContext) -> Contact:
            from orbit.platform.crm.schemas import ContactPatch  # noqa: PLC0415
            from orbit.platform.crm.service import ContactService  # noqa: PLC0415

            current = await self._db.fetchval(  # locked: two additions at once keep both
                "SELECT tags FROM contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                self._ctx.tenant_id,
                contact_id,
            )
            if current is None:
                raise NotFoundError(f"contact {contact_id} not found in this workspace")
            patch = ContactPatch(tags=[*current, *tags])
            return _contact_out(await ContactService(self._db).update(principal, contact_id, patch))

        return await self._write("contacts:write", _CONTACT_WRITE, tag)


def _patch(fields: dict[str, Any]) -> Any:
    """``fields`` as the API's contact patch; a 400 naming the field of a wrong type."""
    from orbit.platform.crm.schemas import ContactPatch  # noqa: PLC0415

    plain = {k: list(v) if k == "tags" and isinstance(v, tuple) else v for k, v in fields.items()}
    plain = {k: str(v) if k.endswith("_id") and v is not None else v for k, v in plain.items()}
    try:
        return msgspec.convert(plain, ContactPatch, strict=False)
    except msgspec.ValidationError as exc:
        where = str(exc).rsplit("at `$.", 1)
        field = where[1].split("`")[0].split("[")[0] if len(where) > 1 else "fields"
        raise _bad(field, str(exc)) from None


def _contact_out(contact: Any) -> Contact:
    return _contact(msgspec.structs.asdict(contact))


class Companies(_Scoped):
    """The tenant's companies (``companies:read``)."""

    async def get(self, company_id: UUID) -> Company | None:
        """One company, or ``None`` when the tenant has no such company."""
        row = await self._fetchrow(
            "companies:read",
            "SELECT id, name, domain, industry, size, address, phone, owner_id, tags, custom, "
            "created_at, updated_at FROM companies WHERE tenant_id = $1 AND id = $2",
            company_id,
        )
        if row is None:
            return None
        values = dict(row)
        values["tags"] = tuple(values["tags"] or ())
        values["custom"] = _loaded(values["custom"])
        return Company(**values)


_DEAL_SELECT = (
    "SELECT d.*, s.name AS stage_name, coalesce(array(SELECT dc.contact_id FROM deal_contacts dc "
    "WHERE dc.tenant_id = d.tenant_id AND dc.deal_id = d.id ORDER BY dc.contact_id), '{}') "
    "AS contact_ids FROM deals d "
    "JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id"
)


class Deals(_Scoped):
    """The tenant's deals (``deals:read``; moves ``deals:write``)."""

    async def get(self, deal_id: UUID) -> Deal | None:
        """One deal, or ``None``."""
        row = await self._fetchrow(
            "deals:read", f"{_DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id = $2", deal_id
        )
        return None if row is None else _deal(row)

    async def for_contact(self, contact_id: UUID) -> list[Deal]:
        """Deals linked to a contact."""
        rows = await self._fetch(
            "deals:read",
            f"{_DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id IN (SELECT deal_id FROM "
            "deal_contacts WHERE tenant_id = $1 AND contact_id = $2) ORDER BY d.created_at",
            contact_id,
        )
        return [_deal(row) for row in rows]

    async def move(self, deal_id: UUID, stage_id: UUID, *, lost_reason: str | None = None) -> Deal:
        """Move a deal to another stage of its pipeline, as the kanban board does.

        A won or lost stage closes the deal (a lost one needs ``lost_reason``). Writes
        ``deal.stage_changed`` (and ``deal.won``/``deal.lost``), the timeline entry and
        the audit entry. ``NotFoundError`` for a deal not in this workspace,
        ``InvalidInputError`` for a stage not of its pipeline.
        """

        async def move(principal: TenantContext) -> Deal:
            from orbit.platform.crm.deals import DealService  # noqa: PLC0415
            from orbit.platform.crm.schemas import DealMove  # noqa: PLC0415

            moved = await DealService(self._db).move(
                principal, deal_id, DealMove(stage_id=stage_id, lost_reason=lost_reason)
            )
            return await self._reread(moved.id)

        return await self._write("deals:write", _DEAL_WRITE, move)

    async def mark_won(self, deal_id: UUID) -> Deal:
        """Move a deal to its pipeline's (first) won stage; see :meth:`move`."""

        async def win(principal: TenantContext) -> Deal:
            from orbit.platform.crm.deals import DealService  # noqa: PLC0415
            from orbit.platform.crm.schemas import DealMove  # noqa: PLC0415

            row = await self._db.fetchrow(
                "SELECT d.status, (SELECT s.id FROM pipeline_stages s WHERE s.tenant_id = "
                "d.tenant_id AND s.pipeline_id = d.pipeline_id AND s.kind = 'won' "
                "ORDER BY s.position LIMIT 1) AS won FROM deals d "
                "WHERE d.tenant_id = $1 AND d.id = $2",
                self._ctx.tenant_id,
                deal_id,
            )
            if row is None:
                raise NotFoundError(f"deal {deal_id} not found in this workspace")
            if row["won"] is None:
                raise _bad("deal_id", f"deal {deal_id}'s pipeline has no won stage")
            if row["status"] != "won":
                await DealService(self._db).move(principal, deal_id, DealMove(stage_id=row["won"]))
            return await self._reread(deal_id)

        return await self._write("deals:write", _DEAL_WRITE, win)

    async def _reread(self, deal_id: UUID) -> Deal:
        row = await self._db.fetchrow(
            f"{_DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id = $2", self._ctx.tenant_id, deal_id
        )
        assert row is not None  # noqa: S101 - written in this very savepoint
        return _deal(row)


class Tasks(_Scoped):
    """Tasks for the workspace's members (``tasks:read``; creating them ``tasks:write``)."""

    async def get(self, task_id: UUID) -> Task | None:
        """One task, or ``None`` when the tenant has no such task."""
        row = await self._fetchrow(
            "tasks:read",
            "SELECT id, title, notes, due_at, assignee_id, priority, contact_id, company_id, "
            "deal_id, done_at, created_at FROM tasks WHERE tenant_id = $1 AND id = $2",
            task_id,
        )
        return None if row is None else Task(**dict(row))

    async def create(
        self,
        title: str,
        *,
        due_at: datetime | None = None,
        assignee_id: UUID | None = None,
        contact_id: UUID | None = None,
        deal_id: UUID | None = None,
        company_id: UUID | None = None,
        notes: str = "",
    ) -> UUID:
        """Create a task (due now unless ``due_at``, a time with a zone); its id.

        ``assignee_id`` is a member's id (``ctx.users.list()``); unassigned when
        ``None``. Linked records must be in this workspace; a bad field raises
        ``InvalidInputError`` naming it. Audited as the API's task creation.
        """

        async def create(principal: TenantContext) -> UUID:
            from orbit.platform.crm.schemas import TaskIn  # noqa: PLC0415
            from orbit.platform.crm.tasks import TaskService  # noqa: PLC0415

            data = TaskIn(
                title=title,
                due_at=due_at or datetime.now(UTC),
                assignee_id=assignee_id,
                notes=notes,
                contact_id=contact_id,
                company_id=company_id,
                deal_id=deal_id,
            )
            task = await TaskService(self._db).create(principal, data)
            return task.id

        if not isinstance(title, str) or not isinstance(notes, str):
            raise _bad("title" if not isinstance(title, str) else "notes", "must be text")
        return await self._write("tasks:write", _TASK_WRITE, create)


class Users(_Scoped):
    """The workspace's members (``users:read``)."""

    async def list(self) -> list[User]:
        """Active members, by name then email."""
        rows = await self._fetch(
            "users:read",
            "SELECT m.id, u.name, u.email, m.role, u.time_zone FROM memberships m "
            "JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND m.status = 'active' "
            "ORDER BY lower(u.name), lower(u.email), m.id",
        )
        return [User(**dict(row)) for row in rows]


class Mail(_Scoped):
    """Email from the workspace (``mail:send``): queued now, sent by the worker after commit."""

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        headers: dict[str, str] | None = None,
        reply_to: str | None = None,
    ) -> UUID:
        """Queue one email in the current transaction; its id in the outbox.

        ``text`` is the plain-text part, ``html`` an HTML alternative. ``headers`` adds
        e.g. ``List-Unsubscribe`` (not From, To, Subject or MIME headers). Rolled back
        with the transaction; counts against the plan's emails a month (a
        ``QuotaExceededError``, 402, when over). A bad field raises
        ``InvalidInputError`` naming it.
        """
        from orbit.platform.events.mail import checked_address, queue_email  # noqa: PLC0415

        self._ctx.require("mail:send")
        address = checked_address(to, "to")
        answer_to = checked_address(reply_to, "reply_to") if reply_to is not None else None
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 300:  # noqa: PLR2004
            raise _bad("subject", "must be 1 to 300 characters of text")
        if any(ch in subject for ch in "\r\n\0"):
            raise _bad("subject", "must be one line")
        if not isinstance(text, str) or "\0" in text:
            raise _bad("text", "must be text")
        if html is not None and (not isinstance(html, str) or "\0" in html):
            raise _bad("html", "must be text")
        async with self._ctx.as_app(), self._db.connection.transaction():
            return await queue_email(
                self._db,
                self._ctx.tenant_id,
                address,
                subject.strip(),
                text,
                html=html,
                reply_to=answer_to,
                headers=headers,
            )


MAX_EVENT_DATA = 65_536
"""Bytes of JSON one plugin event may carry."""


class Events(_Scoped):
    """The plugin's own events: types its manifest's ``emits`` lists."""

    async def emit(self, event_type: str, data: dict[str, Any]) -> UUID:
        """Write ``event_type`` (``<plugin id>.<name>``) with ``data`` to the outbox; its id.

        In the current transaction: delivered after commit, at least once, to the
        workspace's enabled plugins whose manifest ``events`` lists the type (and to
        webhooks subscribed to it). A type the manifest does not list raises
        ``ScopeError``; ``data`` must be a JSON object of at most 64 KB.
        """
        from orbit.platform.events.outbox import emit  # noqa: PLC0415

        if event_type not in self._ctx.emits:
            raise ScopeError(
                f"plugin {self._ctx.plugin_id} may not emit {event_type!r}: its manifest's "
                f"emits lists {', '.join(sorted(self._ctx.emits)) or 'nothing'}"
            )
        try:
            encoded = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _bad("data", f"must be JSON-serialisable ({exc})") from None
        if not isinstance(data, dict):
            raise _bad("data", "must be a JSON object (a dict)")
        if len(encoded) > MAX_EVENT_DATA:
            raise _bad("data", f"must be at most {MAX_EVENT_DATA} bytes of JSON")
        async with self._ctx.as_app():
            return await emit(
                self._db, self._ctx.tenant_id, event_type, data, declared_by_plugin=True
            )


class Hooks(_Scoped):
    """Hooks plugins declare (manifest ``hookspecs``), called on this workspace's plugins."""

    async def call(self, name: str, **kwargs: Any) -> list[Answer]:
        """Call the plugin-declared hook ``name`` on every plugin enabled in this workspace.

        Each implementation runs isolated, as Orbit's own hooks do (an exception or an
        overrun is logged and counted, and leaves that plugin out); the answers that
        are not ``None``, in call order.
        """
        return await self._call(name, kwargs, first=False)

    async def first(self, name: str, **kwargs: Any) -> Any:
        """The first answer that is not ``None`` (the rest are not called), else ``None``."""
        answers = await self._call(name, kwargs, first=True)
        return answers[0].value if answers else None

    async def _call(self, name: str, kwargs: dict[str, Any], *, first: bool) -> list[Answer]:
        plugins = self._ctx.plugins
        if plugins is None:
            raise RuntimeError("plugin hooks are called through Orbit's plugin host")
        caller = getattr(plugins.host.registry.pm.hook, name, None)
        if name.startswith("orbit_") or caller is None or not caller.has_spec():
            raise ValueError(f"{name!r} is not a hook a loaded plugin declares")
        expected = set(caller.spec.argnames) - {"ctx"}
        if set(kwargs) != expected:
            raise TypeError(
                f"{name} takes {', '.join(sorted(expected)) or 'no arguments'} "
                f"(besides ctx), given {', '.join(sorted(kwargs)) or 'none'}"
            )
        async with self._ctx.as_app(release=True):
            results = await plugins.call(name, first=first, **kwargs)
        return [Answer(result.plugin_id, result.value) for result in results]


_CONTACT_WRITE = (Scope.CONTACTS_READ, Scope.CONTACTS_WRITE)
_DEAL_WRITE = (Scope.DEALS_READ, Scope.DEALS_WRITE, Scope.ACTIVITIES_WRITE)
_TASK_WRITE = (Scope.ACTIVITIES_READ, Scope.ACTIVITIES_WRITE)
"""The platform scopes each kind of plugin write needs from Orbit's services."""


class PluginContext:
    """One plugin acting for one tenant: its settings, its granted scopes, its services.

    A plain class, not a dataclass: Litestar injects it into plugin routes and would
    otherwise validate it field by field on every request.
    """

    __slots__ = (
        "actor",
        "companies",
        "contacts",
        "core_db",
        "csrf_token",
        "db",
        "deals",
        "emits",
        "events",
        "hooks",
        "links",
        "log",
        "mail",
        "plugin_id",
        "plugins",
        "scopes",
        "settings",
        "tasks",
        "tenant_id",
        "tenant_slug",
        "users",
    )

    def __init__(
        self,
        *,
        plugin_id: str,
        tenant_id: UUID,
        tenant_slug: str,
        settings: Mapping[str, Any],
        scopes: frozenset[str],
        core_db: Database,
        links: PluginLinks | None = None,
        emits: frozenset[str] = frozenset(),
        plugins: TenantPlugins | None = None,
    ) -> None:
        """Build the context and its scoped services."""
        self.plugin_id = plugin_id
        self.tenant_id = tenant_id
        self.tenant_slug = tenant_slug
        self.settings = settings
        """The tenant's configuration of the plugin (secrets decrypted), defaults filled in."""
        self.scopes = scopes
        """Scopes the tenant's admin granted."""
        self.core_db = core_db
        self.emits = emits
        """Event types the manifest declares (``ctx.events.emit`` accepts these only)."""
        self.plugins = plugins
        """The workspace's enabled plugins (``ctx.hooks`` calls them); Orbit sets it."""
        self.log = logging.getLogger(f"orbit.plugin.{plugin_id}")
        self.db = PluginDatabase(core_db, plugin_id)
        self.contacts = Contacts(self)
        self.companies = Companies(self)
        self.deals = Deals(self)
        self.links = links
        """Token signing and absolute URLs (``None`` outside a running Orbit)."""
        self.csrf_token: str | None = None
        """The signed-in user's CSRF token in a page request, else ``None``."""
        self.actor: Actor | None = None
        """Who called the plugin's API or page route; ``None`` in hooks and public routes."""
        self.tasks = Tasks(self)
        self.users = Users(self)
        self.mail = Mail(self)
        self.events = Events(self)
        self.hooks = Hooks(self)

    def __repr__(self) -> str:
        """Plugin and tenant (settings may hold secrets)."""
        return f"PluginContext(plugin_id={self.plugin_id!r}, tenant_slug={self.tenant_slug!r})"

    def require(self, scope: str) -> None:
        """Raise :class:`ScopeError` unless the tenant granted ``scope``."""
        if scope not in self.scopes:
            raise ScopeError(
                f"plugin {self.plugin_id} was not granted {scope!r} in workspace "
                f"{self.tenant_slug} (granted: {', '.join(sorted(self.scopes)) or 'none'})"
            )

    def _links(self) -> PluginLinks:
        if self.links is None:
            raise RuntimeError("this context has no signing key or public URL (not from Orbit)")
        return self.links

    def sign(self, data: dict[str, Any], purpose: str, max_age: timedelta | None = None) -> str:
        """A short URL-safe token carrying ``data`` for this plugin, workspace and ``purpose``.

        HMAC-signed with a key only this plugin has; it expires after ``max_age``
        (``None``: never). ``data`` comes back from :meth:`verify` or ``public.open``
        as JSON (a UUID as its string). Tokens are signed, not encrypted: anyone
        holding the link can read ``data``, so put ids in it, not secrets.
        """
        return self._links().sign(self.plugin_id, self.tenant_id, data, purpose, max_age)

    def verify(self, token: str, purpose: str) -> dict[str, Any]:
        """The data of a token this plugin signed in this workspace for ``purpose``.

        Raises :class:`~orbit.plugins.links.TokenError` (a 404) for any other token,
        :class:`~orbit.plugins.links.TokenExpiredError` (a 410) for an expired one.
        """
        tenant_id, data = self._links().verify(self.plugin_id, token, purpose)
        if tenant_id != self.tenant_id:
            raise TokenError("this link is not valid")
        return data

    def url(self, path: str, *, public: bool = False) -> str:
        """The absolute URL of one of this plugin's pages, or of a public route with ``public``.

        Pages are under ``/t/{slug}/apps/{plugin id}``, public routes under
        ``/p/{plugin id}``; both start with ``ORBIT_PUBLIC_URL``.
        """
        return self._links().url(
            path, plugin_id=self.plugin_id, tenant_slug=self.tenant_slug, public=public
        )

    def csrf_field(self) -> Markup:
        """The hidden ``csrf_token`` input a plain (non-htmx) form of a page must carry.

        Empty outside a signed-in page request (public routes need none).
        """
        if not self.csrf_token:
            return Markup("")
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(self.csrf_token)

    def principal(self, *scopes: Scope) -> TenantContext:
        """The plugin as the principal of one call of Orbit's services, holding ``scopes``.

        It sees every record of the workspace (the admin granted the plugin its
        scopes for all of them); the audit log names it as ``plugin <id>``.
        """
        from orbit.tenants.context import TenantContext  # noqa: PLC0415 - Litestar-heavy

        return TenantContext(
            tenant_id=self.tenant_id,
            tenant_slug=self.tenant_slug,
            tenant_name="",
            scopes=frozenset(scopes),
            plugin_id=self.plugin_id,
        )

    @asynccontextmanager
    async def as_app(self, *, release: bool = False) -> AsyncIterator[None]:
        """Run Orbit's own reads and writes as its app role, back to the plugin's after.

        After ``ctx.db`` was used, the transaction is in the plugin's savepoint as
        ``orbit_plugin_data`` (plugin tables only). With ``release`` the savepoint is
        also set aside, so nested plugin calls open and settle their own.
        """
        opened = self.db.opened
        if opened:
            await self.core_db.execute("RESET ROLE")
            if release:
                self.db.opened = False
        try:
            yield
        finally:
            if opened:
                self.db.opened = True
                await self.core_db.execute("SET LOCAL ROLE orbit_plugin_data")
