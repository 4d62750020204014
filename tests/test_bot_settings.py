"""Settings from the environment and .env, and how `python -m bot` reports bad ones."""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path

import dotenv
import pytest

from bot.__main__ import RedactSecrets, main
from bot.settings import Settings, SettingsError, load_settings

TOKEN = "MTIz.settings-test.token-value"
ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


class RecordingEnviron(dict):
    """An environment that remembers which variables were looked up."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def get(self, key, default=None):
        self.names.add(key)
        return super().get(key, default)


@pytest.fixture
def clean_environ(monkeypatch, tmp_path):
    """A private os.environ without bot settings, and a working directory without .env."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "GAN_", "DISCORD_"))}
    environ.pop("LOG_LEVEL", None)
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.chdir(tmp_path)
    return environ


def test_settings_defaults():
    assert load_settings({}) == Settings()


def test_settings_parse_every_variable():
    settings = load_settings(
        {
            "DISCORD_TOKEN": TOKEN,
            "GAN_RUN_DIR": "runs/small",
            "GAN_EXPORT": "exports/generator-000070",
            "GAN_MANIFEST": "best",
            "DISCORD_GUILD_ID": "123456789012345678",
            "BOT_ADMIN_ROLE_IDS": "11, 12,",
            "BOT_ADMIN_USER_IDS": "21",
            "BOT_QUEUE_SIZE": "8",
            "BOT_MAX_PER_USER": "2",
            "BOT_COOLDOWN_SECONDS": "0",
            "GAN_RELOAD_INTERVAL": "2.5",
            "GAN_GPU_MEMORY_MB": "1024",
            "BOT_STALE_SECONDS": "60",
            "BOT_OUTPUT_DIR": "out/images",
            "LOG_LEVEL": "debug",
            "BOT_SHUTDOWN_SECONDS": "10",
            "BOT_BUTTONS_REQUESTER_ONLY": "yes",
        }
    )
    assert settings == Settings(
        discord_token=TOKEN,
        run_dir=Path("runs/small"),
        export_path=Path("exports/generator-000070"),
        manifest="best",
        guild_id=123456789012345678,
        admin_role_ids=frozenset({11, 12}),
        admin_user_ids=frozenset({21}),
        queue_size=8,
        max_per_user=2,
        cooldown_seconds=0.0,
        reload_interval=2.5,
        gpu_memory_mb=1024,
        stale_seconds=60.0,
        output_dir=Path("out/images"),
        log_level="DEBUG",
        shutdown_seconds=10.0,
        buttons_requester_only=True,
    )


def test_settings_empty_value_is_unset():
    assert load_settings({"GAN_RUN_DIR": "", "BOT_QUEUE_SIZE": "  "}) == Settings()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("BOT_QUEUE_SIZE", "ten", "BOT_QUEUE_SIZE must be a positive integer, got 'ten'."),
        ("BOT_QUEUE_SIZE", "0", "BOT_QUEUE_SIZE must be a positive integer, got '0'."),
        ("BOT_MAX_PER_USER", "1.5", "BOT_MAX_PER_USER must be a positive integer, got '1.5'."),
        ("GAN_GPU_MEMORY_MB", "-1", "GAN_GPU_MEMORY_MB must be a positive integer, got '-1'."),
        ("BOT_COOLDOWN_SECONDS", "-2", "BOT_COOLDOWN_SECONDS must be a number of seconds, 0 or more, got '-2'."),
        ("BOT_COOLDOWN_SECONDS", "nan", "BOT_COOLDOWN_SECONDS must be a number of seconds, 0 or more, got 'nan'."),
        ("GAN_RELOAD_INTERVAL", "0", "GAN_RELOAD_INTERVAL must be a number of seconds greater than 0, got '0'."),
        ("BOT_STALE_SECONDS", "soon", "BOT_STALE_SECONDS must be a number of seconds greater than 0, got 'soon'."),
        ("GAN_MANIFEST", "newest", "GAN_MANIFEST must be one of latest, best, got 'newest'."),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'."),
        ("DISCORD_GUILD_ID", "my-server", "DISCORD_GUILD_ID must be a Discord id (a positive integer), got 'my-server'."),
        (
            "BOT_ADMIN_ROLE_IDS",
            "11,admins",
            "BOT_ADMIN_ROLE_IDS must be a comma-separated list of Discord ids (positive integers), got '11,admins'.",
        ),
        ("BOT_BUTTONS_REQUESTER_ONLY", "maybe", "BOT_BUTTONS_REQUESTER_ONLY must be true or false, got 'maybe'."),
    ],
)
def test_settings_invalid_value(name, value, message):
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("GAN_RELOAD_INTERVAL", "1e300", "GAN_RELOAD_INTERVAL must be at most 86400 seconds (1 day), got '1e300'."),
        ("BOT_SHUTDOWN_SECONDS", "86401", "BOT_SHUTDOWN_SECONDS must be at most 86400 seconds (1 day), got '86401'."),
        ("BOT_COOLDOWN_SECONDS", "1e10", "BOT_COOLDOWN_SECONDS must be at most 86400 seconds (1 day), got '1e10'."),
        ("BOT_STALE_SECONDS", "604801", "BOT_STALE_SECONDS must be at most 604800 seconds (7 days), got '604801'."),
    ],
)
def test_settings_seconds_above_maximum(name, value, message):
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value) == message


def test_settings_seconds_at_maximum():
    settings = load_settings(
        {
            "GAN_RELOAD_INTERVAL": "86400",
            "BOT_SHUTDOWN_SECONDS": "86400",
            "BOT_COOLDOWN_SECONDS": "86400",
            "BOT_STALE_SECONDS": "604800",
        }
    )
    assert settings.reload_interval == 86400.0
    assert settings.shutdown_seconds == 86400.0
    assert settings.cooldown_seconds == 86400.0
    assert settings.stale_seconds == 604800.0


def test_env_example_lists_every_variable():
    environ = RecordingEnviron()
    load_settings(environ)
    assert set(dotenv.dotenv_values(ENV_EXAMPLE)) == environ.names


def test_env_example_values_are_valid():
    assert load_settings(dotenv.dotenv_values(ENV_EXAMPLE)) == Settings()


def test_settings_token_not_in_repr():
    assert TOKEN not in repr(load_settings({"DISCORD_TOKEN": TOKEN}))


def test_env_file_is_read(clean_environ, tmp_path):
    (tmp_path / ".env").write_text("BOT_QUEUE_SIZE=7\nGAN_RUN_DIR=runs/from-env-file\n")
    settings = load_settings()
    assert settings.queue_size == 7
    assert settings.run_dir == Path("runs/from-env-file")


def test_environment_wins_over_env_file(clean_environ, tmp_path):
    (tmp_path / ".env").write_text("BOT_QUEUE_SIZE=7\n")
    clean_environ["BOT_QUEUE_SIZE"] = "3"
    assert load_settings().queue_size == 3


def test_env_file_option_reads_named_file(clean_environ, tmp_path):
    path = tmp_path / "bot.env"
    path.write_text("BOT_COOLDOWN_SECONDS=9\n")
    assert load_settings(env_file=path).cooldown_seconds == 9.0


def test_env_file_option_missing_file(clean_environ, tmp_path):
    with pytest.raises(SettingsError, match="was not found"):
        load_settings(env_file=tmp_path / "absent.env")


# `python -m bot` start-up, in process; each case stops before TensorFlow loads.


def test_env_file_unparsable_line_rejected(clean_environ, tmp_path):
    (tmp_path / ".env").write_text("BOT_QUEUE_SIZE=4\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env line 2 is not a NAME=value setting: 'this is not a setting'"):
        load_settings()
    assert "BOT_QUEUE_SIZE" not in os.environ


def test_main_unparsable_env_file_exits_2(clean_environ, capsys, tmp_path):
    (tmp_path / "junk.env").write_text("# comment\n\nDISCORD_GUILD_ID 123\n")
    assert main(["--console", "--env-file", str(tmp_path / "junk.env")]) == 2
    assert "junk.env line 3 is not a NAME=value setting" in capsys.readouterr().err


def test_main_invalid_setting_exits_2(clean_environ, capsys):
    clean_environ["BOT_QUEUE_SIZE"] = "ten"
    assert main(["--console"]) == 2
    assert capsys.readouterr().err == "BOT_QUEUE_SIZE must be a positive integer, got 'ten'.\n"


def test_main_huge_reload_interval_exits_2(clean_environ, capsys):
    clean_environ["GAN_RELOAD_INTERVAL"] = "1e300"
    assert main(["--console"]) == 2
    assert capsys.readouterr().err == "GAN_RELOAD_INTERVAL must be at most 86400 seconds (1 day), got '1e300'.\n"


def test_main_discord_without_token_exits_1(clean_environ, capsys):
    assert main(["--discord"]) == 1
    assert capsys.readouterr().err.startswith("DISCORD_TOKEN is not set.")


def test_main_no_model_exits_1(clean_environ, capsys, tmp_path):
    clean_environ["GAN_RUN_DIR"] = str(tmp_path / "no-such-run")
    assert main(["--console"]) == 1
    err = capsys.readouterr().err
    assert "no-such-run not found" in err
    assert "(The run directory comes from the GAN_RUN_DIR setting.)" in err


def test_main_missing_run_option_named(clean_environ, capsys, tmp_path):
    assert main(["--console", "--run", str(tmp_path / "no-such-run")]) == 1
    err = capsys.readouterr().err
    assert "no-such-run not found" in err
    assert "(The run directory comes from --run.)" in err


def test_main_export_wins_over_run_dir(clean_environ, capsys, tmp_path):
    (tmp_path / "run" / "exports").mkdir(parents=True)
    clean_environ["GAN_RUN_DIR"] = str(tmp_path / "run")
    clean_environ["GAN_EXPORT"] = str(tmp_path / "no-such-export")
    assert main(["--console"]) == 1
    err = capsys.readouterr().err
    assert f"Export directory {tmp_path / 'no-such-export'} not found." in err
    assert "(The export comes from the GAN_EXPORT setting.)" in err


def test_main_never_logs_token(clean_environ, capsys, caplog, tmp_path):
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\nGAN_RUN_DIR={tmp_path / 'no-such-run'}\n")
    with caplog.at_level(logging.DEBUG):
        main(["--console"])
    captured = capsys.readouterr()
    assert "Starting the offline console" in caplog.text
    assert TOKEN not in caplog.text + captured.out + captured.err


def test_log_lines_hide_interaction_tokens_and_bot_token():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets((TOKEN,)))
    logger = logging.getLogger("discord.http.redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("POST %s with %s has returned 204", "https://discord.test/api/v10/interactions/123/aW50ZXJhY3Rpb24-tok_en.x/callback", "{}")
        logger.warning("PATCH https://discord.test/api/v10/webhooks/456/webhook-token-value/messages/@original")
        logger.warning("token %s leaked", TOKEN)
        logger.debug("Event: %s", {"op": 0, "d": {"id": "7", "token": "aW50ZXJhY3Rpb24-secret", "type": 3}})
        logger.warning('{"token": "json-secret", "id": 8}')
        logger.warning("POST HTTPS://DISCORD.TEST/API/V10/INTERACTIONS/123/UPPER-secret/CALLBACK")
        logger.warning("GET https://discord.test/api%2Fwebhooks%2F456%2Fencoded-secret%2Fmessages")
        logger.debug("%s", {"access_token": "oauth-secret", "Webhook_Token": "webhook-secret"})
        logger.debug("url?access_token=query-secret&x=1")
        logger.debug("POST /api/v10/interactions/123/abc%2Bdef%3D%3D/callback")
        logger.debug("Webhook(token='kwarg-secret', auth_token = \"spaced-secret\", refresh_token=None)")
        logger.debug("Rate limit is being handled by bucket hash abc with %r major parameters", "1048576000000000001+aW50ZXJhY3Rpb24bucketsecret")
        logger.warning("GET /api/v10/gateway/bot returned 200")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "POST https://discord.test/api/v10/interactions/123/<redacted>/callback with {} has returned 204",
        "PATCH https://discord.test/api/v10/webhooks/456/<redacted>/messages/@original",
        "token <redacted> leaked",
        "Event: {'op': 0, 'd': {'id': '7', 'token': '<redacted>', 'type': 3}}",
        '{"token": "<redacted>", "id": 8}',
        "POST HTTPS://DISCORD.TEST/API/V10/INTERACTIONS/123/<redacted>/CALLBACK",
        "GET https://discord.test/api%2Fwebhooks%2F456%2F<redacted>%2Fmessages",
        "{'access_token': '<redacted>', 'Webhook_Token': '<redacted>'}",
        "url?access_token=<redacted>&x=1",
        "POST /api/v10/interactions/123/<redacted>/callback",
        "Webhook(token='<redacted>', auth_token = \"<redacted>\", refresh_token=None)",
        "Rate limit is being handled by bucket hash abc with '1048576000000000001+<redacted>' major parameters",
        "GET /api/v10/gateway/bot returned 200",
    ]


def test_log_redaction_covers_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("bot.redaction-traceback-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("404, url='https://discord.test/api/v10/webhooks/1/secret-webhook-token/messages/@original'")
        except RuntimeError:
            logger.exception("Request failed")
        logger.warning("here", stack_info=True, extra={})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "/webhooks/1/<redacted>/messages/@original" in text
    assert "secret-webhook-token" not in text


def test_log_redaction_keeps_logging_errors_in_logging(capsys):
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("bot.redaction-malformed-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%d items", "not a number")  # logging reports this on stderr; the caller goes on
    finally:
        logger.removeHandler(handler)
    assert "--- Logging error ---" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"BOT_QUEUE_SIZE=caf\xe9\n", "is not UTF-8 text (byte 18 cannot be decoded). Save it as UTF-8."),
        ("A=1\n".encode("utf-16"), "is not UTF-8 text"),
        (b"BOT_QUEUE_SIZE=4\x00\n", "contains a NUL byte"),
    ],
    ids=["latin-1", "utf-16", "nul byte"],
)
def test_env_file_not_text_rejected(clean_environ, tmp_path, content, message):
    (tmp_path / "bad.env").write_bytes(content)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(env_file=tmp_path / "bad.env")


def test_env_file_directory_rejected(clean_environ, tmp_path):
    (tmp_path / "settings").mkdir()
    with pytest.raises(SettingsError, match="is a directory. Give the path of a file."):
        load_settings(env_file=tmp_path / "settings")


def test_env_file_crlf_bom_export_accepted(clean_environ, tmp_path):
    (tmp_path / ".env").write_bytes("\ufeff# settings\r\nexport BOT_QUEUE_SIZE=7\r\nLOG_LEVEL='debug'\r\n".encode("utf-8"))
    settings = load_settings()
    assert settings.queue_size == 7
    assert settings.log_level == "DEBUG"
