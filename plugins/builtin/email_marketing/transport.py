"""Getting messages out: a transport another plugin provides, or SMTP built in.

SMTP connections are kept open between batches and runs (one small pool per server
and event loop) so a campaign pays the TCP, TLS and EHLO round trips once, not per
message. A 4xx answer defers the message (tried again later); a 5xx is permanent
(counted as a bounce at SMTP time); a broken connection defers the batch's rest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

if TYPE_CHECKING:
    from uuid import UUID

    from orbit.plugins.api import PluginContext

CONNECTIONS_PER_SERVER = 8
TIMEOUT = 30.0
PERMANENT = 500


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message ready for the wire."""

    message_id: UUID
    sender: str
    """The envelope sender (return path)."""
    recipient: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending one message went."""

    ok: bool
    code: int
    detail: str = ""
    permanent: bool = False
    """The receiver refused it for good (5xx): not retried."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to connect, from the ``smtp_url`` setting."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpServer:
        """``smtp://user@host:port`` (STARTTLS when offered) or ``smtps://…`` (TLS)."""
        url = urlsplit(str(settings.get("smtp_url") or "smtp://127.0.0.1:25"))
        try:
            port = url.port
        except ValueError:
            port = -1
        if url.scheme not in {"smtp", "smtps"} or not url.hostname or port == -1:
            msg = f"smtp_url: {settings.get('smtp_url')!r} is not smtp://host:port"
            raise ValueError(msg)
        return cls(
            host=url.hostname,
            port=port or (465 if url.scheme == "smtps" else 25),
            username=unquote(url.username) if url.username else None,
            password=settings.get("smtp_password") or (unquote(url.password or "") or None),
            use_tls=url.scheme == "smtps",
        )


def settings_problems(settings: Any) -> list[str]:
    """What is wrong with the SMTP server setting, one message each (empty: fine)."""
    try:
        SmtpServer.from_settings(settings)
    except ValueError as exc:
        return [f"{exc} (e.g. smtp://mail.example.com:587 or smtps://mail.example.com:465)"]
    return []


class _Pool:
    """Open connections to one server, handed out one at a time."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self.opened = 0

    async def take(self) -> aiosmtplib.SMTP:
        if self.idle.empty() and self.opened < CONNECTIONS_PER_SERVER:
            self.opened += 1
            try:
                return await self._connect()
            except Exception:
                self.opened -= 1
                raise
        smtp = await self.idle.get()
        if not smtp.is_connected:
            try:
                return await self._connect()
            except Exception:
                self.opened -= 1
                raise
        return smtp

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.server
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.use_tls,
            start_tls=None,
            timeout=TIMEOUT,
        )
        await smtp.connect()
        return smtp

    def give_back(self, smtp: aiosmtplib.SMTP) -> None:
        self.idle.put_nowait(smtp)

    def broken(self, smtp: aiosmtplib.SMTP) -> None:
        smtp.close()
        self.opened -= 1


_POOLS: dict[tuple[int, SmtpServer], _Pool] = {}


def _pool(server: SmtpServer) -> _Pool:
    key = (id(asyncio.get_running_loop()), server)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = _Pool(server)
    return pool


async def close_connections() -> None:
    """Quit every pooled connection of the running event loop (tests, shutdown)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _POOLS if k[0] == loop]:
        pool = _POOLS.pop(key)
        while not pool.idle.empty():
            smtp = pool.idle.get_nowait()
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()


async def _send_on(pool: _Pool, messages: list[OutgoingMessage]) -> list[Delivery]:
    """Send ``messages`` one after another on one pooled connection."""
    results: list[Delivery] = []
    try:
        smtp = await pool.take()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return [Delivery(ok=False, code=0, detail=f"cannot connect: {exc}")] * len(messages)
    for index, message in enumerate(messages):
        try:
            await smtp.sendmail(message.sender, [message.recipient], message.data)
            results.append(Delivery(ok=True, code=250))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused is not None else 550
            detail = refused.message if refused is not None else str(exc)
            results.append(
                Delivery(ok=False, code=code, detail=detail, permanent=code >= PERMANENT)
            )
            await _reset(smtp)
        except aiosmtplib.SMTPResponseException as exc:
            results.append(
                Delivery(
                    ok=False, code=exc.code, detail=exc.message, permanent=exc.code >= PERMANENT
                )
            )
            await _reset(smtp)
        except (aiosmtplib.SMTPException, OSError) as exc:
            pool.broken(smtp)
            rest = len(messages) - index
            return [
                *results,
                *[Delivery(ok=False, code=0, detail=f"connection lost: {exc}")] * rest,
            ]
    pool.give_back(smtp)
    return results


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def send_smtp(server: SmtpServer, messages: list[OutgoingMessage]) -> list[Delivery]:
    """Send over SMTP, spread over the pool's connections; one result per message, in order."""
    if not messages:
        return []
    pool = _pool(server)
    lanes = min(CONNECTIONS_PER_SERVER, len(messages))
    chunks = [messages[i::lanes] for i in range(lanes)]
    answers = await asyncio.gather(*(_send_on(pool, chunk) for chunk in chunks))
    results: list[Delivery | None] = [None] * len(messages)
    for lane, answer in enumerate(answers):
        for offset, delivery in enumerate(answer):
            results[lane + offset * lanes] = delivery
    return [r if r is not None else Delivery(ok=False, code=0, detail="not sent") for r in results]


async def send(ctx: PluginContext, messages: list[OutgoingMessage]) -> list[Delivery]:
    """Send through the first plugin transport that answers, else over SMTP."""
    answer = await ctx.hooks.first("email_marketing_transport", messages=messages)
    if isinstance(answer, list) and len(answer) == len(messages):
        return answer
    return await send_smtp(SmtpServer.from_settings(ctx.settings), messages)
