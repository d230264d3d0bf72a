"""Piccolo's configuration module: the app registry and the migration engine.

``DB`` is set by :func:`orbit.platform.db.migrations.migrate` to the owner's
engine before migrations run; requests never use it (they bind tables to the
app role's :class:`orbit.platform.db.engine.Database`).
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine  # noqa: TC002 - Piccolo reads DB at run time

DB: PostgresEngine | None = None

APP_REGISTRY = AppRegistry(
    apps=[
        "orbit.platform.db.piccolo_app",
        "orbit.platform.auth.piccolo_app",
        "orbit.tenants.piccolo_app",
        "orbit.platform.crm.piccolo_app",
        "orbit.platform.events.piccolo_app",
        "orbit.billing.piccolo_app",
        "orbit.platform.audit.piccolo_app",
        "orbit.plugins.piccolo_app",
    ]
)
