"""Migrations of the crm app."""
