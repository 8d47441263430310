"""[database]: a SQLite path or a PostgreSQL url, where each comes from, and its secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.cli import secret_values
from bot.config import ConfigError, load_settings, redacted_dump

URL = "postgresql://ltx:pw-s3cret@db.internal:5432/ltx"


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def error_of(path: Path | None, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ)
    return str(info.value)


@pytest.mark.parametrize("name", ["DATABASE_URL", "LTX_BOT__DATABASE__URL"])
def test_url_from_the_environment(name: str) -> None:
    settings, _ = load_settings(None, environ={name: URL})
    assert settings.database.url is not None and settings.database.url.get_secret_value() == URL


def test_path_and_url_in_the_file_is_an_error_naming_both(tmp_path: Path) -> None:
    path = config(tmp_path, f'[database]\npath = "a.sqlite3"\nurl = "{URL}"\n')
    message = error_of(path, {})
    assert f"database.path ({path} line 2) and database.url ({path} line 3) are both set" in message
    assert "pw-s3cret" not in message


def test_path_from_the_environment_with_a_url_is_an_error(tmp_path: Path) -> None:
    message = error_of(None, {"LTX_BOT__DATABASE__PATH": "/x.sqlite3", "DATABASE_URL": URL})
    assert ("database.path (environment variable LTX_BOT__DATABASE__PATH) and database.url "
            "(environment variable DATABASE_URL) are both set") in message
    path = config(tmp_path, '[database]\npath = "a.sqlite3"\n')
    assert "are both set" in error_of(path, {"DATABASE_URL": URL})


def test_the_images_ltx_bot_db_default_gives_way_to_a_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = config(tmp_path, f'[database]\nurl = "{URL}"\npool_size = 9\n')
    with caplog.at_level(logging.WARNING):
        settings, _ = load_settings(path, environ={"LTX_BOT_DB": "/data/ltx-bot.sqlite3"})
    assert settings.database.url is not None and settings.database.pool_size == 9
    assert "LTX_BOT_DB=/data/ltx-bot.sqlite3 is ignored" in caplog.text
    # Without a url, LTX_BOT_DB still names the file.
    settings, _ = load_settings(None, environ={"LTX_BOT_DB": "/data/x.sqlite3"})
    assert settings.database.path == "/data/x.sqlite3" and settings.database.url is None


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    message = error_of(None, {"DATABASE_URL": "mysql://u:pw-s3cret@h/db"})
    assert "database.url: must start with postgresql:// (environment variable DATABASE_URL)" in message
    assert "pw-s3cret" not in message
    assert "pool_size" in error_of(None, {"LTX_BOT__DATABASE__POOL_SIZE": "0"})


def test_the_url_is_a_secret() -> None:
    settings, _ = load_settings(None, environ={"DATABASE_URL": URL})
    assert "pw-s3cret" not in str(redacted_dump(settings))
    assert "pw-s3cret" not in repr(settings)
    assert URL in secret_values(settings)
