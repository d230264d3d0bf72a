"""Builtin plugins use only the public plugin API, as a third-party plugin must."""

from __future__ import annotations

import ast
from pathlib import Path

BUILTIN = Path(__file__).parents[2] / "plugins" / "builtin"
PUBLIC = "orbit.plugins.api"


def _orbit_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name == "orbit" or name.startswith("orbit.")]


def _allowed(module: str, own_package: str) -> bool:
    return module in {PUBLIC, own_package} or module.startswith(own_package + ".")


def test_builtin_plugins_import_only_the_public_api_and_themselves() -> None:
    offenders = []
    for path in sorted(BUILTIN.rglob("*.py")):
        parts = path.relative_to(BUILTIN).parts
        own = "orbit.plugins.builtin" + (f".{parts[0]}" if len(parts) > 1 else "")
        offenders += [
            f"{path.relative_to(BUILTIN.parents[1])}: imports {module}"
            for module in _orbit_imports(path)
            if not _allowed(module, own)
        ]
    assert offenders == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from orbit.platform.db.engine import Database\nimport orbit.plugins.api\n")
    assert _orbit_imports(sample) == ["orbit.platform.db.engine", "orbit.plugins.api"]
    assert not _allowed("orbit.platform.db.engine", "orbit.plugins.builtin.invoicing")
    assert _allowed("orbit.plugins.builtin.invoicing.money", "orbit.plugins.builtin.invoicing")
