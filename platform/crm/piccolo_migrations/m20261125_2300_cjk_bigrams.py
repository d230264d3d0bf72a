"""Two-character Chinese, Japanese and Korean queries through an index.

A trigram index cannot answer ``LIKE '%王伟%'``: two characters hold no trigram, so
PostgreSQL read every record of the workspace (533 ms p95 on 1,000,000 contacts,
README's performance table). ``orbit_cjk_bigrams`` lists the two-character pieces of
each run of CJK characters in a search text as space-separated words
(``' 王伟 伟明 '`` for ``王伟明``); a two-character query then matches the word
``' 王伟 '``, whose padded trigrams the index does hold. The expression index is
partial, so records without CJK text cost one function call on write and nothing in
the index.

The search functions keep their signatures: for a query of exactly two CJK characters
they match through the bigrams (the same records as the substring test: both
characters sit in one run), everything else as before; ranking is unchanged.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-25T23:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "CJK bigram search"

# Han (with extension A and compatibility ideographs), kana, Hangul syllables.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"

_DECLARE = """
    v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    v_table text := CASE p_type WHEN 'contacts' THEN 'contacts' WHEN 'companies' THEN 'companies'
                                WHEN 'deals' THEN 'deals' END;
    v_owners text := CASE WHEN p_owner_ids IS NULL THEN ''
                          ELSE format('AND owner_id = ANY (%L::uuid[])', p_owner_ids) END;
    v_match text := orbit_search_match(p_query, p_pattern);
"""
_GUARD = """
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION '{name}: app.tenant_id is not set' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_table IS NULL THEN
        RAISE EXCEPTION '{name}: unknown record type %', p_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
"""


def _index(table: str) -> str:
    return (
        f"CREATE INDEX {table}_tenant_cjk ON {table} "
        f"USING gin (tenant_id, orbit_cjk_bigrams(search_text) gin_trgm_ops) "
        f"WHERE orbit_cjk_bigrams(search_text) IS NOT NULL;"
    )


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            -- pg_trgm's library must be loaded for its setting below (see 1830).
            SELECT similarity('', '');
            CREATE FUNCTION orbit_cjk_bigrams(p_text text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            RETURN (
                SELECT ' ' || string_agg(substr(m.run[1], i, 2), ' ' ORDER BY m.n, i) || ' '
                FROM pg_catalog.regexp_matches(p_text, '[{_CJK}]{{2,}}', 'g')
                     WITH ORDINALITY AS m (run, n),
                     pg_catalog.generate_series(1, pg_catalog.char_length(m.run[1]) - 1) AS i
            );

            -- The WHERE condition of a search: bigram words for two CJK characters,
            -- the substring pattern otherwise.
            CREATE FUNCTION orbit_search_match(p_query text, p_pattern text) RETURNS text
            LANGUAGE sql STABLE PARALLEL SAFE
            RETURN CASE
                WHEN p_query ~ '^[{_CJK}]{{2}}$'
                THEN format('orbit_cjk_bigrams(search_text) LIKE %L', '% ' || p_query || ' %')
                ELSE format('search_text LIKE %L', p_pattern)
            END;

            {_index("contacts")}
            {_index("companies")}
            {_index("deals")}

            CREATE OR REPLACE FUNCTION orbit_search_ranked(
                p_type text, p_query text, p_pattern text, p_fuzzy boolean, p_limit integer,
                p_owner_ids uuid[])
            RETURNS TABLE (id uuid, score real)
            LANGUAGE plpgsql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            SET pg_trgm.word_similarity_threshold = 0.5
            AS $$
            DECLARE {_DECLARE}
                v_limit integer := least(greatest(p_limit, 1), 100);
                v_found integer;
            BEGIN
                {_GUARD.format(name="orbit_search_ranked")}
                RETURN QUERY EXECUTE format(
                    'SELECT c.id, (CASE WHEN c.search_text LIKE %1$L THEN 3 '
                    '  WHEN c.search_text LIKE %2$L THEN 2 ELSE 1 END '
                    '  + word_similarity(%4$L, c.search_text))::real AS score '
                    'FROM (SELECT id, search_text, updated_at FROM %5$I '
                    '      WHERE tenant_id = %6$L AND %3$s %7$s LIMIT 1000) c '
                    'ORDER BY score DESC, c.updated_at DESC, c.id DESC LIMIT %8$s',
                    substr(p_pattern, 2), '% ' || substr(p_pattern, 2), v_match, p_query,
                    v_table, v_tenant, v_owners, v_limit);
                GET DIAGNOSTICS v_found = ROW_COUNT;
                IF p_fuzzy AND v_found < v_limit THEN
                    -- Similar words (typos) fill the rest, after every substring match.
                    RETURN QUERY EXECUTE format(
                        'SELECT c.id, word_similarity(%1$L, c.search_text)::real AS score '
                        'FROM (SELECT id, search_text, updated_at FROM %2$I '
                        '      WHERE tenant_id = %3$L AND %1$L <%% search_text '
                        '      AND search_text NOT LIKE %4$L %5$s LIMIT 200) c '
                        'ORDER BY score DESC, c.updated_at DESC, c.id DESC LIMIT %6$s',
                        p_query, v_table, v_tenant, p_pattern, v_owners, v_limit - v_found);
                END IF;
            END
            $$;

            CREATE OR REPLACE FUNCTION orbit_search_ids(
                p_type text, p_query text, p_pattern text, p_fuzzy boolean,
                p_before_updated timestamptz, p_before_id uuid, p_owner_ids uuid[],
                p_limit integer)
            RETURNS TABLE (id uuid, updated_at timestamptz)
            LANGUAGE plpgsql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, public, pg_temp
            SET pg_trgm.word_similarity_threshold = 0.5
            AS $$
            DECLARE {_DECLARE}
                v_any boolean := true;
            BEGIN
                {_GUARD.format(name="orbit_search_ids")}
                IF p_fuzzy THEN
                    -- Typo matches only when nothing contains the query: every page of
                    -- one list then answers the same question.
                    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE tenant_id = %L AND %s %s)',
                                   v_table, v_tenant, v_match, v_owners) INTO v_any;
                    IF NOT v_any THEN
                        v_match := format('%L <%% search_text', p_query);
                    END IF;
                END IF;
                RETURN QUERY EXECUTE format(
                    'SELECT id, updated_at FROM (SELECT id, updated_at FROM %I '
                    '  WHERE tenant_id = %L AND %s %s %s %s) c '
                    'ORDER BY updated_at DESC, id DESC LIMIT %s',
                    v_table, v_tenant, v_match,
                    CASE WHEN p_before_updated IS NULL THEN ''
                         ELSE format('AND (updated_at, id) < (%L::timestamptz, %L::uuid)',
                                     p_before_updated, p_before_id) END,
                    v_owners, CASE WHEN v_any THEN '' ELSE 'OFFSET 0' END,
                    least(greatest(p_limit, 1), 5000));
            END
            $$;
        """)
    )
    return manager
