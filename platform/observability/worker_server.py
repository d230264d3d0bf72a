"""A tiny HTTP/1.1 server for the worker's ``/healthz`` and ``/metrics``.

The worker has no web framework, and a probe endpoint must not depend on one: this
is :func:`asyncio.start_server` with a handler that reads one request line and its
headers (bounded in size and time), answers, and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0
"""Seconds a client has to send its request line and headers."""
MAX_HEADER_LINES = 100
LINE_LIMIT = 8192
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """Serves ``/healthz`` (``health()``: ok and details) and ``/metrics`` (``metrics()``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], tuple[bool, dict[str, object]]],
        metrics: Callable[[], Awaitable[bytes]],
    ) -> None:
        self.host = host
        self.port = port
        self.health = health
        self.metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; ``port`` 0 picks a free port, readable from ``self.port`` afterwards."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=LINE_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("worker health and metrics on http://%s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening (open connections finish on their own, each is short)."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), timeout=2)
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            for _ in range(MAX_HEADER_LINES):
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                if line in {b"\r\n", b"\n", b""}:
                    break
            parts = request_line.split()
            if len(parts) < 2:  # noqa: PLR2004 - method and target
                return
            method, path = parts[0], parts[1].split(b"?", 1)[0]
            status, content_type, body = await self._answer(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == b"HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # a slow, broken or oversized request: just close
        except Exception:
            log.exception("the worker's health server failed a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, method: bytes, path: bytes) -> tuple[int, str, bytes]:
        if path not in {b"/healthz", b"/metrics"}:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        if method not in {b"GET", b"HEAD"}:
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST, await self.metrics()
        ok, details = self.health()
        body = json.dumps({"status": "ok" if ok else "unhealthy", **details}).encode() + b"\n"
        return (200 if ok else 503), "application/json", body
