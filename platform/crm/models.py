"""CRM tables."""

from piccolo.columns import JSONB, UUID, Array, Text, Timestamptz, Varchar
from piccolo.table import Table


class Contact(Table, tablename="contacts"):
    """A person the workspace does business with."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    first_name = Varchar(length=100)
    last_name = Varchar(length=100)
    email = Varchar(length=320, null=True, default=None)
    phone = Varchar(length=50, null=True, default=None)
    company_name = Varchar(length=200, null=True, default=None)
    owner_id = UUID(null=True, default=None)
    tags = Array(base_column=Varchar(length=50))
    custom = JSONB()
    search_text = Text()
    created_at = Timestamptz()
    updated_at = Timestamptz()
