"""Plugins' public pages (``/p/{plugin}/…``), signed tokens, pages in Orbit's layout, nav links.

The ``herald`` test plugin (tests/plugin_fixtures) serves a plain public page, a
contact card behind a ``view`` token and an RFC 8058 one-click unsubscribe behind an
``unsubscribe`` token.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from orbit.platform.runtime import Runtime
from orbit.platform.settings import Settings
from orbit.plugins.links import PluginLinks
from tests.conftest import Member, make_client

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def _enable(member: Member, plugin: str = "herald") -> None:
    response = await member.client.post(
        f"/api/v1/marketplace/{plugin}/enable", json={"scopes": ["contacts:read"]}
    )
    assert response.status_code == 201, response.text


async def _contact(member: Member, name: str) -> str:
    response = await member.client.post("/api/v1/contacts", json={"first_name": name})
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


async def _links(member: Member, contact_id: str, email: str = "ada@example.com") -> Any:
    """The herald's signed links for a contact, made by ``ctx.sign`` and ``ctx.url``."""
    response = await member.client.get(
        f"/t/{member.slug}/apps/herald/links/{contact_id}", params={"email": email}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _path(url: str) -> str:
    return urlsplit(url).path


def _token(url: str) -> str:
    return _path(url).rsplit("/", 1)[1]


def _swap_tenant(token: str, tenant_id: str) -> str:
    """The same token and tag with another workspace's id in its body (a forgery)."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1:17] = uuid.UUID(tenant_id).bytes
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


async def test_public_get_and_one_click_post_work_without_a_session(
    app: object, alice: Member, runtime: Runtime
) -> None:
    anonymous = make_client(app)
    hello = await anonymous.get("/p/herald/hello")
    assert hello.status_code == 200
    assert 'id="herald-hello"' in hello.text
    assert "<nav" not in hello.text  # the standalone layout: no navigation, no user
    assert hello.headers["referrer-policy"] == "no-referrer"
    assert hello.headers["cache-control"] == "no-store"
    assert hello.headers["x-frame-options"] == "DENY"
    await _enable(alice)
    links = await _links(alice, await _contact(alice, "Ada"))
    assert links["view"].startswith(f"{runtime.settings.public_url}/p/herald/c/")
    assert links["page"] == f"{runtime.settings.public_url}/t/{alice.slug}/apps/herald/"
    assert len(_token(links["view"])) < 120  # short enough for an email link
    card = await anonymous.get(_path(links["view"]))
    assert card.status_code == 200, card.text
    assert f"Ada · {alice.slug}" in card.text
    # RFC 8058: the mail provider posts the form body, no cookie, no CSRF token, no Origin.
    bye = await anonymous.post(_path(links["unsubscribe"]), data=ONE_CLICK)
    assert bye.status_code == 200, bye.text
    assert 'id="herald-bye"' in bye.text
    # A signed-in browser's session neither helps nor hinders (its cookie is not read).
    browser = make_client(app)
    browser.cookies = alice.client.cookies
    again = await browser.post(_path(links["unsubscribe"]), data=ONE_CLICK)
    assert again.status_code == 200, again.text
    home = await alice.client.get(f"/t/{alice.slug}/apps/herald/")
    assert 'id="herald-home">Unsubscribed: 1<' in home.text
    await anonymous.aclose()
    await browser.aclose()


async def test_a_plugin_not_loaded_or_a_route_it_lacks_is_a_404(app: object) -> None:
    anonymous = make_client(app)
    assert (await anonymous.get("/p/nosuchplugin/hello")).status_code == 404
    assert (await anonymous.get("/p/probe/hello")).status_code == 404  # probe has no public routes
    await anonymous.aclose()


async def test_tokens_are_bound_to_their_workspace_purpose_and_plugin(
    app: object, alice: Member, bob: Member, runtime: Runtime
) -> None:
    await _enable(alice)
    await _enable(bob)
    alices = await _contact(alice, "Alicia")
    links = await _links(alice, alices)
    view = _token(links["view"])
    anonymous = make_client(app)

    # The workspace is in the signed body: put Bob's there and the tag no longer matches.
    forged = await anonymous.get(f"/p/herald/c/{_swap_tenant(view, bob.workspace_id)}")
    assert forged.status_code == 404
    assert "Alicia" not in forged.text
    # Bob's herald cannot verify Alice's token in Bob's workspace.
    assert (
        await bob.client.get(f"/t/{bob.slug}/apps/herald/verify", params={"token": view})
    ).status_code == 404
    mine = await alice.client.get(f"/t/{alice.slug}/apps/herald/verify", params={"token": view})
    assert mine.json() == {"contact": alices}
    # A genuine token of Bob's workspace naming Alice's contact: row-level security hides it.
    bobs = runtime.plugins.links
    assert bobs is not None
    cross = bobs.sign("herald", uuid.UUID(bob.workspace_id), {"contact": alices}, "view")
    assert (await anonymous.get(f"/p/herald/c/{cross}")).status_code == 404

    # Purpose: an unsubscribe token does not open the contact card, nor the reverse.
    leave = _token(links["unsubscribe"])
    assert (await anonymous.get(f"/p/herald/c/{leave}")).status_code == 404
    wrong = await anonymous.post(f"/p/herald/unsubscribe/{view}", data=ONE_CLICK)
    assert wrong.status_code == 404
    # Another plugin's token for the same workspace, purpose and data.
    probes = bobs.sign("probe", uuid.UUID(alice.workspace_id), {"contact": alices}, "view")
    assert (await anonymous.get(f"/p/herald/c/{probes}")).status_code == 404
    # Tampered: one character changed, or cut short.
    flipped = view[:30] + ("A" if view[30] != "A" else "B") + view[31:]
    assert (await anonymous.get(f"/p/herald/c/{flipped}")).status_code == 404
    assert (await anonymous.get(f"/p/herald/c/{view[:20]}")).status_code == 404
    assert (await anonymous.get("/p/herald/c/not*base64")).status_code == 404
    # Nothing was written by the refused unsubscribe.
    home = await alice.client.get(f"/t/{alice.slug}/apps/herald/")
    assert 'id="herald-home">Unsubscribed: 0<' in home.text
    await anonymous.aclose()


async def test_an_expired_token_is_a_410_that_says_so(
    app: object, alice: Member, settings: Settings
) -> None:
    await _enable(alice)
    contact = await _contact(alice, "Old")
    an_hour_ago = PluginLinks(settings.secret_key, "", clock=lambda: time.time() - 3600)
    old = an_hour_ago.sign(
        "herald", uuid.UUID(alice.workspace_id), {"contact": contact}, "view", timedelta(minutes=5)
    )
    anonymous = make_client(app)
    expired = await anonymous.get(f"/p/herald/c/{old}")
    assert expired.status_code == 410
    assert "expired" in expired.text
    assert "<nav" not in expired.text  # error pages of public routes are standalone too
    fresh = an_hour_ago.sign(
        "herald", uuid.UUID(alice.workspace_id), {"contact": contact}, "view", timedelta(hours=2)
    )
    assert (await anonymous.get(f"/p/herald/c/{fresh}")).status_code == 200
    await anonymous.aclose()


async def test_a_token_of_a_workspace_that_disabled_the_plugin_is_a_404(
    app: object, alice: Member
) -> None:
    await _enable(alice)
    links = await _links(alice, await _contact(alice, "Gone"))
    anonymous = make_client(app)
    assert (await anonymous.get(_path(links["view"]))).status_code == 200
    disabled = await alice.client.post("/api/v1/marketplace/herald/disable")
    assert disabled.status_code == 201, disabled.text
    assert (await anonymous.get(_path(links["view"]))).status_code == 404
    refused = await anonymous.post(_path(links["unsubscribe"]), data=ONE_CLICK)
    assert refused.status_code == 404
    await anonymous.aclose()


async def test_a_page_renders_inside_the_layout_and_the_nav_link_shows_only_where_enabled(
    app: object, alice: Member, bob: Member
) -> None:
    nav = 'data-plugin-nav="herald"'
    assert nav not in (await alice.client.get(f"/t/{alice.slug}/")).text
    await _enable(alice)
    page = await alice.client.get(f"/t/{alice.slug}/apps/herald/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>Herald · Orbit CRM</title>" in page.text
    assert f'href="/t/{alice.slug}/contacts"' in page.text  # Orbit's navigation
    assert f'{{"X-CSRF-Token": "{alice.csrf}"}}' in page.text  # htmx's CSRF header
    assert f'<input type="hidden" name="csrf_token" value="{alice.csrf}">' in page.text
    assert f'href="/t/{alice.slug}/apps/herald/" {nav}>Herald</a>' in page.text
    # A plain form with ctx.csrf_field() posts; without the token it is refused.
    form = make_client(app)
    form.cookies = alice.client.cookies
    posted = await form.post(
        f"/t/{alice.slug}/apps/herald/notes", data={"csrf_token": alice.csrf, "note": "<hi>"}
    )
    assert posted.status_code == 200, posted.text
    assert '<p id="herald-note">&lt;hi&gt;</p>' in posted.text
    forged = await form.post(f"/t/{alice.slug}/apps/herald/notes", data={"note": "x"})
    assert forged.status_code == 403
    await form.aclose()
    detail = await alice.client.get(f"/t/{alice.slug}/marketplace/herald")
    assert f'id="plugin-open" href="/t/{alice.slug}/apps/herald/">Open Herald</a>' in detail.text
    dashboard = await alice.client.get(f"/t/{alice.slug}/contacts")
    assert nav in dashboard.text
    # htmx swaps of part of a page get no layout, so no lookup of links.
    rows = await alice.client.get(f"/t/{alice.slug}/contacts", headers={"HX-Request": "true"})
    assert nav not in rows.text
    # Bob's workspace has not enabled it: no link, and its page is a 404.
    assert nav not in (await bob.client.get(f"/t/{bob.slug}/")).text
    assert (await bob.client.get(f"/t/{bob.slug}/apps/herald/")).status_code == 404
    await alice.client.post("/api/v1/marketplace/herald/disable")
    assert nav not in (await alice.client.get(f"/t/{alice.slug}/")).text


async def test_public_routes_are_rate_limited_per_client_address(
    app: object, runtime: Runtime
) -> None:
    configured = runtime.settings
    runtime.settings = dataclasses.replace(configured, public_rate_per_minute=3)
    first, second = make_client(app), make_client(app)
    try:
        for _ in range(3):
            allowed = await first.get("/p/herald/hello")
            assert allowed.status_code == 200
        assert allowed.headers["ratelimit-policy"] == '"ip";q=3;w=60'
        refused = await first.get("/p/herald/hello")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "from your address" in refused.text
        # Another address has its own allowance.
        assert (await second.get("/p/herald/hello")).status_code == 200
    finally:
        runtime.settings = configured
        await first.aclose()
        await second.aclose()


async def test_a_public_route_that_fails_writes_nothing_and_is_counted(
    app: object, alice: Member, runtime: Runtime
) -> None:
    await _enable(alice)
    links = await _links(alice, await _contact(alice, "Crash"), email="crash@example.com")
    anonymous = make_client(app)
    failed = await anonymous.post(_path(links["unsubscribe"]).replace("/unsubscribe/", "/broken/"))
    assert failed.status_code == 500
    assert "<nav" not in failed.text
    home = await alice.client.get(f"/t/{alice.slug}/apps/herald/")
    assert 'id="herald-home">Unsubscribed: 0<' in home.text
    metrics = (await anonymous.get("/metrics")).text
    assert 'hook_calls_total{hook="public_route",outcome="error",plugin="herald"}' in metrics
    await anonymous.aclose()


async def test_a_public_route_refusing_its_caller_is_an_answer_not_a_failure(
    app: object, alice: Member, caplog: pytest.LogCaptureFixture
) -> None:
    await _enable(alice)
    links = await _links(alice, await _contact(alice, "Nope"), email="nope@example.com")
    async with make_client(app) as anonymous:
        before = (await anonymous.get("/metrics")).text
        with caplog.at_level(logging.ERROR, logger="orbit.plugins.public"):
            refused = await anonymous.post(
                _path(links["unsubscribe"]).replace("/unsubscribe/", "/refuse/")
            )
        after = (await anonymous.get("/metrics")).text
    assert refused.status_code == 403
    assert "herald refuses this caller" in refused.text
    assert not [r for r in caplog.records if r.name == "orbit.plugins.public"]
    errors = 'hook_calls_total{hook="public_route",outcome="error",plugin="herald"}'
    assert _metric(before, errors) == _metric(after, errors)


def _metric(text: str, name: str) -> float:
    return next(
        (float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)), 0.0
    )
