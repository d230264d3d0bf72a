"""Database access: servers, roles, the tenant transaction, migrations, the RLS lint."""
