"""Webhooks reach public addresses only (no SSRF into the cluster)."""

from __future__ import annotations

import httpx
import pytest

from orbit.platform.events.egress import NonPublicAddressError, PublicOnlyTransport


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://100.64.0.1/",
    ],
)
async def test_non_public_addresses_are_refused_before_connecting(url: str) -> None:
    async with httpx.AsyncClient(transport=PublicOnlyTransport()) as client:
        with pytest.raises(NonPublicAddressError, match="refused"):
            await client.post(url, content=b"{}")


async def test_private_addresses_can_be_allowed_for_a_lan_or_tests() -> None:
    async with httpx.AsyncClient(transport=PublicOnlyTransport(allow_private=True)) as client:
        # Nothing listens on this port: the request gets as far as connecting, and fails there.
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post("http://127.0.0.1:9/", content=b"{}")
    assert not isinstance(caught.value, NonPublicAddressError)
