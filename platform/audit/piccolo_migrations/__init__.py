"""Migrations of the audit app."""
