"""Orbit's benchmark suite: generated data at scale, the app against raw SQL (not shipped)."""
