"""The operations settings: log format, shutdown grace period, trusted proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orbit.platform.cli.main import server_config
from orbit.platform.settings import SettingsError, load_settings


def test_text_logs_and_twenty_seconds_of_grace_by_default(tmp_path: Path) -> None:
    settings = load_settings({"ORBIT_HOME": str(tmp_path)})
    assert settings.log_format == "text"
    assert settings.shutdown_grace_seconds == 20
    assert settings.worker_metrics_port == 9091


def test_json_logs_and_grace_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ORBIT_HOME": str(tmp_path),
            "ORBIT_LOG_FORMAT": "JSON",
            "ORBIT_SHUTDOWN_GRACE_SECONDS": "45",
            "ORBIT_WORKER_METRICS_PORT": "9300",
        }
    )
    assert settings.log_format == "json"
    assert settings.shutdown_grace_seconds == 45
    assert settings.worker_metrics_port == 9300


def test_worker_metrics_port_zero_turns_the_server_off(tmp_path: Path) -> None:
    settings = load_settings({"ORBIT_HOME": str(tmp_path), "ORBIT_WORKER_METRICS_PORT": "0"})
    assert settings.worker_metrics_port == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ORBIT_LOG_FORMAT", "xml", "ORBIT_LOG_FORMAT must be json or text"),
        ("ORBIT_SHUTDOWN_GRACE_SECONDS", "-1", "ORBIT_SHUTDOWN_GRACE_SECONDS must be whole"),
        ("ORBIT_SHUTDOWN_GRACE_SECONDS", "soon", "ORBIT_SHUTDOWN_GRACE_SECONDS must be whole"),
        ("ORBIT_WORKER_METRICS_PORT", "-1", "ORBIT_WORKER_METRICS_PORT must be between 0"),
        ("ORBIT_WORKER_METRICS_PORT", "70000", "ORBIT_WORKER_METRICS_PORT must be between 0"),
        ("ORBIT_WORKER_METRICS_PORT", "metrics", "ORBIT_WORKER_METRICS_PORT must be between 0"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"ORBIT_HOME": str(tmp_path), name: value})


async def _client_seen(config_app: Any, peer: str, forwarded: str) -> str:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    config_app.app = app
    config_app.load()
    scope = {
        "type": "http",
        "client": (peer, 40000),
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await config_app.loaded_app(scope, None, None)
    return seen[0]


@pytest.mark.parametrize(
    ("trusted", "peer", "expected"),
    [
        (None, "10.1.2.3", "10.1.2.3"),  # default: only a proxy on this host is believed
        (None, "127.0.0.1", "203.0.113.7"),
        ("10.0.0.0/8", "10.1.2.3", "203.0.113.7"),  # the ingress controller's pod network
        ("10.0.0.0/8", "192.168.1.5", "192.168.1.5"),  # anyone else cannot claim an address
    ],
)
async def test_the_web_server_believes_forwarded_addresses_only_from_trusted_proxies(
    tmp_path: Path, trusted: str | None, peer: str, expected: str
) -> None:
    env = {"ORBIT_HOME": str(tmp_path)}
    if trusted:
        env["ORBIT_FORWARDED_ALLOW_IPS"] = trusted
    config = server_config(None, load_settings(env))
    assert await _client_seen(config, peer, "203.0.113.7") == expected


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    settings = load_settings(
        {"ORBIT_HOME": str(tmp_path), "ORBIT_FORWARDED_ALLOW_IPS": " 10.0.0.0/8, fd00::/8 "}
    )
    assert settings.forwarded_allow_ips == "10.0.0.0/8,fd00::/8"
    with pytest.raises(SettingsError, match=r"ORBIT_FORWARDED_ALLOW_IPS .* 'ingress' is neither"):
        load_settings({"ORBIT_HOME": str(tmp_path), "ORBIT_FORWARDED_ALLOW_IPS": "ingress"})
