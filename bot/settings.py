"""Bot settings read from the environment and an optional `.env` file.

Real environment variables win over `.env` entries. Every value is checked at
start, so a typo stops the bot with one message naming the variable instead
of failing later inside a command. `.env.example` documents each variable.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar

import dotenv
import dotenv.parser

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MANIFESTS = ("latest", "best")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

# Maximum durations, in seconds. Waits in the threading module overflow above
# threading.TIMEOUT_MAX (about 9.2e9 s on Linux), and a duration of more than a
# day (a week for BOT_STALE_SECONDS) is most likely a typo.
ONE_DAY = 86400.0
ONE_WEEK = 7 * ONE_DAY


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable and the value."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot and the console read from the environment."""

    discord_token: str | None = field(default=None, repr=False)  # never logged or printed
    run_dir: Path | None = None  # training run directory to serve and report on
    export_path: Path | None = None  # one export directory to serve instead of a run's manifest
    manifest: str = "latest"  # which manifest of the run directory to serve: "latest" or "best"
    guild_id: int | None = None  # sync commands to this guild only (instant), else globally
    admin_role_ids: frozenset[int] = frozenset()  # roles allowed to use /train status
    admin_user_ids: frozenset[int] = frozenset()  # users allowed to use /train status
    queue_size: int = 20  # generation requests that may wait for the generator
    max_per_user: int = 1  # generation requests one user may have waiting or running
    cooldown_seconds: float = 5.0  # seconds between two generation requests of one user
    reload_interval: float = 30.0  # seconds between two polls of the run directory's manifest
    gpu_memory_mb: int | None = None  # cap on the bot's GPU memory, MiB; None lets it grow
    stale_seconds: float = 900.0  # a running trainer silent for longer than this looks dead
    output_dir: Path = Path("console-output")  # where the console writes images
    log_level: str = "INFO"
    shutdown_seconds: float = 30.0  # wait for requests in flight at SIGINT/SIGTERM
    buttons_requester_only: bool = False  # only the requester may press a result's buttons


def _read_env_file(path: Path) -> str:
    """Read `path` and raise SettingsError if it is not UTF-8 text or has a line that python-dotenv cannot parse.

    python-dotenv itself only warns and skips such lines, so a mistyped setting would be silently ignored.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SettingsError(f"{path} is not UTF-8 text (byte {error.start} cannot be decoded). Save it as UTF-8.") from None
    except OSError as error:
        raise SettingsError(f"The settings file {str(path)!r} cannot be read: {error.strerror or error}.") from None
    if "\x00" in text:
        raise SettingsError(f"{path} contains a NUL byte, so it is not a text file. Save it as UTF-8 text.")
    for binding in dotenv.parser.parse_stream(io.StringIO(text)):
        if binding.error:
            # The parser starts a binding at the blank lines before it.
            original = binding.original.string
            number = binding.original.line + original[: len(original) - len(original.lstrip())].count("\n")
            raise SettingsError(f"{path} line {number} is not a NAME=value setting: {original.strip()[:60]!r}. Fix or remove that line.")
    return text


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | os.PathLike | None = None) -> Settings:
    """Build the settings from `environ`, or from `os.environ` after loading a `.env` file.

    With `environ` None, `env_file` (default: `.env` in the current
    directory, if present) is loaded into `os.environ` without overriding
    variables already set. Raises SettingsError on the first invalid value.
    """
    if environ is None:
        path = Path(env_file) if env_file is not None else Path(".env")
        if env_file is not None and path.is_dir():
            raise SettingsError(f"The settings file {str(path)!r} is a directory. Give the path of a file.")
        if env_file is not None and not path.is_file():
            raise SettingsError(f"The settings file {str(path)!r} was not found.")
        if path.is_file():
            # Load the checked text, so the file is read once.
            dotenv.load_dotenv(stream=io.StringIO(_read_env_file(path)), override=False)
        environ = os.environ

    reader = _Reader(environ)
    return Settings(
        discord_token=reader.text("DISCORD_TOKEN"),
        run_dir=reader.path("GAN_RUN_DIR"),
        export_path=reader.path("GAN_EXPORT"),
        manifest=reader.choice("GAN_MANIFEST", MANIFESTS, "latest"),
        guild_id=reader.snowflake("DISCORD_GUILD_ID"),
        admin_role_ids=reader.snowflakes("BOT_ADMIN_ROLE_IDS"),
        admin_user_ids=reader.snowflakes("BOT_ADMIN_USER_IDS"),
        queue_size=reader.positive_int("BOT_QUEUE_SIZE", Settings.queue_size),
        max_per_user=reader.positive_int("BOT_MAX_PER_USER", Settings.max_per_user),
        cooldown_seconds=reader.seconds("BOT_COOLDOWN_SECONDS", Settings.cooldown_seconds, allow_zero=True, maximum=ONE_DAY),
        reload_interval=reader.seconds("GAN_RELOAD_INTERVAL", Settings.reload_interval, allow_zero=False, maximum=ONE_DAY),
        gpu_memory_mb=reader.positive_int("GAN_GPU_MEMORY_MB", None),
        stale_seconds=reader.seconds("BOT_STALE_SECONDS", Settings.stale_seconds, allow_zero=False, maximum=ONE_WEEK),
        output_dir=reader.path("BOT_OUTPUT_DIR") or Settings.output_dir,
        log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
        shutdown_seconds=reader.seconds("BOT_SHUTDOWN_SECONDS", Settings.shutdown_seconds, allow_zero=True, maximum=ONE_DAY),
        buttons_requester_only=reader.flag("BOT_BUTTONS_REQUESTER_ONLY", False),
    )


class _Reader:
    """Typed access to environment variables; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {expected}, got {raw!r}.") from None

    def text(self, name: str) -> str | None:
        return self._raw(name)

    def path(self, name: str) -> Path | None:
        raw = self._raw(name)
        return Path(raw).expanduser() if raw is not None else None

    def choice(self, name: str, choices: tuple[str, ...], default: str, upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in choices:
                raise ValueError(raw)
            return value

        return self._parse(name, default, parse, "one of " + ", ".join(choices))

    def positive_int(self, name: str, default: int | None) -> int | None:
        def parse(raw: str) -> int:
            value = int(raw)
            if value < 1:
                raise ValueError(raw)
            return value

        return self._parse(name, default, parse, "a positive integer")

    def seconds(self, name: str, default: float, allow_zero: bool, maximum: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            # float() accepts "nan" and "inf", which are no use as a duration.
            if not value >= 0 or value == float("inf") or (value == 0 and not allow_zero):
                raise ValueError(raw)
            return value

        expected = "a number of seconds, 0 or more" if allow_zero else "a number of seconds greater than 0"
        value = self._parse(name, default, parse, expected)
        if value > maximum:
            days = maximum / ONE_DAY
            raise SettingsError(
                f"{name} must be at most {maximum:g} seconds ({days:g} day{'' if days == 1 else 's'}), "
                f"got {self._raw(name)!r}."
            )
        return value

    def snowflake(self, name: str) -> int | None:
        return self._parse(name, None, _parse_snowflake, "a Discord id (a positive integer)")

    def snowflakes(self, name: str) -> frozenset[int]:
        def parse(raw: str) -> frozenset[int]:
            parts = [part.strip() for part in raw.split(",") if part.strip()]
            return frozenset(_parse_snowflake(part) for part in parts)

        return self._parse(name, frozenset(), parse, "a comma-separated list of Discord ids (positive integers)")

    def flag(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            if raw.lower() in TRUE_WORDS:
                return True
            if raw.lower() in FALSE_WORDS:
                return False
            raise ValueError(raw)

        return self._parse(name, default, parse, "true or false")


def _parse_snowflake(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(raw)
    return int(raw)

