"""The audit log table (written and read with SQL in ``service.py``)."""

from piccolo.columns import JSONB, UUID, Timestamptz, Varchar
from piccolo.table import Table


class AuditEntry(Table, tablename="audit_entries"):
    """One change: a record created, updated (field by field), deleted, merged or imported."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    occurred_at = Timestamptz()
    action = Varchar(length=20)
    record_type = Varchar(length=40)
    record_id = UUID(null=True, default=None)
    record_label = Varchar(length=300)
    owner_id = UUID(null=True, default=None)
    actor_type = Varchar(length=10)
    actor_id = UUID(null=True, default=None)
    actor_display = Varchar(length=400)
    ip = Varchar(length=45, null=True, default=None)
    changes = JSONB()
    details = JSONB()
    erased_at = Timestamptz(null=True, default=None)
