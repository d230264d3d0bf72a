"""Similar company names as one key: a workspace's groups without a trigram scan.

Measured on 10,000 companies whose names share common words ("Company …"), one
window of 1,000 companies compared by trigram similarity took 77 s: every
company shares trigrams with every other, so each look-up read them all. Groups of
similar company names now come from a key (``orbit_company_name_key``: lower case,
punctuation and legal-form words such as Inc, Ltd, GmbH, AE set aside), grouped
like emails through an index; a company's own page still also lists the names
similar to its own by trigram similarity (one index look-up, ~2 ms there).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from orbit.platform.db.migrations import sql

ID = "2026-11-25T21:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "company name keys for duplicate groups"

_SETTINGS = """
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    SET pg_trgm.similarity_threshold = 0.5
"""
_GUARD = """
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION '{name}: app.tenant_id is not set' USING ERRCODE = 'insufficient_privilege';
    END IF;
"""
_LEGAL_FORMS = (
    "the|inc|incorporated|corp|corporation|co|company|ltd|limited|llc|llp|lp|plc|gmbh|ag|kg"
    "|sa|sas|sarl|srl|spa|bv|nv|ab|oy|as|aps|ae|epe|ike|oe|ee|ooo|zao|oao|pte|pty|pvt"
)


async def forwards() -> MigrationManager:
    """Apply this migration."""
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        sql(f"""
            CREATE FUNCTION orbit_company_name_key(p_name text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog
            AS $$
                SELECT btrim(regexp_replace(regexp_replace(
                    regexp_replace(lower(p_name), '[^[:alnum:]]+', ' ', 'g'),
                    '\\m({_LEGAL_FORMS})\\M', ' ', 'g'), '\\s+', ' ', 'g'))
            $$;
            CREATE INDEX companies_dedupe_name_key ON companies
                (tenant_id, orbit_company_name_key(name), id);
            SELECT similarity('', '');

            CREATE OR REPLACE FUNCTION orbit_duplicate_groups(
                p_type text, p_reason text, p_after text, p_owner_ids uuid[],
                p_limit integer, p_scan integer)
            RETURNS TABLE (key text, ids uuid[])
            {_SETTINGS}
            AS $$
            DECLARE
                v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
                v_limit integer := least(greatest(p_limit, 1), 201);
                v_scan integer := least(greatest(p_scan, 1), 20000);
                v_owners_a text := CASE WHEN p_owner_ids IS NULL THEN ''
                    ELSE format('AND a.owner_id = ANY (%L::uuid[])', p_owner_ids) END;
                v_owners_b text := CASE WHEN p_owner_ids IS NULL THEN ''
                    ELSE format('AND b.owner_id = ANY (%L::uuid[])', p_owner_ids) END;
                v_key text;
                v_where text;
                v_similar text;
            BEGIN
                {_GUARD.format(name="orbit_duplicate_groups")}
                IF (p_type, p_reason) IN (('contacts', 'email'), ('contacts', 'phone'),
                                          ('companies', 'domain'), ('companies', 'name')) THEN
                    v_key := CASE p_reason
                        WHEN 'email' THEN 'lower(a.email)'
                        WHEN 'phone' THEN 'regexp_replace(a.phone, ''[^0-9]'', '''', ''g'')'
                        WHEN 'name' THEN 'orbit_company_name_key(a.name)'
                        ELSE 'orbit_base_domain(a.domain)' END;
                    v_where := CASE p_reason
                        WHEN 'email' THEN 'a.email IS NOT NULL AND a.email <> '''''
                        WHEN 'phone' THEN 'a.phone IS NOT NULL AND length('
                            || v_key || ') >= 6'
                        WHEN 'name' THEN v_key || ' <> '''''
                        ELSE 'a.domain IS NOT NULL' END;
                    -- The window: the next p_scan keys; its groups are complete up to
                    -- and including its last key.
                    RETURN QUERY EXECUTE format(
                        'WITH w AS (SELECT %1$s AS k FROM %2$I a WHERE a.tenant_id = %3$L '
                        '  AND %4$s AND %1$s > %5$L %6$s ORDER BY 1 LIMIT %7$s), '
                        'edge AS (SELECT max(k) AS k, count(*) AS n FROM w) '
                        '(SELECT %1$s, (array_agg(a.id ORDER BY a.created_at, a.id))[1:10] '
                        ' FROM %2$I a WHERE a.tenant_id = %3$L AND %4$s AND %1$s > %5$L '
                        ' AND %1$s <= (SELECT k FROM edge) %6$s '
                        ' GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT %8$s) '
                        'UNION ALL SELECT k, ''{{}}''::uuid[] FROM edge WHERE n >= %7$s',
                        v_key, p_type, v_tenant, v_where, coalesce(p_after, ''), v_owners_a,
                        v_scan, v_limit);
                ELSIF (p_type, p_reason) = ('contacts', 'name') THEN
                    v_where := 'a.company_id IS NOT NULL '
                        || 'AND btrim(a.first_name || a.last_name) <> ''''';
                    v_similar := 'b.company_id = a.company_id AND '
                        || 'lower(btrim(b.first_name || '' '' || b.last_name)) '
                        || '% lower(btrim(a.first_name || '' '' || a.last_name))';
                    -- Each group is a record and the similar ones after it (by id); a
                    -- record similar to an earlier one is in that one's group instead.
                    RETURN QUERY EXECUTE format(
                        'WITH w AS (SELECT a.* FROM %1$I a WHERE a.tenant_id = %2$L AND %3$s '
                        '  AND a.id > %4$L::uuid %5$s ORDER BY a.id LIMIT %6$s), '
                        'g AS (SELECT a.id, a.id || array(SELECT b.id FROM %1$I b '
                        '  WHERE b.tenant_id = a.tenant_id AND b.id > a.id AND %7$s %8$s '
                        '  ORDER BY b.id LIMIT 9) AS ids FROM w a '
                        '  WHERE NOT EXISTS (SELECT 1 FROM %1$I b WHERE b.tenant_id = a.tenant_id '
                        '    AND b.id < a.id AND %7$s %8$s)) '
                        '(SELECT id::text, ids FROM g WHERE cardinality(ids) > 1 '
                        ' ORDER BY id LIMIT %9$s) '
                        'UNION ALL (SELECT w.id::text, ''{{}}''::uuid[] FROM w '
                        '  WHERE (SELECT count(*) FROM w) >= %6$s ORDER BY w.id DESC LIMIT 1)',
                        p_type, v_tenant, v_where,
                        coalesce(nullif(p_after, ''), '00000000-0000-0000-0000-000000000000'),
                        v_owners_a, v_scan, v_similar, v_owners_b, v_limit);
                ELSE
                    RAISE EXCEPTION 'orbit_duplicate_groups: unknown reason % for %',
                        p_reason, p_type USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END
            $$;
            CREATE OR REPLACE FUNCTION orbit_duplicates_of(p_type text, p_id uuid, p_owner_ids uuid[])
            RETURNS TABLE (id uuid, reason text)
            {_SETTINGS}
            AS $$
            DECLARE
                v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
                v_owners text := CASE WHEN p_owner_ids IS NULL THEN ''
                    ELSE format('AND b.owner_id = ANY (%L::uuid[])', p_owner_ids) END;
                v_contact contacts;
                v_company companies;
                v_phone text;
            BEGIN
                {_GUARD.format(name="orbit_duplicates_of")}
                IF p_type = 'contacts' THEN
                    SELECT * INTO v_contact FROM contacts c
                    WHERE c.tenant_id = v_tenant AND c.id = p_id;
                    IF NOT FOUND THEN RETURN; END IF;
                    v_phone := regexp_replace(coalesce(v_contact.phone, ''), '[^0-9]', '', 'g');
                    RETURN QUERY EXECUTE format(
                        'SELECT b.id, ''email''::text FROM contacts b WHERE b.tenant_id = %1$L '
                        '  AND b.email IS NOT NULL AND b.email <> '''' AND lower(b.email) = %2$L '
                        '  AND b.id <> %3$L %4$s '
                        'UNION SELECT b.id, ''phone'' FROM contacts b WHERE b.tenant_id = %1$L '
                        '  AND b.phone IS NOT NULL '
                        '  AND regexp_replace(b.phone, ''[^0-9]'', '''', ''g'') = %5$L '
                        '  AND length(%5$L) >= 6 AND b.id <> %3$L %4$s '
                        'UNION SELECT b.id, ''name'' FROM contacts b WHERE b.tenant_id = %1$L '
                        '  AND b.company_id IS NOT NULL AND b.company_id = %6$L '
                        '  AND lower(btrim(b.first_name || '' '' || b.last_name)) %% %7$L '
                        '  AND %7$L <> '''' AND b.id <> %3$L %4$s '
                        'LIMIT 50',
                        v_tenant, lower(v_contact.email), p_id, v_owners, v_phone,
                        v_contact.company_id,
                        lower(btrim(v_contact.first_name || ' ' || v_contact.last_name)));
                ELSIF p_type = 'companies' THEN
                    SELECT * INTO v_company FROM companies c
                    WHERE c.tenant_id = v_tenant AND c.id = p_id;
                    IF NOT FOUND THEN RETURN; END IF;
                    RETURN QUERY EXECUTE format(
                        'SELECT b.id, ''domain''::text FROM companies b WHERE b.tenant_id = %1$L '
                        '  AND b.domain IS NOT NULL AND orbit_base_domain(b.domain) = %2$L '
                        '  AND b.id <> %3$L %4$s '
                        'UNION SELECT b.id, ''name'' FROM companies b WHERE b.tenant_id = %1$L '
                        '  AND orbit_company_name_key(b.name) = %6$L AND %6$L <> '''' '
                        '  AND b.id <> %3$L %4$s '
                        'UNION SELECT b.id, ''name'' FROM companies b WHERE b.tenant_id = %1$L '
                        '  AND lower(b.name) %% %5$L AND b.id <> %3$L %4$s '
                        'LIMIT 50',
                        v_tenant, orbit_base_domain(v_company.domain), p_id, v_owners,
                        lower(v_company.name), orbit_company_name_key(v_company.name));
                ELSE
                    RAISE EXCEPTION 'orbit_duplicates_of: unknown record type %', p_type
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END
            $$;
        """)
    )
    return manager
