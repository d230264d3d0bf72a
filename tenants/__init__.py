"""Tenants (workspaces), memberships (seats), invitations and roles."""
