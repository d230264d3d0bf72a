"""The operations settings: log format and the shutdown grace period."""

from __future__ import annotations

from pathlib import Path

import pytest

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
