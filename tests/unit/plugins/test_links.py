"""Plugin tokens (``ctx.sign``/``verify``) and links (``ctx.url``), without a server."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import timedelta

import pytest

from orbit.plugins.links import PluginLinks, TokenError, TokenExpiredError

KEY = secrets.token_urlsafe(32)
TENANT = uuid.uuid4()


def test_a_token_round_trips_its_data_as_json_and_names_its_workspace() -> None:
    links = PluginLinks(KEY, "https://crm.example.com/")
    token = links.sign("herald", TENANT, {"n": 1, "id": TENANT, "tags": ["a"]}, "quote.accept")
    assert links.verify("herald", token, "quote.accept") == (
        TENANT,
        {"n": 1, "id": str(TENANT), "tags": ["a"]},
    )
    assert all(c.isalnum() or c in "-_" for c in token)  # URL-safe, no padding


def test_a_token_with_one_uuid_stays_short_enough_for_an_email_link() -> None:
    token = PluginLinks(KEY, "").sign(
        "email_marketing", TENANT, {"r": str(uuid.uuid4())}, "unsubscribe", timedelta(days=90)
    )
    assert len(token) <= 110


def test_another_key_plugin_or_purpose_does_not_verify() -> None:
    links = PluginLinks(KEY, "")
    token = links.sign("herald", TENANT, {}, "view")
    with pytest.raises(TokenError):
        PluginLinks(secrets.token_urlsafe(32), "").verify("herald", token, "view")
    with pytest.raises(TokenError):
        links.verify("heralds", token, "view")
    with pytest.raises(TokenError):
        links.verify("herald", token, "View")


def test_expiry_is_checked_after_the_signature() -> None:
    past = PluginLinks(KEY, "", clock=lambda: time.time() - 120)
    token = past.sign("herald", TENANT, {}, "view", timedelta(seconds=60))
    with pytest.raises(TokenExpiredError, match="expired"):
        PluginLinks(KEY, "").verify("herald", token, "view")
    assert PluginLinks(KEY, "", clock=lambda: time.time() - 90).verify("herald", token, "view")
    # Pushing the expiry out breaks the tag: a forgery (404), not an expired link (410).
    raw = bytearray(token.encode())
    raw[24] = ord("A") if raw[24] != ord("A") else ord("B")
    with pytest.raises(TokenError) as caught:
        PluginLinks(KEY, "").verify("herald", raw.decode(), "view")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("purpose", ["", "has space", "x" * 65, "nul\x00"])
def test_purposes_are_short_names(purpose: str) -> None:
    with pytest.raises(ValueError, match="purpose"):
        PluginLinks(KEY, "").sign("herald", TENANT, {}, purpose)


def test_urls_start_with_the_public_url() -> None:
    links = PluginLinks(KEY, "https://crm.example.com/")
    assert links.url("x", plugin_id="herald", tenant_slug="acme", public=True) == (
        "https://crm.example.com/p/herald/x"
    )
    assert links.url("/q", plugin_id="herald", tenant_slug="acme") == (
        "https://crm.example.com/t/acme/apps/herald/q"
    )
