"""Outgoing webhook traffic goes to the public internet only.

A workspace admin chooses webhook URLs, so without a guard they could aim the
worker at the cloud metadata service, Redis, PostgreSQL or anything else inside
the cluster, and read the answers back from the attempt log. This transport
resolves the host itself, refuses any address that is not globally routable
(loopback, private, link-local, shared, reserved, multicast), then connects to
the very address it checked (with the original Host header and TLS server name),
so a DNS answer that changes between check and connect cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx


class NonPublicAddressError(httpx.ConnectError):
    """The webhook host resolves to an address Orbit will not connect to."""


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to globally routable addresses."""

    def __init__(self, *, allow_private: bool = False) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.allow_private = allow_private
        """``ORBIT_WEBHOOK_ALLOW_PRIVATE``: self-hosters with receivers on their LAN, and tests."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check where the host resolves, then send the request to that exact address."""
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not self.allow_private:
            refused = [address for address in addresses if not address.is_global]
            if refused or not addresses:
                raise NonPublicAddressError(
                    f"refused: {host} resolves to a non-public address ({refused[0]})"
                    if refused
                    else f"refused: {host} has no address",
                    request=request,
                )
        address = addresses[0]
        request.headers["Host"] = request.url.netloc.decode("ascii")
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host=str(address))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._inner.aclose()
