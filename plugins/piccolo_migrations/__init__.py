"""Migrations of the plugin platform's own tables."""
