"""Migrations of the events app."""
