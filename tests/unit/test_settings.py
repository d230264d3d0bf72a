from __future__ import annotations

from pathlib import Path

import pytest

from orbit.platform.settings import SettingsError, load_settings


def test_defaults_use_embedded_servers_on_localhost_8000(tmp_path: Path) -> None:
    settings = load_settings({"ORBIT_HOME": str(tmp_path)})
    assert settings.embedded_postgres
    assert settings.embedded_redis
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.log_level == "INFO"


def test_secret_key_is_generated_once_and_kept_in_orbit_home(tmp_path: Path) -> None:
    first = load_settings({"ORBIT_HOME": str(tmp_path)})
    second = load_settings({"ORBIT_HOME": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_explicit_secret_key_and_urls_win(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ORBIT_HOME": str(tmp_path),
            "ORBIT_SECRET_KEY": "k" * 40,
            "DATABASE_URL": "postgresql://db/orbit",
            "REDIS_URL": "redis://cache:6379/0",
        }
    )
    assert settings.secret_key == "k" * 40
    assert not settings.embedded_postgres
    assert not settings.embedded_redis
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ORBIT_PORT", "eighty", "ORBIT_PORT must be a number"),
        ("ORBIT_PORT", "70000", "ORBIT_PORT must be between 1 and 65535"),
        ("ORBIT_LOG_LEVEL", "LOUD", "ORBIT_LOG_LEVEL must be one of"),
        ("ORBIT_COOKIE_SECURE", "maybe", "ORBIT_COOKIE_SECURE must be true or false"),
        ("ORBIT_SMTP_URL", "mail.example:25", "ORBIT_SMTP_URL must start with smtp://"),
    ],
)
def test_bad_values_are_refused_by_name(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"ORBIT_HOME": str(tmp_path), name: value})


def test_api_rate_is_the_plans_unless_set_and_zero_turns_it_off(tmp_path: Path) -> None:
    assert load_settings({"ORBIT_HOME": str(tmp_path)}).api_rate_per_minute is None
    env = {"ORBIT_HOME": str(tmp_path), "ORBIT_API_RATE_PER_MINUTE": "0"}
    assert load_settings(env).api_rate_per_minute == 0
    env["ORBIT_API_RATE_PER_MINUTE"] = "many"
    with pytest.raises(SettingsError, match="ORBIT_API_RATE_PER_MINUTE must be a whole number"):
        load_settings(env)


def test_public_rate_defaults_to_300_per_address_and_zero_turns_it_off(tmp_path: Path) -> None:
    assert load_settings({"ORBIT_HOME": str(tmp_path)}).public_rate_per_minute == 300
    env = {"ORBIT_HOME": str(tmp_path), "ORBIT_PUBLIC_RATE_PER_MINUTE": "0"}
    assert load_settings(env).public_rate_per_minute == 0
    env["ORBIT_PUBLIC_RATE_PER_MINUTE"] = "-5"
    with pytest.raises(SettingsError, match="ORBIT_PUBLIC_RATE_PER_MINUTE must be a whole number"):
        load_settings(env)
