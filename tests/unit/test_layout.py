"""The card's top-level folders map to the ``orbit`` namespace exactly as pyproject says."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found: set[str] = set()
    for import_name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for directory in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            if "__pycache__" in directory.parts or not any(directory.glob("*.py")):
                continue
            relative = directory.relative_to(base).parts
            found.add(".".join([import_name, *relative]))
    return found


def test_packages_list_equals_the_python_folders_on_disk() -> None:
    assert set(SETUPTOOLS["packages"]) == _packages_on_disk()


def test_every_card_folder_is_mapped_into_the_orbit_namespace() -> None:
    mapped = set(SETUPTOOLS["package-dir"].values())
    assert mapped == {"platform", "tenants", "billing", "plugins", "frontend"}
    for folder in ("platform", "tenants", "billing", "plugins", "frontend", "helm", "tests"):
        assert (ROOT / folder).is_dir(), f"{folder}/ is a top-level folder of the card"


def test_platform_folder_has_no_top_level_init() -> None:
    # A regular package named `platform` at the root would shadow the standard library.
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_import_platform_from_the_repo_root_gets_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == platform_system()


def platform_system() -> str:
    import platform  # noqa: PLC0415

    return platform.system()


def test_templates_static_files_and_migrations_ship_as_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    assert "templates/**/*" in data["orbit.frontend"]
    assert "static/**/*" in data["orbit.frontend"]
    from orbit.platform.db.piccolo_conf import APP_REGISTRY  # noqa: PLC0415

    for app_module in APP_REGISTRY.apps:
        migrations = app_module.rpartition(".")[0] + ".piccolo_migrations"
        assert migrations in SETUPTOOLS["packages"], f"{migrations} would not ship"
