"""Accounts: sign-up (a user and their workspace), login, users."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orbit.platform import validation
from orbit.platform.auth.models import User
from orbit.platform.auth.passwords import hash_password, password_problem, verify_password
from orbit.platform.crm.deals import PipelineService
from orbit.platform.errors import ConflictError, InvalidInputError, NotAuthenticatedError
from orbit.platform.ids import new_id
from orbit.tenants.service import Workspace, WorkspaceService

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.auth.throttle import LoginThrottle
    from orbit.platform.db.engine import Database


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the session knows them."""

    id: UUID
    email: str
    name: str
    time_zone: str = "UTC"


@functools.cache
def available_time_zones() -> frozenset[str]:
    """IANA time zone names this system knows."""
    return frozenset(zoneinfo.available_timezones())


class AccountService:
    """Sign-up and login; runs inside the request's transaction."""

    def __init__(self, db: Database, throttle: LoginThrottle | None = None) -> None:
        self.db = db
        self.throttle = throttle
        self.workspaces = WorkspaceService(db)

    async def create_user(self, email: str, password: str, name: str = "") -> Account:
        """Create a user; a 409 when the email is already registered."""
        address = validation.email_address(email)
        name = validation.text(name, "name", max_length=200)
        problem = password_problem(password)
        if problem:
            raise InvalidInputError(f"password {problem}", fields={"password": problem})
        key = validation.email_key(address)
        user_id = new_id()
        inserted = await self.db.fetchval(
            """
            INSERT INTO users (id, email, email_key, password_hash, name, created_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_key) DO NOTHING RETURNING id
            """,
            user_id,
            address,
            key,
            await hash_password(password),
            name,
            datetime.now(UTC),
        )
        if inserted is None:
            raise ConflictError(
                f"{address} is already registered; log in instead",
                fields={"email": "is already registered"},
            )
        return Account(id=user_id, email=address, name=name)

    async def sign_up(
        self, *, email: str, password: str, name: str, workspace_name: str, ip: str | None = None
    ) -> tuple[Account, Workspace]:
        """Create a user and their own workspace, with them as its owner.

        ``ip`` (web sign-ups) is throttled; the CLI and the demo seed pass none.
        """
        validation.text(workspace_name, "workspace_name", max_length=200, required=True)
        if ip is not None and self.throttle:
            await self.throttle.sign_up(ip)
        account = await self.create_user(email, password, name)
        workspace = await self.workspaces.create(workspace_name, account.id)
        await PipelineService(self.db).create_default(workspace.id)
        return account, workspace

    async def log_in(self, email: str, password: str, *, ip: str) -> Account:
        """The account for these credentials; 401 when wrong, 429 when throttled."""
        key = validation.email_key(email)
        validation.no_control_characters(email, "email")
        if self.throttle:
            await self.throttle.attempt(ip, key)
        row = await User.select().where(User.email_key == key).first()
        password_ok = await verify_password(row["password_hash"] if row else None, password)
        if not password_ok or row is None:
            raise NotAuthenticatedError("email or password is wrong")
        if self.throttle:
            await self.throttle.succeeded(ip, key)
        return Account(
            id=row["id"], email=row["email"], name=row["name"], time_zone=row["time_zone"]
        )

    async def get(self, user_id: UUID) -> Account | None:
        """The account with this id."""
        row = await User.select().where(User.id == user_id).first()
        if row is None:
            return None
        return Account(
            id=row["id"], email=row["email"], name=row["name"], time_zone=row["time_zone"]
        )

    async def update_profile(self, user_id: UUID, *, name: str, time_zone: str) -> Account:
        """Change the user's display name and time zone."""
        problems = validation.FieldProblems()
        name = problems.check(validation.text, name, "name", max_length=200) or ""
        if time_zone not in available_time_zones():
            problems.add("time_zone", f"{time_zone!r} is not a time zone like Europe/Athens")
        problems.raise_any()
        row = await self.db.fetchrow(
            "UPDATE users SET name = $2, time_zone = $3 WHERE id = $1 RETURNING *",
            user_id,
            name,
            time_zone,
        )
        if row is None:
            raise NotAuthenticatedError("this account no longer exists")
        return Account(
            id=row["id"], email=row["email"], name=row["name"], time_zone=row["time_zone"]
        )
