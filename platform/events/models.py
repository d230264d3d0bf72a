"""The outbox: domain events written in the same transaction as the change they describe."""

from piccolo.columns import JSONB, UUID, Timestamptz, Varchar
from piccolo.table import Table


class OutboxEvent(Table, tablename="outbox_events"):
    """One domain event (``contact.created``, ``deal.won`` …) awaiting or done delivery."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    type = Varchar(length=64)
    data = JSONB()
    occurred_at = Timestamptz()
    dispatched_at = Timestamptz(null=True, default=None)
