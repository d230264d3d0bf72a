"""The worker's side: claim due imports and exports (any tenant) and run them as SAQ jobs.

PostgreSQL holds the truth: a claimed job is leased for
:data:`~orbit.platform.imports.engine.LEASE_SECONDS` and every batch renews the
lease, so a job whose worker died is claimed again once its lease runs out and
resumes from its last committed batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orbit.platform.imports.engine import LEASE_SECONDS

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.platform.db.engine import Database


@dataclass(frozen=True, slots=True)
class DataJob:
    """An import or export due to run."""

    kind: str
    tenant_id: UUID
    job_id: UUID
    attempts: int

    @property
    def job_key(self) -> str:
        """One queued SAQ job per claim."""
        return f"{self.kind}:{self.job_id}:{self.attempts}"


async def claim_data_jobs(db: Database, limit: int = 10) -> list[DataJob]:
    """Lease the due imports and exports (ids only, through the narrow definer)."""
    async with db.transaction():
        rows = await db.fetch(
            "SELECT kind, tenant_id, id, attempts FROM orbit_claim_data_jobs($1, $2)",
            limit,
            LEASE_SECONDS,
        )
    return [DataJob(r["kind"], r["tenant_id"], r["id"], r["attempts"]) for r in rows]
