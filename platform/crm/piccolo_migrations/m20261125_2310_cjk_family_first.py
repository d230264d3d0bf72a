"""Contacts whose CJK name is split over first and last name: searchable as written.

``contact_search_document`` now adds ``王伟`` and ``伟王`` for last name 王 and first
name 伟 (people file the family name in either field); this adds them to the search
text of the contacts written before (NFKC is all that folding does to CJK text).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-25T23:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "CJK names family name first in contacts' search text"

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY;
            UPDATE contacts
            SET search_text = search_text || ' ' || normalize(last_name || first_name, NFKC)
                || ' ' || normalize(first_name || last_name, NFKC)
            WHERE first_name ~ '^[{_CJK}]+$' AND last_name ~ '^[{_CJK}]+$';
            ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
        """)
    )
    return manager
