"""Manifests are checked completely, and a plugin that cannot load is listed, never loaded."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from orbit.plugins.api import Manifest, Setting, hookimpl
from orbit.plugins.manifest import ManifestError, incompatibility, parse_manifest
from orbit.plugins.registry import PluginRegistry
from orbit.plugins.service import check_settings

GOOD: dict[str, Any] = {
    "id": "lead_scoring",
    "name": "Lead scoring",
    "version": "1.2.0",
    "summary": "Scores leads",
    "author": "Acme",
    "license": "MIT",
    "requires_orbit": ">=0.1,<1",
    "scopes": ["contacts:read"],
    "slots": ["contact.sidebar"],
    "price_per_seat": "3.50",
}


def test_a_good_manifest_parses_with_its_price() -> None:
    manifest = parse_manifest(GOOD)
    assert manifest.id == "lead_scoring"
    assert manifest.price_per_seat == Decimal("3.50")
    assert not manifest.free
    assert incompatibility(manifest, "0.1.0") is None
    assert incompatibility(manifest, "1.0.0") == "needs Orbit >=0.1,<1; this is Orbit 1.0.0"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": ""}, "name: is required"),
        ({"id": "Bad-Id"}, "id: 'Bad-Id' must be"),
        ({"version": "one"}, "version: 'one' is not a PEP 440 version"),
        ({"requires_orbit": "around 1"}, "requires_orbit: 'around 1' is not a version range"),
        ({"scopes": ["contacts:read", "everything:write"]}, "scopes: unknown 'everything:write'"),
        ({"slots": ["footer"]}, "slots: unknown 'footer'"),
        ({"price_per_seat": "cheap"}, "price_per_seat: 'cheap' is not a number"),
        ({"price_per_seat": "1.234"}, "at most two decimals"),
        ({"tables": ["contacts"]}, "tables: 'contacts' must start with the plugin id"),
        ({"colour": "red"}, "unknown keys: colour"),
        ({"settings": [{"name": "x", "label": "X", "type": "choice"}]}, "needs choices"),
        ({"nav": "Campaigns"}, "nav: must be a pair (label, path)"),
        ({"nav": ("", "/")}, "nav: the label must be 1-30 characters"),
        ({"nav": ("Go", "https://evil.example/")}, "nav: the path 'https://evil.example/' must"),
        ({"nav": ("Go", "//evil.example")}, "nav: the path '//evil.example' must"),
    ],
)
def test_each_manifest_problem_is_named(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest({**GOOD, **change})
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_a_nav_link_is_a_label_and_a_path_under_the_plugins_pages() -> None:
    assert parse_manifest({**GOOD, "nav": ["Scores", "/board/"]}).nav == ("Scores", "/board/")
    assert parse_manifest(GOOD).nav is None


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest({"id": "x!", "scopes": ["nope"]})
    assert len(raised.value.problems) >= 7


def _plugin(manifest: Any, **hooks: Any) -> Any:
    return SimpleNamespace(MANIFEST=manifest, **hooks)


def test_broken_plugins_are_listed_with_the_reason_and_never_loaded() -> None:
    registry = PluginRegistry("0.1.0")

    def explode() -> Any:
        raise ImportError("no module named 'numpy'")

    registry.load("broken-dist", explode)
    registry.load("no-manifest", SimpleNamespace)
    registry.load("bad", lambda: _plugin({**GOOD, "id": "bad", "scopes": ["root"]}))
    registry.load("future", lambda: _plugin({**GOOD, "id": "future", "requires_orbit": ">=2"}))

    @hookimpl
    def orbit_event(ctx: Any, evnt: Any) -> None:  # a misspelt argument
        return None

    registry.load("typo", lambda: _plugin({**GOOD, "id": "typo"}, orbit_event=orbit_event))

    @hookimpl
    def orbit_not_a_hook() -> None:
        return None

    registry.load(
        "unknown", lambda: _plugin({**GOOD, "id": "unknown"}, orbit_nope=orbit_not_a_hook)
    )
    registry.load("good", lambda: _plugin(GOOD))
    registry.load("again", lambda: _plugin(GOOD))
    problems = {key: listing.problem for key, listing in registry.listings.items()}
    assert problems["broken-dist"] is not None
    assert "import failed" in problems["broken-dist"]
    assert problems["no-manifest"] == "no MANIFEST"
    assert "scopes: unknown 'root'" in str(problems["bad"])
    assert "needs Orbit >=2" in str(problems["future"])
    assert "bad hook" in str(problems["typo"])
    assert "bad hook" in str(problems["unknown"])
    assert problems["lead_scoring"] is None
    assert "already taken" in str(problems["lead_scoring@again"])
    assert [m.id for m in registry.loaded] == ["lead_scoring"]
    assert [name for name, _ in registry.pm.list_name_plugin()] == ["lead_scoring"]


def test_settings_are_checked_against_the_schema() -> None:
    manifest = Manifest(
        id="s",
        name="S",
        version="1",
        summary="s",
        author="a",
        license="MIT",
        requires_orbit=">=0",
        settings=(
            Setting(name="points", label="Points", type="integer", minimum=0, maximum=10),
            Setting(name="mode", label="Mode", type="choice", choices=("fast", "slow")),
            Setting(name="token", label="Token", type="secret", required=True),
            Setting(name="on", label="On", type="boolean"),
        ),
    )
    plain, secrets = check_settings(
        manifest, {"points": "3", "mode": "slow", "token": "t0k", "on": "true"}
    )
    assert plain == {"points": 3, "mode": "slow", "on": True}
    assert secrets == {"token": "t0k"}
    kept, _ = check_settings(manifest, {"token": ""}, saved_secrets=frozenset({"token"}))
    assert kept == {}
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the fields are the point
        check_settings(manifest, {"points": 11, "mode": "medium", "extra": 1})
    fields = raised.value.fields  # type: ignore[attr-defined]
    assert set(fields) == {"settings.points", "settings.mode", "settings.token", "settings.extra"}
    assert "at most 10" in fields["settings.points"]
