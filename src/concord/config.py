"""Settings read from CONCORD_* environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from concord.errors import ConfigurationError

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """A whole-number setting; a value that is not one names the variable, not a parse."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number (given {text!r})") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum} (given {value})")
    return value


def env_bytes(name: str, default: int, minimum: int = 1) -> int:
    """A size setting: bytes, or with a unit as the README writes them (50MB, 4GiB)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    match = _SIZE.match(text)
    if match is None:
        raise ConfigurationError(
            f"{name} must be a size in bytes, e.g. 52428800, 50MB or 4GiB (given {text!r})"
        )
    value = int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum} bytes (given {text!r})")
    return value


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _bool(value: str | None, default: bool, name: str) -> bool:
    if value is None or value == "":
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    # a typo must not turn a safeguard off (CONCORD_SECURE_COOKIES=ture)
    raise ConfigurationError(
        f"{name} must be true or false (or yes/no, on/off, 1/0; given {value!r})"
    )


def _language(value: str | None) -> str:
    from concord.i18n import LANGUAGES

    language = (value or "en").strip().lower()
    if language not in LANGUAGES:
        raise ConfigurationError(
            f"CONCORD_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)} (given {value!r})"
        )
    return language


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    jobs_url: str
    smtp_url: str | None
    secure_cookies: bool | None
    session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    max_upload_bytes: int = 50 * 1024 * 1024
    default_language: str = "en"
    argon2_fast: bool = False
    languages: tuple[str, ...] = field(default=("en", "ru"))
    # Feed profiles of the deployment's own (YAML, one per file): each is an intake format.
    profiles_dir: Path | None = None

    @property
    def feed_profiles(self) -> Path:
        return self.profiles_dir or self.home / "profiles"

    @property
    def var(self) -> Path:
        return self.home / "var"

    @property
    def mail_dir(self) -> Path:
        return self.var / "mail"


def load_settings() -> Settings:
    home = Path(os.environ.get("CONCORD_HOME") or Path.cwd()).resolve()
    var = home / "var"
    database_url = os.environ.get("CONCORD_DATABASE_URL") or f"sqlite:///{var / 'concord.db'}"
    jobs_url = os.environ.get("CONCORD_JOBS_URL") or _default_jobs_url(database_url, var)
    secure = os.environ.get("CONCORD_SECURE_COOKIES")
    return Settings(
        home=home,
        database_url=database_url,
        jobs_url=jobs_url,
        smtp_url=os.environ.get("CONCORD_SMTP_URL") or None,
        secure_cookies=(
            None if secure in (None, "") else _bool(secure, True, "CONCORD_SECURE_COOKIES")
        ),
        session_hours=env_int("CONCORD_SESSION_HOURS", 12, minimum=1),
        login_max_failures=env_int("CONCORD_LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_minutes=env_int("CONCORD_LOGIN_LOCKOUT_MINUTES", 15, minimum=1),
        max_upload_bytes=env_bytes("CONCORD_MAX_UPLOAD_BYTES", 50 * 1024 * 1024),
        default_language=_language(os.environ.get("CONCORD_DEFAULT_LANGUAGE")),
        argon2_fast=_bool(os.environ.get("CONCORD_ARGON2_FAST"), False, "CONCORD_ARGON2_FAST"),
        profiles_dir=Path(os.environ["CONCORD_PROFILES_DIR"])
        if os.environ.get("CONCORD_PROFILES_DIR")
        else None,
    )


def _default_jobs_url(database_url: str, var: Path) -> str:
    # The job queue lives beside the data: a separate SQLite file in embedded mode (so queue
    # polling never contends with the main database), the same PostgreSQL in production.
    if database_url.startswith("postgresql"):
        return database_url
    return f"sqlite:///{var / 'jobs.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()
