"""Migrations of the db app."""
