"""A small HTTP/1.1 keep-alive client and load generator on asyncio streams.

It does the least work a client can (one GET written, the response read to its end),
so that on a 2-core machine the client takes as little CPU as possible from the
server it measures; the app and the reference route are loaded by this same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    """A response other than 2xx, or a broken one."""


@dataclass(frozen=True, slots=True)
class Response:
    """Status and body of one response."""

    status: int
    body: bytes


class Connection:
    """One keep-alive connection to ``base_url`` sending GETs with fixed headers."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = f"Host: {self.host}:{self.port}\r\n{extra}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Response:
        """GET ``path``; raises :class:`HttpError` unless the status is 2xx.

        A kept-alive connection the server has closed meanwhile (uvicorn closes idle
        ones after 5 s) is opened again and the request sent once more.
        """
        reused = self._writer is not None and not self._writer.is_closing()
        try:
            return await self._get(path)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            if not reused:
                raise
            return await self._get(path)

    async def _get(self, path: str) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None  # noqa: S101 - opened just above
        self._writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            body = await self._reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self._reader.read()
            await self.close()
        if fields.get("connection", "").lower() == "close":
            await self.close()
        if not 200 <= status < 300:
            raise HttpError(f"GET {path}: {status} {body[:300]!r}")
        return Response(status, body)

    async def _chunked(self) -> bytes:
        assert self._reader is not None  # noqa: S101 - only called while reading
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        """Close the connection (the next GET opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load run achieved."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


async def load(
    base_url: str,
    path: str,
    *,
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """``concurrency`` connections GET ``path`` back to back for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal errors
        connection = Connection(base_url, headers)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await connection.get(path)
                except (HttpError, OSError, asyncio.IncompleteReadError):
                    errors += 1
                    await connection.close()
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            await connection.close()

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), errors, time.perf_counter() - started, latencies)
