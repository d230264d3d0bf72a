"""Invoicing: a payment may pay invoices billed to no CRM company or contact.

Such a payment names no customer; the plugin requires it to be allocated in full (a
customer without a CRM record keeps no credit), so only the table's check goes.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.plugins.api import sql

ID = "2026-11-26T13:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invoicing payments without a CRM customer"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="invoicing", description=DESCRIPTION)
    manager.add_raw(
        sql("ALTER TABLE invoicing_payments DROP CONSTRAINT IF EXISTS invoicing_payments_check;")
    )
    return manager
