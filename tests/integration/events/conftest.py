"""A real HTTP receiver on 127.0.0.1 that verifies Orbit's webhook signatures, and a worker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orbit.platform.events.backoff import RetryPolicy
from orbit.platform.events.signing import verify
from orbit.platform.events.worker import EventWorker
from orbit.platform.runtime import Runtime

FAST_RETRIES = RetryPolicy(
    first_delay=timedelta(milliseconds=200),
    max_delay=timedelta(seconds=1),
    window=timedelta(minutes=5),
)


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int | None = None
    """The status the receiver answered (None: it never answered)."""

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class Receiver:
    """Collects deliveries; answers from ``statuses`` first, then 200; can hang one request."""

    url: str
    secrets: dict[str, str] = field(default_factory=dict)
    """Path → the endpoint secret the receiver verifies with."""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hang_next: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answered_ok(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r for r in self.requests if r.answered == 200 and (path is None or r.path == path)
            ]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            secret = receiver.secrets.get(self.path, "")
            verified = verify(
                secret,
                headers.get("orbit-signature", ""),
                int(headers.get("orbit-timestamp", "0")),
                body,
                now=int(time.time()),
            )
            record = Received(self.path, headers, body, verified)
            with receiver.lock:
                receiver.requests.append(record)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                hang = receiver.hang_next.is_set()
                receiver.hang_next.clear()
            if hang:
                receiver.release.wait(60)
                return  # never answers: the connection just closes
            try:
                self.send_response(status if verified else 401)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                return
            record.answered = status if verified else 401

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver(url="")))
    host, port = server.server_address[:2]
    state = Receiver(url=f"http://{host!s}:{port}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def worker(runtime: Runtime) -> AsyncIterator[EventWorker]:
    """An in-process worker with fast retries on its own queue."""
    running = EventWorker(
        runtime,
        queue_name=f"test-{uuid.uuid4().hex[:8]}",
        policy=FAST_RETRIES,
        http_timeout=2.0,
        poll_interval=0.05,
    )
    await running.start()
    yield running
    await running.stop()


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:  # noqa: ASYNC109
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)
