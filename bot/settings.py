"""Settings, read once from the environment and validated; a bad one is one clear line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB = Path("data") / "mesobot.sqlite3"
_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)
    api_base_url: str | None = None
    db_path: Path = DEFAULT_DB
    staff_chat_id: int | None = None
    staff_ids: frozenset[int] = frozenset()
    retention_days: int = 365
    booking_timeout_minutes: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip() or None
        if token is not None and not _TOKEN.match(token):
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is malformed: expected the token BotFather gave you, "
                "like 123456789:AAH..."
            )
        base_url = env.get("TELEGRAM_API_BASE_URL", "").strip() or None
        if base_url is not None and not re.match(r"^https?://[^\s/]+", base_url):
            raise SettingsError(
                "TELEGRAM_API_BASE_URL must be an http(s) URL, like http://127.0.0.1:8081/bot"
            )
        return cls(
            token=token,
            api_base_url=base_url,
            db_path=Path(env.get("MESOBOT_DB", "").strip() or DEFAULT_DB),
            staff_chat_id=_optional_int(env, "MESOBOT_STAFF_CHAT_ID"),
            staff_ids=_id_set(env, "MESOBOT_STAFF_IDS"),
            retention_days=_positive_int(env, "MESOBOT_RETENTION_DAYS", 365),
            booking_timeout_minutes=_positive_int(env, "MESOBOT_BOOKING_TIMEOUT_MINUTES", 60),
        )

    def require_token(self) -> str:
        if self.token is None:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it, "
                "or run `python -m bot chat` to try the bot in this terminal"
            )
        return self.token


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (a Telegram chat id), got {raw!r}") from None


def _id_set(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "").strip()
    try:
        return frozenset(int(part) for part in re.split(r"[,\s]+", raw) if part)
    except ValueError:
        raise SettingsError(f"{name} must be Telegram user ids separated by commas, got {raw!r}") from None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) == 0:
        raise SettingsError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)
