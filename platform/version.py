"""Orbit's own version: what ``requires_orbit`` ranges in plugin manifests are checked against."""

ORBIT_VERSION = "0.1.0"
"""Kept equal to ``project.version`` in pyproject.toml (a unit test checks)."""
