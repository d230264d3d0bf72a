"""The plugin under test, for orbit.plugins.testing's fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def orbit_plugin() -> object:
    import orbit_lead_scoring  # noqa: PLC0415

    return orbit_lead_scoring
