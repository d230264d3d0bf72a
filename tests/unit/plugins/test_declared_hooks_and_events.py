"""Plugins' own events (manifest ``emits``/``events``) and hooks (manifest ``hookspecs``)."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from orbit.plugins.api import ORBIT_PLUGIN_API_VERSION, hookimpl, hookspec
from orbit.plugins.manifest import ManifestError, parse_manifest
from orbit.plugins.registry import PluginRegistry

BASE: dict[str, Any] = {
    "id": "invoicing",
    "name": "Invoicing",
    "version": "1.0.0",
    "summary": "Invoices",
    "author": "Orbit",
    "license": "MIT",
    "requires_orbit": ">=0.1",
}


def test_the_api_is_version_1_1() -> None:
    assert ORBIT_PLUGIN_API_VERSION == "1.1.0"


def test_plugin_event_types_are_declared_and_subscribed_to() -> None:
    manifest = parse_manifest(
        {
            **BASE,
            "emits": ["invoicing.invoice_paid", "invoicing.invoice.sent"],
            "events": ["deal.won", "projects.project_done", "*"],
            "hookspecs": "orbit_invoicing.hookspecs",
        }
    )
    assert manifest.emits == ("invoicing.invoice_paid", "invoicing.invoice.sent")
    assert manifest.events == ("deal.won", "projects.project_done", "*")
    assert manifest.hookspecs == "orbit_invoicing.hookspecs"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"emits": ["projects.done"]}, "emits: 'projects.done' must be invoicing.<name>"),
        ({"emits": ["invoicing"]}, "emits: 'invoicing' must be"),
        ({"emits": ["invoicing.Paid!"]}, "emits: 'invoicing.Paid!' must be"),
        ({"events": ["deal.closed"]}, "events: unknown event type 'deal.closed'"),
        ({"events": ["contact.anything"]}, "events: unknown event type 'contact.anything'"),
        ({"events": ["nonsense"]}, "events: unknown event type 'nonsense'"),
        ({"hookspecs": "not a module!"}, "hookspecs: must be the dotted path of a module"),
    ],
)
def test_bad_event_types_and_hookspecs_are_named(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest({**BASE, **change})
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def _module(name: str, **functions: Any) -> str:
    module = ModuleType(name)
    for key, function in functions.items():
        setattr(module, key, function)
    sys.modules[name] = module
    return name


def _plugin(plugin_id: str, **more: Any) -> Any:
    hooks = {k: v for k, v in more.items() if k != "hookspecs"}
    manifest = {**BASE, "id": plugin_id}
    if "hookspecs" in more:
        manifest["hookspecs"] = more["hookspecs"]
    return SimpleNamespace(MANIFEST=manifest, **hooks)


def test_declared_hooks_load_in_any_order_and_are_checked() -> None:
    @hookspec
    def billing_quote(ctx: Any, amount: int) -> str | None:
        """A quote."""

    @hookspec
    def quote(ctx: Any) -> None:
        """Not prefixed with the plugin id."""

    @hookimpl
    def billing_quote_impl(ctx: Any, amount: int) -> str:
        return f"{amount}"

    @hookimpl
    def wrong_args(ctx: Any, price: int) -> str:
        return f"{price}"

    good = _module("tests_declared_good", billing_quote=billing_quote)
    unprefixed = _module("tests_declared_unprefixed", quote=quote)
    registry = PluginRegistry("0.1.0")
    # An implementation of billing's hook, loaded before billing declares it: waits.
    registry.load("early", lambda: _plugin("early", billing_quote=billing_quote_impl))
    registry.load("billing", lambda: _plugin("billing", hookspecs=good))
    registry.load("late", lambda: _plugin("late", billing_quote=billing_quote_impl))
    registry.load("mismatch", lambda: _plugin("mismatch", billing_quote=wrong_args))
    registry.load("odd", lambda: _plugin("odd", hookspecs=unprefixed))
    registry.load("missing", lambda: _plugin("missing", hookspecs="tests_declared_nowhere"))
    registry.load("selfish", lambda: _plugin("selfish", selfish_thing=billing_quote_impl))
    problems = {key: listing.problem for key, listing in registry.listings.items()}
    assert problems["early"] is None
    assert problems["billing"] is None
    assert problems["late"] is None
    assert "bad hook" in str(problems["mismatch"])
    assert "{'price'} are declared in the hookimpl" in str(problems["mismatch"])
    assert "quote must be named odd_" in str(problems["odd"])
    assert "tests_declared_nowhere" in str(problems["missing"])
    assert "unknown hook 'selfish_thing'" in str(problems["selfish"])
    implementers = [i.plugin_name for i in registry.pm.hook.billing_quote.get_hookimpls()]
    assert sorted(implementers) == ["early", "late"]
