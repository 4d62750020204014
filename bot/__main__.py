"""Start the bot: on Discord, or as the offline console.

    python -m bot                      # Discord if DISCORD_TOKEN is set, else the console
    python -m bot --discord            # Discord, or exit 1 without a token
    python -m bot --console            # the console on stdin/stdout, even with a token
    gan-bot --console --run runs/NAME  # the console on a training run

Exit status: 0 after a clean stop (SIGINT, SIGTERM, /quit, end of input),
1 when nothing can be served or Discord rejects the token, 2 for invalid
settings or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import re
import sys
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gan-bot", description="Discord bot (or offline console) that draws images with a GAN.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--discord", action="store_true", help="connect to Discord (needs DISCORD_TOKEN)")
    mode.add_argument("--console", action="store_true", help="run the offline console on standard input")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", type=Path, metavar="DIR", help="run directory to serve and report on (overrides GAN_RUN_DIR)")
    source.add_argument("--export", type=Path, metavar="DIR", help="export directory to serve (overrides GAN_EXPORT)")
    parser.add_argument("--env-file", type=Path, metavar="PATH", help="settings file to load (default: .env in the current directory)")
    return parser.parse_args(argv)


# At DEBUG level discord.py logs request URLs and raw gateway events, and both
# contain interaction tokens. Each token lets its holder reply as the bot for 15 minutes.
# Paths may be upper-case or percent-encoded ("%2F" for "/").
URL_TOKEN = re.compile(r"((?:/|%2F)(?:interactions|webhooks)(?:/|%2F)\d+(?:/|%2F))(?:%(?!2F)[0-9A-F]{2}|[^/\s?&#'\"%])+", re.IGNORECASE)
# "token", "access_token", "webhook_token"... as a quoted field or as key=value.
FIELD_TOKEN = re.compile(r"""(['"]\w*token['"]\s*:\s*['"])[^'"]+""", re.IGNORECASE)
ASSIGNED_TOKEN = re.compile(r"""(\b\w*token\s*=\s*['"]?)(?!None\b)[^\s&'",;)]+""", re.IGNORECASE)
# Rate-limit keys join a webhook (interaction) id and its token with "+". discord.py
# 2.7.1 does not log such a key, but other versions may.
JOINED_TOKEN = re.compile(r"(\b\d{15,21}\+)[\w.\-]{20,}")


class RedactSecrets(logging.Filter):
    """Replace the bot token and interaction tokens (in URLs, "token" fields and rate-limit keys) with "<redacted>".

    Covers the message, traceback and stack of each record that reaches a
    handler carrying this filter, so records logged before configure_logging
    and handlers on other loggers are not covered.
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def redact(self, text: str) -> str:
        text = URL_TOKEN.sub(r"\1<redacted>", text)
        text = FIELD_TOKEN.sub(r"\1<redacted>", text)
        text = ASSIGNED_TOKEN.sub(r"\1<redacted>", text)
        text = JOINED_TOKEN.sub(r"\1<redacted>", text)
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed logging call: Handler.emit reports it as usual
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None

        # Formatters add the traceback and stack after filtering; fill in their redacted text first.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure_logging(level: str, secrets: tuple[str, ...] = ()) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(secrets))


def build_service(settings: Settings):
    """Create (not start) the generation service; an export path wins over the run directory's manifest."""
    from gan.service import GenerationService

    return GenerationService(
        run_dir=settings.run_dir if settings.export_path is None else None,
        export_path=settings.export_path,
        manifest=settings.manifest,
        poll_interval=settings.reload_interval,
        gpu_memory_mb=settings.gpu_memory_mb,
    )


def model_source(args: argparse.Namespace, settings: Settings) -> str:
    """Name the option or setting that chose the model, so a user knows what to fix."""
    if settings.export_path is not None:
        return "(The export comes from --export.)" if args.export is not None else "(The export comes from the GAN_EXPORT setting.)"
    if settings.run_dir is not None:
        return "(The run directory comes from --run.)" if args.run is not None else "(The run directory comes from the GAN_RUN_DIR setting.)"
    return "(This is the shipped pretrained model; reinstall the package to restore it.)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    # Settings.
    try:
        settings = load_settings(env_file=args.env_file)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if args.run is not None:
        settings = dataclasses.replace(settings, run_dir=args.run, export_path=None)
    if args.export is not None:
        settings = dataclasses.replace(settings, export_path=args.export)
    configure_logging(settings.log_level, secrets=(settings.discord_token or "",))
    use_discord = args.discord or (not args.console and settings.discord_token is not None)
    if use_discord and settings.discord_token is None:
        print(
            "DISCORD_TOKEN is not set. Put the bot token in the environment or in .env, "
            "or run the offline console with --console.",
            file=sys.stderr,
        )
        return 1
    log.info("Starting %s with %s", "the Discord bot" if use_discord else "the offline console", settings)

    # Load the model before connecting, so the first command finds it. Loading takes
    # seconds, and Ctrl-C or SIGTERM during it stops the bot with exit status 0.
    from bot.console import sigterm_interrupts
    from gan.service import ModelUnavailable

    service = build_service(settings)
    try:
        with sigterm_interrupts():
            service.start()
    except ModelUnavailable as error:
        print(f"{error} {model_source(args, settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("Interrupted while loading the model: stopping")
        service.close()
        return 0
    try:
        if not use_discord:
            from bot.console import run_console

            return run_console(settings, service)
        return _run_discord(settings, service)
    finally:
        service.close()


def _run_discord(settings: Settings, service) -> int:
    import discord

    from bot.client import run_bot

    try:
        asyncio.run(run_bot(settings, service))
    except discord.LoginFailure:
        print("Discord rejected the token in DISCORD_TOKEN. Copy a new one from the Developer Portal (Bot > Reset Token).", file=sys.stderr)
        return 1
    log.info("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
