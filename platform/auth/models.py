"""Users (global) and API keys (tenant-owned)."""

from piccolo.columns import UUID, Array, Timestamptz, Varchar
from piccolo.table import Table


class User(Table, tablename="users"):
    """A person who can log in; global, since one user may belong to several workspaces."""

    id = UUID(primary_key=True)
    email = Varchar(length=320)
    email_key = Varchar(length=320)  # case-folded email, unique
    password_hash = Varchar(length=200)
    name = Varchar(length=200)
    time_zone = Varchar(length=64, default="UTC")
    created_at = Timestamptz()


class ApiKey(Table, tablename="api_keys"):
    """A workspace's API key: shown once, stored as a SHA-256 of its secret part."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    name = Varchar(length=100)
    prefix = Varchar(length=16)
    secret_hash = Varchar(length=64)
    scopes = Array(base_column=Varchar(length=40))
    created_by = UUID(null=True)
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
