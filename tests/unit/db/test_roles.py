from __future__ import annotations

from orbit.platform.db import roles
from orbit.platform.db.roles import role_statements

ALL_ROLES = {roles.OWNER, roles.APP, roles.SEARCH, roles.CROSSTENANT, roles.PLUGIN_DATA}


def _creates(statements: list[str]) -> dict[str, str]:
    return {s.split()[2]: s for s in statements if s.startswith("CREATE ROLE ")}


def test_on_an_empty_server_every_role_is_created() -> None:
    created = _creates(role_statements(existing=set(), app_password="pw", database="orbit"))
    assert set(created) == ALL_ROLES


def test_only_missing_roles_are_created_and_grants_are_always_given() -> None:
    statements = role_statements(
        existing={roles.OWNER, roles.SEARCH}, app_password="pw", database="orbit"
    )
    assert set(_creates(statements)) == {roles.APP, roles.CROSSTENANT, roles.PLUGIN_DATA}
    everything_exists = role_statements(existing=ALL_ROLES, app_password="pw", database="orbit")
    assert _creates(everything_exists) == {}
    assert everything_exists
    assert all(s.startswith("GRANT ") for s in everything_exists)


def test_the_app_role_logs_in_but_can_never_bypass_row_level_security() -> None:
    app = _creates(role_statements(existing=set(), app_password="pw", database="orbit"))[roles.APP]
    words = app.split()
    assert "LOGIN" in words
    assert "NOSUPERUSER" in words
    assert "NOBYPASSRLS" in words
    assert "BYPASSRLS" not in words
    assert "SUPERUSER" not in words


def test_the_security_definer_roles_bypass_rls_and_cannot_log_in() -> None:
    created = _creates(role_statements(existing=set(), app_password="pw", database="orbit"))
    for definer in (roles.SEARCH, roles.CROSSTENANT):
        words = created[definer].split()
        assert "BYPASSRLS" in words
        assert "NOLOGIN" in words
        assert "LOGIN" not in words


def test_the_owner_cannot_log_in_and_may_hand_functions_to_the_definer_roles() -> None:
    statements = role_statements(existing=set(), app_password="pw", database="orbit")
    owner = _creates(statements)[roles.OWNER].split()
    assert "NOLOGIN" in owner
    assert "NOBYPASSRLS" in owner
    assert f"GRANT {roles.SEARCH}, {roles.CROSSTENANT} TO {roles.OWNER}" in statements


def test_the_database_name_is_quoted_as_an_identifier() -> None:
    statements = role_statements(existing=ALL_ROLES, app_password="pw", database='crm "eu"; x')
    database_grants = [s for s in statements if " ON DATABASE " in s]
    assert len(database_grants) == 2
    assert all(' ON DATABASE "crm ""eu""; x" TO ' in s for s in database_grants)


def test_the_app_password_is_quoted_as_a_literal() -> None:
    app = _creates(role_statements(existing=set(), app_password="it's", database="orbit"))
    assert app[roles.APP].endswith("PASSWORD 'it''s'")


def test_plugin_sql_runs_as_a_role_that_cannot_bypass_rls_and_the_app_may_switch_to_it() -> None:
    statements = role_statements(existing=set(), app_password="pw", database="orbit")
    words = _creates(statements)[roles.PLUGIN_DATA].split()
    assert "NOLOGIN" in words
    assert "NOBYPASSRLS" in words
    assert f"GRANT {roles.PLUGIN_DATA} TO {roles.APP}" in statements
