"""Workspace tables: the tenant itself (global) and what belongs to it."""

from piccolo.columns import UUID, Timestamptz, Varchar
from piccolo.table import Table


class Tenant(Table, tablename="tenants"):
    """A workspace. Global: looked up by slug before any tenant is chosen."""

    id = UUID(primary_key=True)
    slug = Varchar(length=63)
    name = Varchar(length=200)
    plan = Varchar(length=20, default="free")
    created_at = Timestamptz()


class Membership(Table, tablename="memberships"):
    """A user in a workspace with a role; an active membership is a paid seat."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    user_id = UUID()
    role = Varchar(length=20)
    status = Varchar(length=20)
    created_at = Timestamptz()


class Invitation(Table, tablename="invitations"):
    """An admin's invitation of an email address; the token is stored hashed."""

    tenant_id = UUID()
    id = UUID(primary_key=True)
    email = Varchar(length=320)
    role = Varchar(length=20)
    token_hash = Varchar(length=64)
    invited_by = UUID(null=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    accepted_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
