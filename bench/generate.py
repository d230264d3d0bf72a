"""The benchmark's data: one big workspace and many small ones, loaded with COPY.

At ``--scale 1`` the big workspace has 1,000,000 contacts, 100,000 companies,
200,000 deals and 3,000,000 activities, and 1,000 more workspaces have 1,000
contacts each. Names are Latin, Greek, Cyrillic, Chinese and Tagalog; every
derived column the app reads is filled the way the app fills it (``search_text``
through Orbit's one normaliser, ``orbit.platform.search.normalize``; the contact
quota counter; stage kinds and deal status in step).

The big workspace and its owner are created through the app's own sign-up service
(so it has whatever a real workspace has); the bulk rows go straight into the tables
with COPY as a superuser, which row-level security does not apply to (the
generator is a tool, not the app: the app itself never does this). Secondary
indexes are dropped for the load and built again afterwards, then everything is
vacuumed and analysed.

The database (``orbit_bench``) is kept between runs: a marker row records the
scale and the migration head it was built for, and a different one rebuilds it.

    uv run python -m bench.generate --scale 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from bench import names
from bench.env import BENCH_DATABASE, BenchEndpoints, bench_servers, ensure_superuser
from orbit.platform.auth.service import AccountService
from orbit.platform.crm.deals import DEFAULT_STAGES
from orbit.platform.db.engine import Database
from orbit.platform.db.migrations import all_migrations, migrate
from orbit.platform.ids import new_id
from orbit.platform.runtime import all_tables
from orbit.platform.search.normalize import contact_search_document, search_document
from orbit.tenants.roles import API_KEY_SCOPES
from orbit.tenants.service import token_hash

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger("bench.generate")

OWNER_EMAIL = "owner@bench.example.com"
OWNER_PASSWORD = "orbit-bench-password"  # noqa: S105 - a local benchmark's own login
MEMBERS = 25
BATCH = 20_000
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
HEAVY_CONTACTS = 100
"""Key accounts: this many contacts get a tenth of all activities (long timelines)."""
LOADED_TABLES = ("companies", "contacts", "deals", "deal_contacts", "activities")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many rows of each kind a scale means."""

    contacts: int
    companies: int
    deals: int
    activities: int
    small_tenants: int
    small_contacts: int

    @classmethod
    def at(cls, scale: float) -> Sizes:
        """Rows for ``scale`` (1.0: the issue's numbers)."""
        side = scale**0.5  # 1,000 workspaces x 1,000 contacts: both sides shrink
        return cls(
            contacts=max(100, round(1_000_000 * scale)),
            companies=max(10, round(100_000 * scale)),
            deals=max(20, round(200_000 * scale)),
            activities=max(300, round(3_000_000 * scale)),
            small_tenants=max(2, round(1000 * side)),
            small_contacts=max(10, round(1000 * side)),
        )


@dataclass
class BenchInfo:
    """What the suite needs to know about the generated data (kept in the marker row)."""

    scale: float
    migration_head: str
    tenant_id: str
    slug: str
    owner_email: str
    owner_password: str
    api_key: str
    pipeline_id: str
    sizes: dict[str, int]
    heavy_contact_ids: list[str] = field(default_factory=list)
    generated_at: str = ""
    seconds: float = 0.0


def migration_head() -> str:
    """The newest migration's ID and a digest of all of them (a schema change rebuilds).

    The digest catches a migration merged with an ID older than the newest one.
    """
    ids = [migration.id for migration in all_migrations()]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return f"{ids[-1]} ({len(ids)} migrations, {digest})"


# --- the marker ---------------------------------------------------------------------


async def read_marker(endpoints: BenchEndpoints) -> BenchInfo | None:
    """The marker of the existing bench database, or ``None`` (no database, no marker)."""
    try:
        conn = await asyncpg.connect(endpoints.admin_dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        raw = await conn.fetchval(
            "SELECT info FROM bench.marker WHERE to_regclass('bench.marker') IS NOT NULL"
        )
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    if raw is None:
        return None
    return BenchInfo(**json.loads(raw))


async def ensure_data(
    endpoints: BenchEndpoints, scale: float, *, rebuild: bool = False
) -> BenchInfo:
    """The bench data for ``scale``: reused when its marker matches, else built anew."""
    await ensure_superuser(endpoints.server_dsn)
    head = migration_head()
    marker = None if rebuild else await read_marker(endpoints)
    if marker is not None and marker.scale == scale and marker.migration_head == head:
        log.info("reusing %s (scale %s, migrations up to %s)", endpoints.database, scale, head)
        return marker
    if marker is not None:
        log.info("rebuilding: data is for scale %s / %s", marker.scale, marker.migration_head)
    return await generate(endpoints, scale, head)


async def recreate_database(endpoints: BenchEndpoints) -> None:
    """Drop and create the bench database."""
    conn = await asyncpg.connect(endpoints.server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{endpoints.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{endpoints.database}"')
    finally:
        await conn.close()


# --- generation -----------------------------------------------------------------------


async def generate(endpoints: BenchEndpoints, scale: float, head: str) -> BenchInfo:
    """Build the bench database from nothing for ``scale``."""
    started = time.monotonic()
    sizes = Sizes.at(scale)
    log.info("generating scale %s: %s", scale, sizes)
    await recreate_database(endpoints)
    await migrate(endpoints.admin_dsn, endpoints.app_password)
    tenant_id, slug = await _sign_up(endpoints)
    rng = random.Random(20261125)  # noqa: S311 - reproducible data, not secrets
    conn = await asyncpg.connect(endpoints.admin_dsn)
    try:
        # A superuser: RLS does not apply (so COPY is allowed); replica mode skips the
        # foreign-key and counting triggers (the rows are consistent by construction,
        # and the counters are set below).
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        big = await _workspace_setup(conn, tenant_id)
        indexes = await _drop_secondary_indexes(conn)
        loader = _Loader(conn, rng, UUID(tenant_id), big, sizes)
        await loader.load_big_workspace()
        await loader.load_small_workspaces()
        await conn.execute("""
            INSERT INTO tenant_usage (tenant_id, quota, used)
            SELECT tenant_id, 'contacts', count(*) FROM contacts GROUP BY tenant_id
            ON CONFLICT (tenant_id, quota) DO UPDATE SET used = EXCLUDED.used
        """)
        log.info("building %s indexes", len(indexes))
        for definition in indexes:
            await conn.execute(definition)
        await conn.execute("SET session_replication_role = origin")
        log.info("vacuum analyze")
        for table in (*LOADED_TABLES, "tenants", "memberships", "users", "tenant_usage"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        info = BenchInfo(
            scale=scale,
            migration_head=head,
            tenant_id=tenant_id,
            slug=slug,
            owner_email=OWNER_EMAIL,
            owner_password=OWNER_PASSWORD,
            api_key=big["api_key"],
            pipeline_id=str(big["pipeline_id"]),
            sizes=asdict(sizes),
            heavy_contact_ids=[str(c) for c in loader.heavy_contacts],
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        info.seconds = round(time.monotonic() - started, 1)
        await conn.execute("""
            CREATE SCHEMA bench;
            CREATE TABLE bench.marker (info jsonb NOT NULL);
        """)
        await conn.execute("INSERT INTO bench.marker VALUES ($1::jsonb)", json.dumps(asdict(info)))
    finally:
        await conn.close()
    log.info("generated in %.0f s", info.seconds)
    return info


async def _sign_up(endpoints: BenchEndpoints) -> tuple[str, str]:
    """The big workspace and its owner, through the app's own sign-up (as the app role)."""
    db = Database(endpoints.app_dsn, pool_size=1)
    await db.connect()
    db.bind(all_tables())
    try:
        async with db.transaction():
            _, workspace = await AccountService(db).sign_up(
                email=OWNER_EMAIL,
                password=OWNER_PASSWORD,
                name="Bench Owner",
                workspace_name="Bench Big Workspace",
            )
    finally:
        await db.close()
    return str(workspace.id), workspace.slug


async def _workspace_setup(conn: asyncpg.Connection[Any], tenant_id: str) -> dict[str, Any]:
    """Pro plan, no practical rate limit, members, a custom field and an API key."""
    tenant = UUID(tenant_id)
    await conn.execute(
        "UPDATE tenants SET plan = 'pro', api_requests_per_minute = 100000000 WHERE id = $1",
        tenant,
    )
    owner = await conn.fetchval(
        "SELECT id FROM memberships WHERE tenant_id = $1 AND role = 'owner'", tenant
    )
    members = [owner]
    for n in range(1, MEMBERS):
        user_id, membership_id = new_id(), new_id()
        email = f"member{n}@bench.example.com"
        await conn.execute(
            "INSERT INTO users (id, email, email_key, password_hash, name) "
            "VALUES ($1, $2, $2, '!', $3)",
            user_id,
            email,
            f"Member {n}",
        )
        await conn.execute(
            "INSERT INTO memberships (tenant_id, id, user_id, role, status) "
            "VALUES ($1, $2, $3, 'member', 'active')",
            tenant,
            membership_id,
            user_id,
        )
        members.append(membership_id)
    await conn.execute(
        """
        INSERT INTO custom_fields (tenant_id, id, object_type, key, label, type, options)
        VALUES ($1, $2, 'contact', 'tier', 'Tier', 'select', $3::jsonb)
        """,
        tenant,
        new_id(),
        json.dumps(names.TIERS),
    )
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(30)
    await conn.execute(
        """
        INSERT INTO api_keys (tenant_id, id, name, prefix, secret_hash, scopes, created_by)
        VALUES ($1, $2, 'bench', $3, $4, $5, $6)
        """,
        tenant,
        new_id(),
        prefix,
        token_hash(secret),
        [scope.value for scope in API_KEY_SCOPES],
        owner,
    )
    pipeline_id = await conn.fetchval("SELECT id FROM pipelines WHERE tenant_id = $1", tenant)
    stages = await conn.fetch(
        "SELECT id, kind FROM pipeline_stages WHERE tenant_id = $1 ORDER BY position", tenant
    )
    return {
        "members": members,
        "api_key": f"orbit_{prefix}_{secret}",
        "pipeline_id": pipeline_id,
        "stages": [(row["id"], row["kind"]) for row in stages],
    }


async def _drop_secondary_indexes(conn: asyncpg.Connection[Any]) -> list[str]:
    """Drop the loaded tables' indexes that back no constraint; their definitions."""
    rows = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        list(LOADED_TABLES),
    )
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


def _moment(rng: random.Random) -> datetime:
    return NOW - SPAN * rng.random()


@lru_cache(maxsize=65_536)
def _folded(*parts: str | None) -> str:
    return search_document(*parts)


class _Loader:
    """Generates rows in batches and COPYs each batch."""

    def __init__(
        self,
        conn: asyncpg.Connection[Any],
        rng: random.Random,
        tenant: UUID,
        big: dict[str, Any],
        sizes: Sizes,
    ) -> None:
        self.conn = conn
        self.rng = rng
        self.tenant = tenant
        self.big = big
        self.sizes = sizes
        self.companies: list[UUID] = []
        self.company_names: list[str] = []
        self.contacts: list[UUID] = []
        self.heavy_contacts: list[UUID] = []
        self.deals: list[tuple[UUID, UUID | None]] = []

    async def copy(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
        """COPY ``rows`` into ``table`` in batches."""
        started, total = time.monotonic(), 0
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                await self.conn.copy_records_to_table(table, records=batch, columns=columns)
                total += len(batch)
                batch = []
        if batch:
            await self.conn.copy_records_to_table(table, records=batch, columns=columns)
            total += len(batch)
        log.info("%s: %s rows in %.1f s", table, total, time.monotonic() - started)

    async def load_big_workspace(self) -> None:
        """Companies, contacts, deals (with their contacts) and activities."""
        await self.copy(
            "companies",
            [
                "tenant_id",
                "id",
                "name",
                "domain",
                "industry",
                "size",
                "phone",
                "owner_id",
                "tags",
                "search_text",
                "created_at",
                "updated_at",
            ],
            self._companies(),
        )
        await self.copy(
            "contacts", CONTACT_COLUMNS, self._contacts(self.tenant, self.sizes.contacts)
        )
        self.heavy_contacts = self.contacts[:HEAVY_CONTACTS]
        await self.copy(
            "deals",
            [
                "tenant_id",
                "id",
                "pipeline_id",
                "stage_id",
                "title",
                "amount",
                "currency",
                "expected_close_date",
                "owner_id",
                "company_id",
                "status",
                "closed_at",
                "search_text",
                "created_at",
                "updated_at",
            ],
            self._deals(),
        )
        await self.copy(
            "deal_contacts", ["tenant_id", "deal_id", "contact_id"], self._deal_contacts()
        )
        await self.copy(
            "activities",
            [
                "tenant_id",
                "id",
                "kind",
                "channel",
                "subject",
                "body",
                "author_id",
                "occurred_at",
                "contact_id",
                "company_id",
                "deal_id",
                "data",
                "search_text",
                "created_at",
            ],
            self._activities(),
        )

    def _member(self) -> UUID:
        members: list[UUID] = self.big["members"]
        return members[self.rng.randrange(len(members))]

    def _companies(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for n in range(self.sizes.companies):
            company_id = new_id()
            name = f"{rng.choice(names.COMPANY_ROOTS)} {rng.choice(names.COMPANY_KINDS)}"
            domain = f"company{n}.example.com"
            created = _moment(rng)
            self.companies.append(company_id)
            self.company_names.append(name)
            yield (
                self.tenant,
                company_id,
                name,
                domain,
                rng.choice(names.INDUSTRIES),
                rng.choice(names.SIZES),
                f"+30 210 {rng.randrange(10**6, 10**7)}",
                self._member(),
                rng.sample(names.TAGS, rng.randrange(3)),
                _folded(name, domain),
                created,
                created + (NOW - created) * rng.random(),
            )

    def _contacts(self, tenant: UUID, count: int, *, big: bool = True) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        weights = [script[0] for script in names.SCRIPTS]
        for n in range(count):
            _, firsts, lasts, domain, family_first = rng.choices(names.SCRIPTS, weights)[0]
            first, first_latin = rng.choice(firsts)
            last, last_latin = rng.choice(lasts)
            email = f"{first_latin}.{last_latin}.{n}@{domain}".replace(" ", "")
            company_index = rng.randrange(len(self.companies)) if big and rng.random() < 0.7 else -1
            company_id = self.companies[company_index] if company_index >= 0 else None
            company_name = self.company_names[company_index] if company_index >= 0 else None
            contact_id = new_id()
            if big:
                self.contacts.append(contact_id)
            created = _moment(rng)
            tags = rng.sample(names.TAGS, rng.randrange(3))
            custom = {"tier": rng.choice(names.TIERS)} if rng.random() < 0.6 else {}
            if family_first:  # 王伟: shown family name first, stored as given/family
                first, last = last, first
            yield (
                tenant,
                contact_id,
                first,
                last,
                email,
                f"+{rng.randrange(1, 99)} {rng.randrange(10**8, 10**9)}",
                company_id,
                self._member() if big else None,
                tags,
                json.dumps(custom),
                contact_search_document(first, last, email, company_name),
                created,
                created + (NOW - created) * rng.random(),
            )

    def _deals(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        stages: list[tuple[UUID, str]] = self.big["stages"]
        currencies = ["EUR", "USD", "RUB", "CNY", "PHP"]
        for _ in range(self.sizes.deals):
            stage_id, kind = rng.choice(stages)
            company_index = rng.randrange(len(self.companies))
            title = f"{self.company_names[company_index]}: {rng.choice(names.PRODUCTS)}"
            created = _moment(rng)
            updated = created + (NOW - created) * rng.random()
            deal_id = new_id()
            contact = (
                self.heavy_contacts[rng.randrange(len(self.heavy_contacts))]
                if rng.random() < 0.05
                else self.contacts[rng.randrange(len(self.contacts))]
            )
            self.deals.append((deal_id, contact))
            yield (
                self.tenant,
                deal_id,
                self.big["pipeline_id"],
                stage_id,
                title,
                Decimal(rng.randrange(100, 1_000_000)),
                rng.choice(currencies),
                (created + timedelta(days=rng.randrange(10, 200))).date(),
                self._member(),
                self.companies[company_index],
                kind,
                None if kind == "open" else updated,
                _folded(title),
                created,
                updated,
            )

    def _deal_contacts(self) -> Iterator[tuple[Any, ...]]:
        for deal_id, contact_id in self.deals:
            yield (self.tenant, deal_id, contact_id)

    def _activities(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        contacts, heavy, deals = self.contacts, self.heavy_contacts, self.deals
        for _ in range(self.sizes.activities):
            roll = rng.random()
            contact_id = (
                heavy[rng.randrange(len(heavy))]
                if roll < 0.1
                else contacts[rng.randrange(len(contacts))]
            )
            deal_id = deals[rng.randrange(len(deals))][0] if rng.random() < 0.15 else None
            if rng.random() < 0.9:
                kind = rng.choice(names.SEARCHABLE_KINDS)
                subject = rng.choice(names.SUBJECTS)
                body = " ".join(rng.sample(names.BODIES, rng.randrange(1, 3)))
                folded = _folded(subject, body)
                data = "{}"
            else:
                kind, subject, body, folded = "field_change", "", "", ""
                data = json.dumps({"field": "phone", "changed": True})
            occurred = _moment(rng)
            yield (
                self.tenant,
                new_id(),
                kind,
                rng.choice(names.CHANNELS),
                subject,
                body,
                self._member(),
                occurred,
                contact_id,
                None,
                deal_id,
                data,
                folded,
                occurred,
            )

    async def load_small_workspaces(self) -> None:
        """Many small workspaces, each an owner and its contacts."""
        tenants = [(new_id(), new_id(), new_id()) for _ in range(self.sizes.small_tenants)]
        await self.copy(
            "tenants",
            ["id", "slug", "name", "plan"],
            (
                (t, f"small-{n}", f"Small Workspace {n}", "starter")
                for n, (t, _, _) in enumerate(tenants)
            ),
        )
        await self.copy(
            "users",
            ["id", "email", "email_key", "password_hash", "name"],
            (
                (u, f"small{n}@bench.example.com", f"small{n}@bench.example.com", "!", f"Small {n}")
                for n, (_, u, _) in enumerate(tenants)
            ),
        )
        await self.copy(
            "memberships",
            ["tenant_id", "id", "user_id", "role", "status"],
            ((t, m, u, "owner", "active") for t, u, m in tenants),
        )

        pipelines = [(t, new_id()) for t, _, _ in tenants]
        await self.copy(
            "pipelines",
            ["tenant_id", "id", "name", "position"],
            ((t, p, "Sales", 0) for t, p in pipelines),
        )
        await self.copy(
            "pipeline_stages",
            ["tenant_id", "id", "pipeline_id", "name", "position", "probability", "kind"],
            (
                (t, new_id(), p, stage.name, position, stage.probability, stage.kind)
                for t, p in pipelines
                for position, stage in enumerate(DEFAULT_STAGES)
            ),
        )

        def rows() -> Iterator[tuple[Any, ...]]:
            for tenant, _, _ in tenants:
                yield from self._contacts(tenant, self.sizes.small_contacts, big=False)

        await self.copy("contacts", CONTACT_COLUMNS, rows())


CONTACT_COLUMNS = [
    "tenant_id",
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_id",
    "owner_id",
    "tags",
    "custom",
    "search_text",
    "created_at",
    "updated_at",
]


def main() -> None:
    """``python -m bench.generate --scale 0.01 [--rebuild]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if the data fits")
    parser.add_argument("--database", default=BENCH_DATABASE, help="database name (orbit_bench)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        async with bench_servers(args.database) as endpoints:
            info = await ensure_data(endpoints, args.scale, rebuild=args.rebuild)
            print(json.dumps(asdict(info) | {"api_key": "…"}, indent=2))

    asyncio.run(run())


if __name__ == "__main__":
    main()
