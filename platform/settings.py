"""Orbit's one typed settings object, read from the environment.

Nothing else in the code base reads ``os.environ``: commands build a
:class:`Settings` with :func:`load_settings` and pass it down.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

_MAX_PORT = 65535
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
_LOG_FORMATS = frozenset({"json", "text"})


class SettingsError(ValueError):
    """An environment variable holds a value Orbit cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration.

    ``database_url`` and ``redis_url`` are ``None`` when Orbit should start its
    embedded PostgreSQL and Valkey under ``home``.
    """

    home: Path
    """``ORBIT_HOME``: embedded data and generated secrets (default ``.orbit/``)."""
    secret_key: str = field(repr=False)
    """``ORBIT_SECRET_KEY``: signs tokens; generated once into ``home`` when unset."""
    database_url: str | None = None
    """``DATABASE_URL``: the owner (migration) connection of an external PostgreSQL."""
    database_app_url: str | None = None
    """``DATABASE_APP_URL``: the app role's connection; derived from ``database_url`` when unset."""
    redis_url: str | None = None
    """``REDIS_URL``: an external Redis or Valkey."""
    host: str = "127.0.0.1"
    """``ORBIT_HOST``: address the web server binds."""
    port: int = 8000
    """``ORBIT_PORT``: port the web server binds."""
    forwarded_allow_ips: str = "127.0.0.1"
    """``ORBIT_FORWARDED_ALLOW_IPS``: proxies whose ``X-Forwarded-For``/``-Proto`` are believed
    (comma-separated addresses or networks, or ``*``). Behind an ingress, name the ingress
    controller's pod network: otherwise every visitor has the ingress's address and shares
    one per-address limit (login throttle, public pages)."""
    log_level: str = "INFO"
    """``ORBIT_LOG_LEVEL``: one of DEBUG, INFO, WARNING, ERROR, CRITICAL."""
    cookie_secure: bool = False
    """``ORBIT_COOKIE_SECURE``: mark session cookies ``Secure`` (on behind HTTPS)."""
    smtp_url: str | None = None
    """``ORBIT_SMTP_URL``: where email goes (``smtp://user:pass@host:587`` or ``smtps://``);
    unset, emails wait in the outbox."""
    mail_from: str = "Orbit <no-reply@localhost>"
    """``ORBIT_MAIL_FROM``: the sender of Orbit's emails."""
    public_url: str = ""
    """``ORBIT_PUBLIC_URL``: how people reach Orbit, for links in emails
    (default ``http://ORBIT_HOST:ORBIT_PORT``)."""
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    """``ORBIT_STRIPE_WEBHOOK_SECRET``: the signing secret of Stripe's webhook endpoint."""
    stripe_secret_key: str | None = field(default=None, repr=False)
    """``ORBIT_STRIPE_SECRET_KEY``: Stripe's secret API key; unset, paid plans are unavailable
    and the free tier works fully."""
    stripe_api_base: str | None = None
    """``ORBIT_STRIPE_API_BASE``: another Stripe API address (``http://localhost:8420`` for
    localstripe in development and tests); unset, Stripe itself."""
    webhook_allow_private_networks: bool = False
    """``ORBIT_WEBHOOK_ALLOW_PRIVATE``: let webhooks reach private, loopback and link-local
    addresses (receivers on a self-hoster's LAN; tests). Off: only public addresses."""
    demo_seed: bool = True
    """``ORBIT_DEMO_SEED``: ``orbit run`` seeds a demo workspace once."""
    log_format: str = "text"
    """``ORBIT_LOG_FORMAT``: ``json`` (one object per line, for production) or ``text``."""
    shutdown_grace_seconds: int = 20
    """``ORBIT_SHUTDOWN_GRACE_SECONDS``: after SIGTERM, how long in-flight requests may finish."""
    api_rate_per_minute: int | None = None
    """``ORBIT_API_RATE_PER_MINUTE``: API requests a minute per workspace for every plan
    (unset: each plan's own rate from billing/plans.toml; 0: no limit). A workspace's
    own ``tenants.api_requests_per_minute``, set by an operator, comes first."""
    public_rate_per_minute: int = 300
    """``ORBIT_PUBLIC_RATE_PER_MINUTE``: requests a minute one client address may make to
    plugins' public pages (``/p/…``: tracking, unsubscribe, portals); 0: no limit. Mail
    providers' image proxies fetch for many recipients from few addresses: keep it high."""
    worker_metrics_port: int = 9091
    """``ORBIT_WORKER_METRICS_PORT``: where ``orbit worker`` serves ``/healthz`` and ``/metrics``
    (on ``host``); 0 turns that server off."""

    @property
    def embedded_postgres(self) -> bool:
        """Whether Orbit starts its own PostgreSQL."""
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        """Whether Orbit starts its own Valkey."""
        return self.redis_url is None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("ORBIT_HOME") or ".orbit").resolve()
    port_text = env.get("ORBIT_PORT", "8000")
    try:
        port = int(port_text)
    except ValueError:
        raise SettingsError(f"ORBIT_PORT must be a number, got {port_text!r}") from None
    if not 0 < port <= _MAX_PORT:
        raise SettingsError(f"ORBIT_PORT must be between 1 and 65535, got {port}")
    log_level = env.get("ORBIT_LOG_LEVEL", "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise SettingsError(
            f"ORBIT_LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}, got {log_level!r}"
        )
    log_format = env.get("ORBIT_LOG_FORMAT", "text").lower()
    if log_format not in _LOG_FORMATS:
        raise SettingsError(f"ORBIT_LOG_FORMAT must be json or text, got {log_format!r}")
    grace_text = env.get("ORBIT_SHUTDOWN_GRACE_SECONDS", "20")
    try:
        grace = int(grace_text)
    except ValueError:
        grace = -1
    if grace < 0:
        raise SettingsError(
            f"ORBIT_SHUTDOWN_GRACE_SECONDS must be whole seconds >= 0, got {grace_text!r}"
        )
    worker_port_text = env.get("ORBIT_WORKER_METRICS_PORT", "9091")
    try:
        worker_port = int(worker_port_text)
    except ValueError:
        worker_port = -1
    if not 0 <= worker_port <= _MAX_PORT:
        raise SettingsError(
            f"ORBIT_WORKER_METRICS_PORT must be between 0 (off) and 65535, got {worker_port_text!r}"
        )
    return Settings(
        home=home,
        secret_key=env.get("ORBIT_SECRET_KEY") or generated_secret(home, "secret_key"),
        database_url=env.get("DATABASE_URL") or None,
        database_app_url=env.get("DATABASE_APP_URL") or None,
        redis_url=env.get("REDIS_URL") or None,
        host=env.get("ORBIT_HOST", "127.0.0.1"),
        port=port,
        forwarded_allow_ips=_forwarded_allow_ips(env),
        log_level=log_level,
        cookie_secure=_flag(env, "ORBIT_COOKIE_SECURE", default=False),
        demo_seed=_flag(env, "ORBIT_DEMO_SEED", default=True),
        webhook_allow_private_networks=_flag(env, "ORBIT_WEBHOOK_ALLOW_PRIVATE", default=False),
        smtp_url=_smtp_url(env.get("ORBIT_SMTP_URL") or None),
        stripe_webhook_secret=env.get("ORBIT_STRIPE_WEBHOOK_SECRET") or None,
        stripe_secret_key=env.get("ORBIT_STRIPE_SECRET_KEY") or None,
        stripe_api_base=(env.get("ORBIT_STRIPE_API_BASE") or "").rstrip("/") or None,
        mail_from=env.get("ORBIT_MAIL_FROM") or "Orbit <no-reply@localhost>",
        public_url=(
            env.get("ORBIT_PUBLIC_URL") or f"http://{env.get('ORBIT_HOST', '127.0.0.1')}:{port}"
        ).rstrip("/"),
        log_format=log_format,
        shutdown_grace_seconds=grace,
        worker_metrics_port=worker_port,
        api_rate_per_minute=_api_rate(env),
        public_rate_per_minute=_public_rate(env),
    )


def _forwarded_allow_ips(env: Mapping[str, str]) -> str:
    raw = env.get("ORBIT_FORWARDED_ALLOW_IPS") or "127.0.0.1"
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                "ORBIT_FORWARDED_ALLOW_IPS must list addresses or networks (10.0.0.0/8) "
                f"separated by commas, or *; {entry!r} is neither"
            ) from None
    return ",".join(entries)


def _api_rate(env: Mapping[str, str]) -> int | None:
    raw = env.get("ORBIT_API_RATE_PER_MINUTE") or None
    try:
        rate = None if raw is None else int(raw)
    except ValueError:
        rate = -1
    if rate is not None and rate < 0:
        raise SettingsError(
            f"ORBIT_API_RATE_PER_MINUTE must be a whole number >= 0 (0: off), got {raw!r}"
        )
    return rate


def _public_rate(env: Mapping[str, str]) -> int:
    raw = env.get("ORBIT_PUBLIC_RATE_PER_MINUTE") or "300"
    try:
        rate = int(raw)
    except ValueError:
        rate = -1
    if rate < 0:
        raise SettingsError(
            f"ORBIT_PUBLIC_RATE_PER_MINUTE must be a whole number >= 0 (0: off), got {raw!r}"
        )
    return rate


def _smtp_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("smtp://", "smtps://")):
        raise SettingsError(f"ORBIT_SMTP_URL must start with smtp:// or smtps://, got {value!r}")
    return value


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def generated_secret(home: Path, name: str) -> str:
    """Return the secret stored as ``home/name``, creating it on first use."""
    path = home / name
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Write-then-rename so two processes starting together never read half a key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        tmp.unlink()
        return path.read_text().strip()
    tmp.unlink()
    logging.getLogger(__name__).info("generated %s in %s", name, home)
    return value
