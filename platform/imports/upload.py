"""Streaming an import file to disk as it arrives, before any transaction is open.

The request middleware reads every other body into memory (2 MiB at most); an
import may be 2 GB, so ``POST /api/v1/imports`` streams its raw body to a file
under ``ORBIT_HOME`` instead. The caller is identified first (a short
transaction), the size is capped by :data:`MAX_UPLOAD_BYTES` and the plan's free
storage, and no database connection is held while the bytes arrive.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from litestar.datastructures import Headers

from orbit.billing.catalog import plan
from orbit.platform.errors import NotAuthenticatedError, PaymentRequiredError
from orbit.platform.ids import new_id
from orbit.platform.imports.files import MAX_UPLOAD_BYTES, upload_dir
from orbit.tenants.quotas import limit_of

if TYPE_CHECKING:
    from pathlib import Path

    from litestar.types import Receive, Scope

    from orbit.platform.runtime import Runtime
    from orbit.tenants.context import Principal

UPLOAD_PATH = re.compile(r"^/api/v1/imports/?$")
UPLOAD_KEY = "orbit.import_upload"
"""Where the middleware leaves the staged file's path in ``scope["state"]``."""
_MB = 1024 * 1024


class UploadRefusedError(Exception):
    """The upload cannot be taken: its status and what to tell the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ClientGoneError(Exception):
    """The client went away before the whole file arrived."""


def is_upload(scope: Scope) -> bool:
    """Whether the request is an import upload (streamed, not buffered)."""
    return scope.get("method") == "POST" and UPLOAD_PATH.match(scope["path"]) is not None


async def room_for(runtime: Runtime, principal: Principal) -> int:
    """Bytes the caller's workspace may still upload (2 GB at most)."""
    tenant = principal.tenant
    if tenant is None:
        raise NotAuthenticatedError("log in or send 'Authorization: Bearer <API key>'")
    row = await runtime.db.fetchrow(
        "SELECT t.plan, coalesce(u.used, 0) AS used FROM tenants t LEFT JOIN tenant_usage u "
        "ON u.tenant_id = t.id AND u.quota = 'storage_bytes' WHERE t.id = $1",
        tenant.tenant_id,
    )
    chosen = plan(row["plan"] if row else "free")
    free = limit_of(chosen, "storage") - (int(row["used"]) if row else 0)
    if free <= 0:
        raise PaymentRequiredError(
            f"storage quota exceeded: the {chosen.name} plan allows "
            f"{limit_of(chosen, 'storage') // _MB:,} MB and all of it is used"
        )
    return min(MAX_UPLOAD_BYTES, free)


async def stream_to_disk(
    home: Path, principal: Principal, scope: Scope, receive: Receive, limit: int
) -> Path:
    """Write the request body to a new file; refuse it past ``limit`` bytes."""
    assert principal.tenant is not None  # noqa: S101 - room_for checked it
    headers = Headers.from_scope(scope)
    declared = headers.get("content-length")
    too_large = (
        f"the file is larger than this workspace may upload ({limit // _MB:,} MB: the "
        f"{MAX_UPLOAD_BYTES // (1024 * _MB)} GB cap or the plan's free storage)"
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise UploadRefusedError(413, too_large)
    path = upload_dir(home, principal.tenant.tenant_id) / f"incoming-{new_id()}"
    size = 0
    try:
        with path.open("wb") as out:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGoneError  # noqa: TRY301 - the file is removed below
                chunk = cast("bytes", message.get("body", b""))
                size += len(chunk)
                if size > limit:
                    raise UploadRefusedError(413, too_large)  # noqa: TRY301 - as above
                out.write(chunk)
                if not message.get("more_body", False):
                    break
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
