"""Global search: ranked, typo-tolerant matching of contacts, companies and deals, and notes.

Under RLS PostgreSQL will not use the trigram and full-text indexes (their operators
are not LEAKPROOF), so, like ``orbit_search_contacts``, these functions run as the
``orbit_search`` role, read the tenant from ``app.tenant_id`` (refusing to run
without one), filter by it explicitly, and are planned with the real values.

- ``orbit_search_ranked``: the best ``p_limit`` records of one type with a score
  (3 the text starts with the query, 2 a word does, 1 it contains it, plus the
  trigram word similarity that also lets typos match).
- ``orbit_search_ids``: ids (and ``updated_at``) of the records matching a list's
  ``q``, most recently updated first, after a keyset position.
- ``orbit_search_notes``: notes, calls, meetings and emails matching a full-text
  prefix query on their folded subject and body.

``p_owner_ids`` applies record visibility (NULL: every record).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql
from orbit.platform.db.roles import APP, SEARCH

ID = "2026-11-25T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "global search"

_GUARD = """
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION '{name}: app.tenant_id is not set' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_table IS NULL THEN
        RAISE EXCEPTION '{name}: unknown record type %', p_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
"""
_DECLARE = """
    v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    v_table text := CASE p_type WHEN 'contacts' THEN 'contacts' WHEN 'companies' THEN 'companies'
                                WHEN 'deals' THEN 'deals' END;
"""
# Typo tolerance: a query word matches a record word at trigram word similarity >= 0.5
# (e.g. "иванва" ~ "иванова" is 0.57, below the extension's default of 0.6).
_SETTINGS = """
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    SET pg_trgm.word_similarity_threshold = 0.5
"""
_RANKED = "orbit_search_ranked(text, text, text, boolean, integer, uuid[])"
_IDS = "orbit_search_ids(text, text, text, boolean, timestamptz, uuid, uuid[], integer)"
_NOTES = "orbit_search_notes(text, integer, uuid[])"


def _own(signature: str) -> str:
    return f"""
        ALTER FUNCTION {signature} OWNER TO {SEARCH};
        REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION {signature} TO {APP};
    """


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            -- Notes are searched by full text over their folded subject and body (folded
            -- in Python on write; rows written before this migration get lower()).
            ALTER TABLE activities ADD COLUMN search_text text NOT NULL DEFAULT '';
            ALTER TABLE activities NO FORCE ROW LEVEL SECURITY;
            UPDATE activities SET search_text = lower(subject || ' ' || body)
                WHERE kind IN ('note', 'call', 'meeting', 'email');
            ALTER TABLE activities FORCE ROW LEVEL SECURITY;
            CREATE INDEX activities_tenant_fts ON activities
                USING gin (tenant_id, to_tsvector('simple'::regconfig, search_text));
            GRANT SELECT ON companies, deals, activities TO {SEARCH};
            -- Load pg_trgm's library so that its settings are known when the functions
            -- below name one (an unknown one would be refused to a non-superuser).
            SELECT similarity('', '');
            -- Lists' q goes through orbit_search_ids now (it also tolerates typos).
            DROP FUNCTION orbit_search_contacts(text, integer, timestamptz, uuid, uuid[]);

            CREATE FUNCTION orbit_search_ranked(
                p_type text, p_query text, p_pattern text, p_fuzzy boolean, p_limit integer,
                p_owner_ids uuid[])
            RETURNS TABLE (id uuid, score real)
            {_SETTINGS}
            AS $$
            DECLARE {_DECLARE}
            BEGIN
                {_GUARD.format(name="orbit_search_ranked")}
                RETURN QUERY EXECUTE format(
                    'SELECT c.id, (CASE WHEN c.search_text LIKE %1$L THEN 3 '
                    '  WHEN c.search_text LIKE %2$L THEN 2 WHEN c.search_text LIKE %3$L THEN 1 '
                    '  ELSE 0 END + word_similarity(%4$L, c.search_text))::real AS score '
                    'FROM (SELECT id, search_text, updated_at FROM %5$I '
                    '      WHERE tenant_id = %6$L AND (search_text LIKE %3$L %7$s) %8$s '
                    '      LIMIT 1000) c '
                    'ORDER BY score DESC, c.updated_at DESC, c.id DESC LIMIT %9$s',
                    substr(p_pattern, 2), '% ' || substr(p_pattern, 2), p_pattern, p_query,
                    v_table, v_tenant,
                    CASE WHEN p_fuzzy THEN format('OR %L <%% search_text', p_query) ELSE '' END,
                    CASE WHEN p_owner_ids IS NULL THEN ''
                         ELSE format('AND owner_id = ANY (%L::uuid[])', p_owner_ids) END,
                    least(greatest(p_limit, 1), 100));
            END
            $$;
            {_own(_RANKED)}

            CREATE FUNCTION orbit_search_ids(
                p_type text, p_query text, p_pattern text, p_fuzzy boolean,
                p_before_updated timestamptz, p_before_id uuid, p_owner_ids uuid[],
                p_limit integer)
            RETURNS TABLE (id uuid, updated_at timestamptz)
            {_SETTINGS}
            AS $$
            DECLARE {_DECLARE}
            BEGIN
                {_GUARD.format(name="orbit_search_ids")}
                RETURN QUERY EXECUTE format(
                    'SELECT id, updated_at FROM %I WHERE tenant_id = %L '
                    'AND (search_text LIKE %L %s) %s %s '
                    'ORDER BY updated_at DESC, id DESC LIMIT %s',
                    v_table, v_tenant, p_pattern,
                    CASE WHEN p_fuzzy THEN format('OR %L <%% search_text', p_query) ELSE '' END,
                    CASE WHEN p_before_updated IS NULL THEN ''
                         ELSE format('AND (updated_at, id) < (%L::timestamptz, %L::uuid)',
                                     p_before_updated, p_before_id) END,
                    CASE WHEN p_owner_ids IS NULL THEN ''
                         ELSE format('AND owner_id = ANY (%L::uuid[])', p_owner_ids) END,
                    least(greatest(p_limit, 1), 5000));
            END
            $$;
            {_own(_IDS)}

            CREATE FUNCTION orbit_search_notes(p_tsquery text, p_limit integer, p_owner_ids uuid[])
            RETURNS TABLE (id uuid, score real)
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$
            DECLARE
                v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
                v_visible text := '';
            BEGIN
                IF v_tenant IS NULL THEN
                    RAISE EXCEPTION 'orbit_search_notes: app.tenant_id is not set'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF p_owner_ids IS NOT NULL THEN
                    -- Like the timeline: leave out what is linked to a record the member
                    -- may not see.
                    v_visible := format(
                        'AND (a.contact_id IS NULL OR EXISTS (SELECT 1 FROM contacts x '
                        '  WHERE x.tenant_id = a.tenant_id AND x.id = a.contact_id '
                        '  AND x.owner_id = ANY (%1$L::uuid[]))) '
                        'AND (a.company_id IS NULL OR EXISTS (SELECT 1 FROM companies x '
                        '  WHERE x.tenant_id = a.tenant_id AND x.id = a.company_id '
                        '  AND x.owner_id = ANY (%1$L::uuid[]))) '
                        'AND (a.deal_id IS NULL OR EXISTS (SELECT 1 FROM deals x '
                        '  WHERE x.tenant_id = a.tenant_id AND x.id = a.deal_id '
                        '  AND x.owner_id = ANY (%1$L::uuid[])))',
                        p_owner_ids);
                END IF;
                RETURN QUERY EXECUTE format(
                    'SELECT a.id, ts_rank(to_tsvector(''simple''::regconfig, a.search_text), '
                    '  to_tsquery(''simple''::regconfig, %2$L))::real AS score '
                    'FROM activities a WHERE a.tenant_id = %1$L '
                    'AND a.kind IN (''note'', ''call'', ''meeting'', ''email'') '
                    'AND to_tsvector(''simple''::regconfig, a.search_text) '
                    '    @@ to_tsquery(''simple''::regconfig, %2$L) %3$s '
                    'ORDER BY score DESC, a.occurred_at DESC, a.id DESC LIMIT %4$s',
                    v_tenant, p_tsquery, v_visible, least(greatest(p_limit, 1), 100));
            END
            $$;
            {_own(_NOTES)}
        """)
    )
    return manager
