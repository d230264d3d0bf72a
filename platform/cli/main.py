"""``orbit``: run, serve, migrate, check, and administer Orbit from the shell."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from orbit.platform.settings import SettingsError, generated_secret, load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from uuid import UUID

    import uvicorn

    from orbit.platform.db.servers import Endpoints
    from orbit.platform.events.worker import EventWorker
    from orbit.platform.runtime import Runtime
    from orbit.platform.settings import Settings

log = logging.getLogger("orbit.cli")


@asynccontextmanager
async def servers(settings: Settings) -> AsyncIterator[Endpoints]:
    """The database and Redis: external ones, or embedded ones started (and stopped) here."""
    from orbit.platform.db.servers import Infrastructure  # noqa: PLC0415

    infrastructure = Infrastructure(settings)
    try:
        yield await infrastructure.start()
    finally:
        await asyncio.to_thread(infrastructure.stop)


def _app_password(settings: Settings) -> str:
    """The password orbit_app gets when Orbit creates it: DATABASE_APP_URL's, if set.

    On Kubernetes the migration Job and the web pods do not share ORBIT_HOME, so a
    password generated there would be one the pods never learn.
    """
    if settings.database_app_url:
        password = urlsplit(settings.database_app_url).password
        if password:
            return unquote(password)
    return generated_secret(settings.home, "db_app_password")


async def _migrate(settings: Settings, endpoints: Endpoints) -> None:
    from orbit.platform.db.migrations import migrate  # noqa: PLC0415

    applied = await migrate(endpoints.admin_dsn, _app_password(settings))
    log.info("migrations applied: %s", len(applied) or "none pending")


@asynccontextmanager
async def connected(settings: Settings, endpoints: Endpoints) -> AsyncIterator[Runtime]:
    """A started :class:`Runtime` (pool open, tables bound)."""
    from orbit.platform.runtime import Runtime  # noqa: PLC0415

    runtime = Runtime.create(settings, endpoints)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    """Migrate, seed the demo once, and serve (embedded servers when no URLs are set)."""
    async with servers(settings) as endpoints:
        await _migrate(settings, endpoints)
        if settings.demo_seed:
            from orbit.platform.cli.seed import DEMO_EMAIL, DEMO_PASSWORD, seed_demo  # noqa: PLC0415

            async with connected(settings, endpoints) as runtime:
                if await seed_demo(runtime.db):
                    log.info("demo workspace created: log in as %s / %s", DEMO_EMAIL, DEMO_PASSWORD)
        return await _serve(settings, endpoints, worker=True)


async def cmd_web(settings: Settings, _args: argparse.Namespace) -> int:
    """Serve only (migrations run separately, as ``orbit migrate``)."""
    async with servers(settings) as endpoints:
        return await _serve(settings, endpoints)


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """Uvicorn's configuration for Orbit's web app."""
    import uvicorn  # noqa: PLC0415

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        lifespan="on",
        # Orbit's own access line (orbit.access) replaces uvicorn's; its loggers go
        # through the root handler main() set up, in the chosen ORBIT_LOG_FORMAT.
        access_log=False,
        log_config=None,
        # SIGTERM: stop accepting, let in-flight requests finish for this long.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


async def _serve(settings: Settings, endpoints: Endpoints, *, worker: bool = False) -> int:
    import uvicorn  # noqa: PLC0415

    from orbit.platform.app import create_app  # noqa: PLC0415

    app = create_app(settings, endpoints)
    if worker:
        from orbit.platform.events.worker import EventWorker  # noqa: PLC0415

        # The worker shares the app's runtime: Piccolo binds tables to one pool per
        # process. It starts after the pool opens and stops before it closes. Its
        # metrics join the web app's /metrics; no separate worker port in one process.
        metrics = app.state["metrics"]
        background = EventWorker(
            app.state["runtime"],
            shutdown_grace=settings.shutdown_grace_seconds,
            metrics_registry=metrics.registry,
        )
        metrics.refreshers.append(background.refresh_metrics)
        app.on_startup.append(background.start)
        app.on_shutdown.insert(0, background.stop)
    config = server_config(app, settings)
    log.info("Orbit is serving http://%s:%s", settings.host, settings.port)
    await uvicorn.Server(config).serve()
    return 0


async def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    """Deliver the outbox (webhooks) until stopped; migrations run separately."""
    from orbit.platform.events.worker import EventWorker  # noqa: PLC0415

    async with servers(settings) as endpoints, connected(settings, endpoints) as runtime:
        worker = EventWorker(runtime, shutdown_grace=settings.shutdown_grace_seconds)
        return await _work(settings, worker)


async def _work(settings: Settings, worker: EventWorker) -> int:
    """Run ``worker`` (and its health server) until SIGTERM, then drain it; the exit code."""
    from orbit.platform.observability.worker_server import HealthServer  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()
    # SIGTERM drains instead of unwinding at once (Ctrl+C still cancels everything).
    loop.add_signal_handler(signal.SIGTERM, terminated.set)
    server = None
    if settings.worker_metrics_port:
        server = HealthServer(
            settings.host,
            settings.worker_metrics_port,
            health=worker.health,
            metrics=worker.scrape,
        )
    running = asyncio.create_task(worker.run(), name="orbit-worker")
    waiting = asyncio.create_task(terminated.wait(), name="orbit-sigterm")
    try:
        if server is not None:
            await server.start()
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not terminated.is_set():
            await running  # it stopped by itself: raise its error
            return 1
        log.info("SIGTERM: the worker finishes its deliveries in flight, then stops")
        await worker.drain(settings.shutdown_grace_seconds)
        await running
        return 128 + signal.SIGTERM
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)  # embedded servers still stop cleanly
        waiting.cancel()
        if not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if server is not None:
            await server.stop()


async def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Apply pending migrations as the owner role."""
    async with servers(settings) as endpoints:
        await _migrate(settings, endpoints)
    return 0


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Dump the database (embedded or external) to a pg_dump custom-format file."""
    from orbit.platform.db.backup import backup  # noqa: PLC0415

    async with servers(settings) as endpoints:
        tools = await backup(endpoints.admin_dsn, args.file)
    print(f"backed up to {args.file} (pg_dump {tools.major})")  # noqa: T201 - CLI output
    return 0


async def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Replace the database's Orbit objects with a backup made by ``orbit backup``."""
    from orbit.platform.db.backup import restore  # noqa: PLC0415

    async with servers(settings) as endpoints:
        tools = await restore(endpoints.admin_dsn, args.file, _app_password(settings))
    print(f"restored {args.file} (pg_restore {tools.major})")  # noqa: T201 - CLI output
    return 0


async def cmd_db_check(settings: Settings, _args: argparse.Namespace) -> int:
    """List tenant tables and fail when one lacks forced RLS or a policy."""
    from orbit.platform.db.check import check_database  # noqa: PLC0415

    async with servers(settings) as endpoints:
        reports, role_problems = await check_database(endpoints.admin_dsn)
    failed = bool(role_problems)
    for report in reports:
        status = "ok" if report.ok else "FAIL: " + "; ".join(report.problems)
        print(f"{report.name:<32} {status}")  # noqa: T201 - CLI output
        failed |= not report.ok
    for problem in role_problems:
        print(f"role problem: {problem}")  # noqa: T201
    print(f"{len(reports)} tenant tables checked, {'FAILED' if failed else 'all walled off'}")  # noqa: T201
    return 1 if failed else 0


async def cmd_plugin_new(_settings: Settings, args: argparse.Namespace) -> int:
    """Scaffold a plugin distribution."""
    from orbit.plugins.sdk import ScaffoldError, scaffold  # noqa: PLC0415

    try:
        folder = scaffold(args.name, args.path)
    except ScaffoldError as exc:
        print(f"orbit plugin new: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(f"created plugin {args.name} in {folder}; next: orbit plugin check {folder}")  # noqa: T201
    return 0


async def cmd_plugin_check(_settings: Settings, args: argparse.Namespace) -> int:
    """Check a plugin distribution: manifest, range, scopes, table RLS, its tests."""
    from orbit.plugins.sdk import check  # noqa: PLC0415

    logging.getLogger("orbit").setLevel(logging.WARNING)  # the report says what happened
    return 0 if await check(args.path, tests=not args.no_tests) else 1


async def cmd_billing_sync_catalog(settings: Settings, _args: argparse.Namespace) -> int:
    """Make Stripe's Products and graduated Prices match billing/plans.toml (by lookup key)."""
    from orbit.billing.gateway import gateway_from_settings  # noqa: PLC0415

    gateway = gateway_from_settings(settings)
    if gateway is None:
        print("orbit billing sync-catalog: set ORBIT_STRIPE_SECRET_KEY first", file=sys.stderr)  # noqa: T201
        return 2
    for line in await gateway.sync_catalog():
        print(line)  # noqa: T201
    return 0


def _add_billing_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    billing = commands.add_parser("billing", help="Stripe billing").add_subparsers(
        dest="billing_command", required=True, metavar="BILLING_COMMAND"
    )
    billing.add_parser(
        "sync-catalog",
        help="create or update Stripe's Products and tiered Prices from billing/plans.toml",
    ).set_defaults(func=cmd_billing_sync_catalog)


APP_PASSWORD_PLACEHOLDER = "CHANGE-ME"  # noqa: S105 - printed for the DBA to replace


async def cmd_db_roles_sql(_settings: Settings, args: argparse.Namespace) -> int:
    """Print the SQL a DBA runs once to create Orbit's roles; connects to nothing."""
    from orbit.platform.db import roles  # noqa: PLC0415

    password = args.app_password or APP_PASSWORD_PLACEHOLDER
    database = args.database
    example = f"psql -d {shlex.quote(database)} -f orbit-roles.sql"
    lines = [
        f"-- Orbit's roles and grants for database {database}. Run once as a superuser,",
        f"-- connected to that database (for example: {example}).",
    ]
    if not args.app_password:
        lines.append(
            f"-- First replace {APP_PASSWORD_PLACEHOLDER} with a password for {roles.APP}; "
            "DATABASE_APP_URL then connects with it."
        )
    lines += [
        "-- The login in DATABASE_URL runs migrations; unless it is a superuser, also run:",
        f"--   GRANT {roles.OWNER} TO <that login>;",
    ]
    lines += [
        f"{statement};"
        for statement in roles.role_statements(
            existing=set(), app_password=password, database=database
        )
    ]
    print("\n".join(lines))  # noqa: T201 - CLI output
    return 0


async def cmd_tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create a workspace and its owner."""
    from orbit.platform.auth.service import AccountService  # noqa: PLC0415

    async with (
        servers(settings) as endpoints,
        connected(settings, endpoints) as runtime,
        runtime.db.transaction(),
    ):
        _, workspace = await AccountService(runtime.db).sign_up(
            email=args.owner_email,
            password=args.password,
            name=args.owner_name or "",
            workspace_name=args.name,
        )
    print(f"created workspace {workspace.slug} ({workspace.id})")  # noqa: T201
    return 0


async def cmd_tenants_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write a workspace to a zip of CSV + JSON."""
    from orbit.tenants.portability import export_workspace  # noqa: PLC0415
    from orbit.tenants.service import WorkspaceService  # noqa: PLC0415

    async with servers(settings) as endpoints, connected(settings, endpoints) as runtime:
        db = runtime.db
        async with db.transaction():
            # One snapshot of every table, however long the copy takes.
            await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await db.execute("SET LOCAL statement_timeout = 0")
            workspace = await WorkspaceService(db).by_slug(args.tenant)
            if workspace is None:
                print(f"no workspace with slug {args.tenant!r}", file=sys.stderr)  # noqa: T201
                return 2
            summary = await export_workspace(db, workspace, Path(args.out))
    rows = sum(summary.tables.values())
    print(f"exported {workspace.slug}: {rows} rows in {len(summary.tables)} tables to {args.out}")  # noqa: T201
    return 0


async def cmd_tenants_import(settings: Settings, args: argparse.Namespace) -> int:
    """Restore an export into a new workspace."""
    from orbit.tenants.portability import import_workspace  # noqa: PLC0415

    async with (
        servers(settings) as endpoints,
        connected(settings, endpoints) as runtime,
        runtime.db.transaction(),
    ):
        await runtime.db.execute("SET LOCAL statement_timeout = 0")
        workspace = await import_workspace(runtime.db, Path(args.file), args.name)
    print(f"imported into new workspace {workspace.slug} ({workspace.id})")  # noqa: T201
    return 0


async def cmd_tenants_delete(settings: Settings, args: argparse.Namespace) -> int:
    """Delete a workspace and everything in it."""
    from orbit.tenants.portability import delete_workspace  # noqa: PLC0415
    from orbit.tenants.service import WorkspaceService  # noqa: PLC0415

    if args.confirm != args.tenant:
        print(f"type the slug again to confirm: --confirm {args.tenant}", file=sys.stderr)  # noqa: T201
        return 2
    async with (
        servers(settings) as endpoints,
        connected(settings, endpoints) as runtime,
        runtime.db.transaction(),
    ):
        workspace = await WorkspaceService(runtime.db).by_slug(args.tenant)
        if workspace is None:
            print(f"no workspace with slug {args.tenant!r}", file=sys.stderr)  # noqa: T201
            return 2
        await runtime.db.set_tenant(workspace.id)
        await delete_workspace(runtime.db, workspace.id)
    print(f"deleted workspace {args.tenant}")  # noqa: T201
    return 0


async def cmd_api_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create an API key for a workspace and print it."""
    from orbit.platform.auth.api_keys import ApiKeyService  # noqa: PLC0415
    from orbit.tenants.context import TenantContext  # noqa: PLC0415
    from orbit.tenants.roles import ROLE_SCOPES, Role  # noqa: PLC0415
    from orbit.tenants.service import WorkspaceService  # noqa: PLC0415

    async with (
        servers(settings) as endpoints,
        connected(settings, endpoints) as runtime,
        runtime.db.transaction(),
    ):
        workspace = await WorkspaceService(runtime.db).by_slug(args.tenant)
        if workspace is None:
            print(f"no workspace with slug {args.tenant!r}", file=sys.stderr)  # noqa: T201
            return 2
        await runtime.db.set_tenant(workspace.id)
        operator = TenantContext(
            tenant_id=workspace.id,
            tenant_slug=workspace.slug,
            tenant_name=workspace.name,
            scopes=ROLE_SCOPES[Role.OWNER],
        )
        _, key = await ApiKeyService(runtime.db).create(operator, args.name, args.scope)
    print(key)  # noqa: T201
    return 0


async def cmd_demo_seed(settings: Settings, _args: argparse.Namespace) -> int:
    """Create the demo workspace if it does not exist."""
    from orbit.platform.cli.seed import DEMO_EMAIL, DEMO_PASSWORD, seed_demo  # noqa: PLC0415

    async with servers(settings) as endpoints, connected(settings, endpoints) as runtime:
        slug = await seed_demo(runtime.db)
    if slug:
        print(f"demo workspace {slug}: log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")  # noqa: T201
    else:
        print("demo workspace already exists")  # noqa: T201
    return 0


async def _workspace_id(runtime: Runtime, slug: str) -> UUID | None:
    from orbit.tenants.service import WorkspaceService  # noqa: PLC0415

    async with runtime.db.transaction():
        workspace = await WorkspaceService(runtime.db).by_slug(slug)
    return None if workspace is None else workspace.id


async def cmd_import_run(settings: Settings, args: argparse.Namespace) -> int:
    """Import a CSV or XLSX file into a workspace in this process (no web server, no worker)."""
    from orbit.platform.imports.runner import import_file  # noqa: PLC0415

    mapping = json.loads(args.mapping) if args.mapping else None
    async with servers(settings) as endpoints, connected(settings, endpoints) as runtime:
        tenant_id = await _workspace_id(runtime, args.tenant)
        if tenant_id is None:
            print(f"no workspace with slug {args.tenant!r}", file=sys.stderr)  # noqa: T201
            return 2
        measured = await import_file(
            runtime.db,
            settings.home,
            tenant_id,
            Path(args.file),
            object_type=args.type,
            mapping=mapping,
            mode=args.mode,
            dedupe_key=args.dedupe_key,
            strict=args.strict,
            encoding=args.encoding,
        )
    done = measured.result
    report = {
        "import_id": str(done.id),
        "status": done.status,
        "message": done.message,
        "rows": done.rows_done,
        "created": done.created,
        "updated": done.updated,
        "errors": done.errors,
        "seconds": round(measured.seconds, 3),
        "rows_per_second": round(measured.rows_per_second, 1),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
    }
    print(json.dumps(report))  # noqa: T201
    return 0 if done.status == "done" else 1


async def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export a list or saved view of a workspace to a CSV or XLSX file."""
    from orbit.platform.imports.runner import export_to_file  # noqa: PLC0415

    async with servers(settings) as endpoints, connected(settings, endpoints) as runtime:
        tenant_id = await _workspace_id(runtime, args.tenant)
        if tenant_id is None:
            print(f"no workspace with slug {args.tenant!r}", file=sys.stderr)  # noqa: T201
            return 2
        measured = await export_to_file(
            runtime.db,
            tenant_id,
            Path(args.out),
            object_type=args.type,
            file_format=args.format,
            view=args.view,
            filters=args.filters,
            q=args.q,
            columns=args.columns,
        )
    report = {
        "rows": measured.rows,
        "file": args.out,
        "seconds": round(measured.seconds, 3),
        "rows_per_second": round(measured.rows_per_second, 1),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
    }
    print(json.dumps(report))  # noqa: T201
    return 0


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``orbit import run`` and ``orbit export``."""
    importing = commands.add_parser("import", help="import CSV/XLSX files").add_subparsers(
        dest="import_command", required=True, metavar="IMPORT_COMMAND"
    )
    run = importing.add_parser("run", help="import FILE into a workspace, in this process")
    run.add_argument("tenant", help="workspace slug")
    run.add_argument("file", help="a CSV or XLSX file with a heading row")
    run.add_argument("--type", default="contact", help="contact, company or deal")
    run.add_argument("--mode", default="upsert", choices=["create", "update", "upsert"])
    run.add_argument("--mapping", help='JSON {"column": "field"} (default: the suggested one)')
    run.add_argument("--dedupe-key", help="email, domain or custom.<key> (default: email/domain)")
    run.add_argument("--strict", action="store_true", help="roll back everything on a bad row")
    run.add_argument("--encoding", help="the CSV's encoding (default: detected)")
    run.set_defaults(func=cmd_import_run)
    export = commands.add_parser("export", help="export a list or saved view to CSV/XLSX")
    export.add_argument("tenant", help="workspace slug")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--type", default="contact", help="contact, company or deal")
    export.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    export.add_argument("--view", help="a saved view's id")
    export.add_argument("--filters", help="JSON list of filters, as the list API takes")
    export.add_argument("--q", help="search text")
    export.add_argument("--columns", help="comma-separated fields")
    export.set_defaults(func=cmd_export)


def _add_tenant_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``orbit tenants create|export|import|delete``."""
    tenants = commands.add_parser("tenants", help="workspaces").add_subparsers(
        dest="tenants_command", required=True, metavar="TENANTS_COMMAND"
    )
    create = tenants.add_parser("create", help="create a workspace and its owner")
    create.add_argument("--name", required=True)
    create.add_argument("--owner-email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--owner-name")
    create.set_defaults(func=cmd_tenants_create)
    export = tenants.add_parser("export", help="write a workspace to a zip of CSV + JSON")
    export.add_argument("tenant", help="workspace slug")
    export.add_argument("--out", required=True, help="the zip file to write")
    export.set_defaults(func=cmd_tenants_export)
    restore = tenants.add_parser("import", help="restore an export into a new workspace")
    restore.add_argument("file", help="a zip written by `orbit tenants export`")
    restore.add_argument("--name", help="the new workspace's name (default: the exported one)")
    restore.set_defaults(func=cmd_tenants_import)
    remove = tenants.add_parser("delete", help="delete a workspace and all its data")
    remove.add_argument("tenant", help="workspace slug")
    remove.add_argument("--confirm", required=True, help="the slug again")
    remove.set_defaults(func=cmd_tenants_delete)


def build_parser() -> argparse.ArgumentParser:
    """The ``orbit`` argument parser."""
    parser = argparse.ArgumentParser(prog="orbit", description="Orbit CRM")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="migrate, seed a demo once, and serve").set_defaults(
        func=cmd_run
    )
    commands.add_parser("web", help="serve the web app").set_defaults(func=cmd_web)
    commands.add_parser(
        "worker", help="deliver domain events: outgoing webhooks with retries"
    ).set_defaults(func=cmd_worker)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    backup = commands.add_parser("backup", help="dump the database to FILE (pg_dump -Fc)")
    backup.add_argument("file", type=Path, metavar="FILE")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser(
        "restore", help="replace the database with a backup FILE (stop web and workers first)"
    )
    restore.add_argument("file", type=Path, metavar="FILE")
    restore.set_defaults(func=cmd_restore)
    db = commands.add_parser("db", help="database tools").add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND"
    )
    db.add_parser("check", help="fail when a tenant table lacks forced RLS").set_defaults(
        func=cmd_db_check
    )
    roles_sql = db.add_parser(
        "roles-sql",
        help="print the SQL a DBA runs once to create Orbit's roles (connects to nothing)",
    )
    roles_sql.add_argument(
        "--database", default="orbit", help="the database Orbit uses (default: orbit)"
    )
    roles_sql.add_argument(
        "--app-password",
        help=f"orbit_app's password (default: a {APP_PASSWORD_PLACEHOLDER} placeholder to edit; "
        "a password given here is visible in the process list and shell history)",
    )
    roles_sql.set_defaults(func=cmd_db_roles_sql)
    _add_tenant_commands(commands)
    _add_data_commands(commands)
    _add_billing_commands(commands)
    keys = commands.add_parser("api-keys", help="API keys").add_subparsers(
        dest="keys_command", required=True, metavar="KEYS_COMMAND"
    )
    key = keys.add_parser("create", help="create an API key and print it")
    key.add_argument("--tenant", required=True, help="workspace slug")
    key.add_argument("--name", required=True)
    key.add_argument("--scope", action="append", required=True, help="repeat per scope")
    key.set_defaults(func=cmd_api_keys_create)
    commands.add_parser("demo-seed", help="create the demo workspace").set_defaults(
        func=cmd_demo_seed
    )
    plugin = commands.add_parser("plugin", help="plugin developer kit").add_subparsers(
        dest="plugin_command", required=True, metavar="PLUGIN_COMMAND"
    )
    new = plugin.add_parser("new", help="scaffold a plugin distribution called NAME")
    new.add_argument("name", metavar="NAME", help="the plugin id, e.g. lead_scoring")
    new.add_argument(
        "--path", type=Path, help="the folder to create (default: ./orbit-NAME)", default=None
    )
    new.set_defaults(func=cmd_plugin_new)
    check = plugin.add_parser(
        "check",
        help="build the plugin at PATH, check its manifest, Orbit range, scopes and table "
        "RLS (on a scratch database: DATABASE_URL's server or an embedded one), run its tests",
    )
    check.add_argument("path", type=Path, metavar="PATH")
    check.add_argument("--no-tests", action="store_true", help="skip the plugin's tests")
    check.set_defaults(func=cmd_plugin_check)
    return parser


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orbit`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"orbit: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    from orbit.platform.observability.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    from orbit.platform.db.roles import RoleSetupError  # noqa: PLC0415
    from orbit.platform.errors import OrbitError  # noqa: PLC0415

    # SIGTERM (docker stop, kill) unwinds like Ctrl+C, so embedded servers stop too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        code: int = asyncio.run(args.func(settings, args))
    except OrbitError as exc:
        print(f"orbit: {exc.message}", file=sys.stderr)  # noqa: T201
        return 2
    except RoleSetupError as exc:
        print(f"orbit: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
