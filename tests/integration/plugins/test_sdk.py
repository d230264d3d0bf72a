"""The plugin developer kit: ``orbit plugin new`` scaffolds a plugin that ``check`` passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _orbit(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orbit.platform.cli.main", *args],
        cwd=ROOT,
        env=os.environ | {"ORBIT_HOME": str(home), "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _new(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    made = _orbit("plugin", "new", name, "--path", str(folder), home=tmp_path / "home")
    assert made.returncode == 0, made.stderr
    assert f"orbit plugin check {folder}" in made.stdout
    return folder


def test_a_new_plugin_passes_check_with_its_tests(tmp_path: Path) -> None:
    folder = _new(tmp_path, "kit-demo")
    package = folder / "src" / "orbit_kit_demo"
    assert 'kit_demo = "orbit_kit_demo"' in (folder / "pyproject.toml").read_text()
    assert 'requires_orbit=">=0.1,<0.2"' in (package / "__init__.py").read_text()
    migrations = list((package / "piccolo_migrations").glob("m*_kit_demo_events.py"))
    assert len(migrations) == 1

    checked = _orbit("plugin", "check", str(folder), home=tmp_path / "home")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = checked.stdout
    assert "ok    manifest: kit_demo 0.1.0 (Kit demo)" in out
    assert "ok    requires_orbit >=0.1,<0.2: admits Orbit 0.1.0" in out
    assert "ok    hooks: orbit_event, orbit_ui_slot" in out
    assert "ok    table kit_demo_events: tenant_id, forced RLS, tenant policy" in out
    assert "ok    tests: 2 passed" in out
    assert out.rstrip().endswith("all checks passed")
    # A second scaffold into the same folder is refused, not overwritten.
    again = _orbit("plugin", "new", "kit-demo", "--path", str(folder), home=tmp_path / "home")
    assert again.returncode == 2
    assert "is not empty" in again.stderr


def test_check_fails_clearly_on_a_bad_manifest(tmp_path: Path) -> None:
    folder = _new(tmp_path, "kit_bad")
    plugin = folder / "src" / "orbit_kit_bad" / "__init__.py"
    source = plugin.read_text()
    source = source.replace('scopes=("contacts:read",)', 'scopes=("contacts:delete",)')
    source = source.replace('requires_orbit=">=0.1,<0.2"', 'requires_orbit="soon"')
    plugin.write_text(source)
    checked = _orbit("plugin", "check", str(folder), home=tmp_path / "home")
    assert checked.returncode == 1
    assert "FAIL  manifest: scopes: unknown 'contacts:delete'" in checked.stdout
    assert "FAIL  manifest: requires_orbit: 'soon' is not a version range" in checked.stdout
    assert "tests:" not in checked.stdout  # nothing else runs on a plugin that cannot load
    assert "check(s) failed" in checked.stdout


def test_check_fails_on_a_table_without_row_level_security(tmp_path: Path) -> None:
    folder = _new(tmp_path, "kit_open")
    [migration] = (folder / "src" / "orbit_kit_open" / "piccolo_migrations").glob("m*.py")
    text = migration.read_text()
    assert '{plugin_owned("kit_open_events")}' in text
    migration.write_text(
        text.replace(
            '{plugin_owned("kit_open_events")}',
            "GRANT SELECT, INSERT ON kit_open_events TO orbit_plugin_data;"
            "CREATE TABLE kit_open_notes (id uuid PRIMARY KEY);",
        )
    )
    checked = _orbit("plugin", "check", "--no-tests", str(folder), home=tmp_path / "home")
    assert checked.returncode == 1, checked.stdout
    assert (
        "FAIL  table kit_open_events: row level security is not enabled; "
        "row level security is not forced; no policy on app.tenant_id" in checked.stdout
    )
    assert (
        "FAIL  table kit_open_notes: has no tenant_id column; is not in the manifest's "
        "`tables`" in checked.stdout
    )


def test_check_needs_a_distribution(tmp_path: Path) -> None:
    checked = _orbit("plugin", "check", str(tmp_path), home=tmp_path / "home")
    assert checked.returncode == 1
    assert "pyproject.toml is missing: a plugin is a Python distribution" in checked.stdout


def test_the_example_plugin_passes_check_and_its_own_tests(tmp_path: Path) -> None:
    checked = _orbit("plugin", "check", str(ROOT / "examples" / "lead_scoring"), home=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok    table lead_scoring_points: tenant_id, forced RLS, tenant policy" in checked.stdout
    assert "ok    table lead_scoring_scores: tenant_id, forced RLS, tenant policy" in checked.stdout
    assert "ok    tests: 9 passed" in checked.stdout
    # Built from a copy: the example's folder gets no build output.
    assert not list((ROOT / "examples" / "lead_scoring").rglob("*.egg-info"))
