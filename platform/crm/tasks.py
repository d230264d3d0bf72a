"""Tasks and reminders: what each member has to do, when, and the bell that reminds them."""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from orbit.platform import validation
from orbit.platform.audit.log import record
from orbit.platform.crm.schemas import Inbox, NotificationOut, TaskIn, TaskOut, TaskPatch
from orbit.platform.crm.service import checked_links, checked_member
from orbit.platform.errors import NotFoundError
from orbit.platform.events.mail import queue_email
from orbit.platform.events.outbox import emit
from orbit.platform.ids import new_id
from orbit.tenants.quotas import QuotaExceededError
from orbit.tenants.roles import Scope

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database
    from orbit.tenants.context import TenantContext

log = logging.getLogger(__name__)

MAX_TASKS = 500


def next_occurrence(due_at: datetime, recurrence: str) -> datetime | None:
    """When a recurring task comes back after ``due_at`` (months keep the day, clamped)."""
    if recurrence == "daily":
        return due_at + timedelta(days=1)
    if recurrence == "weekly":
        return due_at + timedelta(weeks=1)
    if recurrence == "monthly":
        year, month = due_at.year + due_at.month // 12, due_at.month % 12 + 1
        day = min(due_at.day, calendar.monthrange(year, month)[1])
        return due_at.replace(year=year, month=month, day=day)
    return None


def task_out(row: Any) -> TaskOut:
    """A database row as the API's task."""
    return TaskOut(**{field: row[field] for field in TaskOut.__struct_fields__})


class TaskService:
    """Tasks of one workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def mine(self, ctx: TenantContext, *, done: bool = False) -> list[TaskOut]:
        """The caller's open (or done) tasks, soonest first."""
        ctx.require(Scope.ACTIVITIES_READ)
        rows = await self.db.fetch(
            f"""
            SELECT * FROM tasks WHERE tenant_id = $1 AND assignee_id IS NOT DISTINCT FROM $2
              AND done_at IS {"NOT " if done else ""}NULL
            ORDER BY {"done_at DESC" if done else "due_at"}, id LIMIT {MAX_TASKS}
            """,
            ctx.tenant_id,
            ctx.membership_id,
        )
        return [task_out(row) for row in rows]

    async def get(self, ctx: TenantContext, task_id: UUID) -> TaskOut:
        """One task; 404 when it is not in this workspace."""
        ctx.require(Scope.ACTIVITIES_READ)
        row = await self.db.fetchrow(
            "SELECT * FROM tasks WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, task_id
        )
        if row is None:
            raise NotFoundError(f"task {task_id} not found in this workspace")
        return task_out(row)

    async def create(self, ctx: TenantContext, data: TaskIn) -> TaskOut:
        """Create a task (assigned to the caller unless another member is named)."""
        ctx.require(Scope.ACTIVITIES_WRITE)
        fields = await self._checked(ctx, msgspec.structs.asdict(data), new=True)
        row = await self.db.fetchrow(
            """
            INSERT INTO tasks (tenant_id, id, title, notes, due_at, remind_at, assignee_id,
                               priority, recurrence, contact_id, company_id, deal_id, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING *
            """,
            ctx.tenant_id,
            new_id(),
            fields["title"],
            fields["notes"],
            fields["due_at"],
            fields["remind_at"],
            fields["assignee_id"],
            fields["priority"],
            fields["recurrence"],
            fields["contact_id"],
            fields["company_id"],
            fields["deal_id"],
            ctx.membership_id,
        )
        task = task_out(row)
        after = msgspec.to_builtins(task)
        await record(self.db, ctx, "create", "task", task.id, label=task.title, after=after)
        return task

    async def update(self, ctx: TenantContext, task_id: UUID, patch: TaskPatch) -> TaskOut:
        """Change the fields present in ``patch``; a new reminder time fires again."""
        ctx.require(Scope.ACTIVITIES_WRITE)
        current = msgspec.structs.asdict(await self.get(ctx, task_id))
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        fields = await self._checked(ctx, current | changes, new="remind_at" in changes)
        row = await self.db.fetchrow(
            """
            UPDATE tasks SET title = $3, notes = $4, due_at = $5, remind_at = $6,
                assignee_id = $7, priority = $8, recurrence = $9, updated_at = now(),
                reminded_at = CASE WHEN $10 THEN NULL ELSE reminded_at END
            WHERE tenant_id = $1 AND id = $2 RETURNING *
            """,
            ctx.tenant_id,
            task_id,
            fields["title"],
            fields["notes"],
            fields["due_at"],
            fields["remind_at"],
            fields["assignee_id"],
            fields["priority"],
            fields["recurrence"],
            "remind_at" in changes,
        )
        task = task_out(row)
        await record(
            self.db,
            ctx,
            "update",
            "task",
            task.id,
            label=task.title,
            before=msgspec.to_builtins(current),
            after=msgspec.to_builtins(task),
        )
        return task

    async def complete(self, ctx: TenantContext, task_id: UUID) -> TaskOut:
        """Mark a task done; a recurring one comes back at its next occurrence."""
        ctx.require(Scope.ACTIVITIES_WRITE)
        task = await self.get(ctx, task_id)
        if task.done_at is not None:
            return task
        row = await self.db.fetchrow(
            "UPDATE tasks SET done_at = now(), updated_at = now() "
            "WHERE tenant_id = $1 AND id = $2 AND done_at IS NULL RETURNING *",
            ctx.tenant_id,
            task_id,
        )
        if row is None:  # completed (or deleted) by a concurrent request
            return await self.get(ctx, task_id)
        following = next_occurrence(task.due_at, task.recurrence)
        if following is not None:
            gap = task.due_at - task.remind_at if task.remind_at else None
            await self.db.execute(
                """
                INSERT INTO tasks (tenant_id, id, title, notes, due_at, remind_at, assignee_id,
                                   priority, recurrence, contact_id, company_id, deal_id,
                                   created_by)
                SELECT tenant_id, $3, title, notes, $4, $5, assignee_id, priority, recurrence,
                       contact_id, company_id, deal_id, created_by
                FROM tasks WHERE tenant_id = $1 AND id = $2
                """,
                ctx.tenant_id,
                task_id,
                new_id(),
                following,
                following - gap if gap is not None else None,
            )
        done = task_out(row)
        await record(
            self.db,
            ctx,
            "update",
            "task",
            task_id,
            label=done.title,
            before=msgspec.to_builtins(task),
            after=msgspec.to_builtins(done),
        )
        return done

    async def delete(self, ctx: TenantContext, task_id: UUID) -> None:
        """Delete a task."""
        ctx.require(Scope.ACTIVITIES_WRITE)
        deleted = await self.db.fetchrow(
            "DELETE FROM tasks WHERE tenant_id = $1 AND id = $2 RETURNING *",
            ctx.tenant_id,
            task_id,
        )
        if deleted is None:
            raise NotFoundError(f"task {task_id} not found in this workspace")
        gone = task_out(deleted)
        before = msgspec.to_builtins(gone)
        await record(self.db, ctx, "delete", "task", task_id, label=gone.title, before=before)

    async def _checked(
        self, ctx: TenantContext, data: dict[str, Any], *, new: bool
    ) -> dict[str, Any]:
        problems = validation.FieldProblems()
        out: dict[str, Any] = {
            "title": problems.check(
                validation.text, data["title"], "title", max_length=300, required=True
            ),
            "notes": problems.check(validation.json_without_nul, data.get("notes") or "", "notes"),
            "priority": data.get("priority") or "normal",
            "recurrence": data.get("recurrence") or "none",
        }
        for field in ("due_at", "remind_at"):
            value = problems.check(validation.plausible_time, data.get(field), field)
            if value is not None and value.tzinfo is None:
                problems.add(field, "needs a time zone, e.g. 2026-12-01T09:00:00+02:00")
            out[field] = value
        remind_at = out["remind_at"]
        if (
            new
            and remind_at is not None
            and remind_at.tzinfo is not None
            and (remind_at < datetime.now(UTC) - timedelta(minutes=1))
        ):
            problems.add("remind_at", "is in the past")
        assignee = data.get("assignee_id") or ctx.membership_id
        out["assignee_id"] = await checked_member(self.db, ctx, problems, assignee, "assignee_id")
        out |= await checked_links(self.db, ctx, problems, data)
        problems.raise_any()
        return out


class NotificationService:
    """The bell: each member's in-app notifications."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def inbox(self, ctx: TenantContext, limit: int = 20) -> Inbox:
        """The newest notifications of the caller and the unread count."""
        rows = await self.db.fetch(
            "SELECT * FROM notifications WHERE tenant_id = $1 AND membership_id = $2 "
            "ORDER BY created_at DESC, id DESC LIMIT $3",
            ctx.tenant_id,
            ctx.membership_id,
            limit,
        )
        unread = await self.db.fetchval(
            "SELECT count(*) FROM notifications WHERE tenant_id = $1 AND membership_id = $2 "
            "AND read_at IS NULL",
            ctx.tenant_id,
            ctx.membership_id,
        )
        items = [
            NotificationOut(**{f: row[f] for f in NotificationOut.__struct_fields__})
            for row in rows
        ]
        return Inbox(unread=unread, items=items)

    async def mark_read(self, ctx: TenantContext, notification_id: UUID) -> None:
        """Mark one of the caller's notifications read."""
        done = await self.db.fetchval(
            "UPDATE notifications SET read_at = coalesce(read_at, now()) "
            "WHERE tenant_id = $1 AND membership_id = $2 AND id = $3 RETURNING id",
            ctx.tenant_id,
            ctx.membership_id,
            notification_id,
        )
        if done is None:
            raise NotFoundError(f"notification {notification_id} not found")


async def fire_due_reminders(db: Database, batch: int = 100, public_url: str = "") -> int:
    """Turn due reminders into notifications and ``task.due`` events; returns how many fired.

    Finds them across workspaces through a narrow definer function, then handles
    each in its own workspace's transaction, so a crash fires at most a batch again
    (the row is marked in the same transaction as the notification it creates).
    """
    async with db.transaction():
        due = await db.fetch("SELECT * FROM orbit_due_reminders($1)", batch)
    fired = 0
    for row in due:
        async with db.transaction(row["tenant_id"]):
            task = await db.fetchrow(
                "UPDATE tasks SET reminded_at = now() WHERE tenant_id = $1 AND id = $2 "
                "AND reminded_at IS NULL AND done_at IS NULL RETURNING *",
                row["tenant_id"],
                row["task_id"],
            )
            if task is None:
                continue
            slug = await db.fetchval("SELECT slug FROM tenants WHERE id = $1", row["tenant_id"])
            if task["assignee_id"] is not None:
                await db.execute(
                    "INSERT INTO notifications (tenant_id, id, membership_id, kind, title, link) "
                    "VALUES ($1, $2, $3, 'task.due', $4, $5)",
                    row["tenant_id"],
                    new_id(),
                    task["assignee_id"],
                    task["title"],
                    f"/t/{slug}/tasks",
                )
                address = await db.fetchval(
                    "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id "
                    "WHERE m.tenant_id = $1 AND m.id = $2",
                    row["tenant_id"],
                    task["assignee_id"],
                )
                if address:
                    try:
                        await queue_email(
                            db,
                            row["tenant_id"],
                            address,
                            f"Reminder: {task['title']}",
                            f"{task['title']}\n\nDue {task['due_at']:%Y-%m-%d %H:%M} UTC.\n\n"
                            f"Your tasks: {public_url}/t/{slug}/tasks\n",
                        )
                    except QuotaExceededError as exc:  # the in-app notification still goes
                        log.warning("reminder email not sent: %s", exc.message)
            await emit(db, row["tenant_id"], "task.due", msgspec.to_builtins(task_out(task)))
            fired += 1
    return fired
