"""The Discord layer with stand-in interactions: exactly-once responses, errors, buttons, commands, shutdown."""

from __future__ import annotations

import asyncio
import http.server
import logging
import re
import threading

import discord
import pytest
from discord import app_commands

from bot.__main__ import _run_discord
from bot.client import GanBot
from bot.messages import ButtonSpec, Reply
from bot.responder import report_error, send_reply
from bot.views import CUSTOM_ID_PATTERN, GenerationButton, build_view, decode_custom_id, encode_custom_id
from test_bot_fakes import FakeInteraction, StandInService, settings


@pytest.fixture
async def bot():
    client = GanBot(settings(shutdown_seconds=5.0), StandInService())
    yield client
    client.queue.close(1)


def generate_request(bot: GanBot, interaction: FakeInteraction, **options):
    from bot.responder import request_from_interaction

    return request_from_interaction(interaction, "generate", {"class": "random", "count": 4, **options})


def invoke_error(error: Exception) -> app_commands.CommandInvokeError:
    """Wrap `error` as discord.py does when a command callback raises."""
    return app_commands.CommandInvokeError(app_commands.Command(name="generate", description="-", callback=_noop), error)


async def _noop(interaction: discord.Interaction) -> None:
    pass


# Responding exactly once.


async def test_send_reply_uses_response_first():
    interaction = FakeInteraction()
    await send_reply(interaction, Reply("hello", ephemeral=True))
    assert [kind for kind, _ in interaction.sent] == ["send_message"]


async def test_send_reply_uses_followup_after_defer():
    interaction = FakeInteraction()
    await interaction.response.defer(thinking=True)
    await send_reply(interaction, Reply("hello"))
    assert [kind for kind, _ in interaction.sent] == ["defer", "followup"]


async def test_send_reply_blocks_mentions():
    interaction = FakeInteraction()
    await send_reply(interaction, Reply("@everyone"))
    assert interaction.sent[0][1]["allowed_mentions"].everyone is False


async def test_generate_defers_then_follows_up(bot):
    interaction = FakeInteraction()
    await bot.respond(interaction, generate_request(bot, interaction, seed=7))
    assert [kind for kind, _ in interaction.sent] == ["defer", "followup"]
    assert interaction.sent[0][1] == {"thinking": True, "ephemeral": False}


async def test_generate_sends_file_and_buttons(bot):
    interaction = FakeInteraction()
    await bot.respond(interaction, generate_request(bot, interaction, seed=7))
    arguments = interaction.sent[1][1]
    assert arguments["files"][0].filename == "random-4x-seed7.png"
    assert [item.custom_id for item in arguments["view"].children] == [
        "gan:reroll:random:4:7:42",
        "gan:variations:random:4:7:42",
    ]


async def test_generate_uses_interaction_size_limit(bot):
    interaction = FakeInteraction(limit=100)
    await bot.respond(interaction, generate_request(bot, interaction, count=16, seed=7))
    assert "files" not in interaction.sent[1][1]


async def test_invalid_option_answers_once_ephemerally(bot):
    interaction = FakeInteraction()
    await bot.respond(interaction, generate_request(bot, interaction, count=40))
    assert [kind for kind, _ in interaction.sent] == ["send_message"]
    assert interaction.sent[0][1]["ephemeral"] is True


async def test_cooldown_answers_ephemerally():
    client = GanBot(settings(cooldown_seconds=30), StandInService())
    first, second = FakeInteraction(), FakeInteraction()
    await client.respond(first, generate_request(client, first, seed=1))
    await client.respond(second, generate_request(client, second, seed=2))
    client.queue.close(1)
    assert second.sent == [("send_message", second.sent[0][1])]
    assert second.sent[0][1]["content"] == "You can generate again in 30 s."


async def test_admin_role_read_from_member():
    client = GanBot(settings(admin_role_ids=frozenset({555})), StandInService())
    from bot.responder import request_from_interaction

    request = request_from_interaction(FakeInteraction(roles=(1, 555)), "train status", {})
    client.queue.close(1)
    assert client.handlers.is_admin(request) is True


# Errors.


async def test_unexpected_error_apologizes_with_id(caplog):
    interaction = FakeInteraction()
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        await report_error(interaction, RuntimeError("boom"), "generate")
    text = interaction.sent[0][1]["content"]
    error_id = re.search(r"error id ([0-9a-f]{8})", text).group(1)
    assert interaction.sent[0][1]["ephemeral"] is True
    assert error_id in caplog.text


async def test_unexpected_error_log_has_ids_and_traceback(caplog):
    interaction = FakeInteraction(user_id=31337)
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR, logger="bot.errors"):
            await report_error(interaction, error, "generate")
    record = caplog.records[-1]
    assert "interaction 9001" in record.getMessage()
    assert "user 31337" in record.getMessage()
    assert "'generate'" in record.getMessage()
    assert "RuntimeError: boom" in caplog.text


async def test_error_after_defer_uses_followup():
    interaction = FakeInteraction()
    await interaction.response.defer(thinking=True)
    await report_error(interaction, invoke_error(RuntimeError("boom")), "generate")
    assert [kind for kind, _ in interaction.sent] == ["defer", "followup"]


async def test_error_after_answer_sends_nothing():
    interaction = FakeInteraction()
    await send_reply(interaction, Reply("done"))
    await report_error(interaction, RuntimeError("late"), "generate")
    assert len(interaction.messages()) == 1


async def test_tree_error_handler_answers(bot):
    interaction = FakeInteraction()
    await bot.tree.on_error(interaction, invoke_error(RuntimeError("boom")))
    assert "error id" in interaction.sent[0][1]["content"]


async def test_button_error_answers_once():
    client = GanBot(settings(), StandInService(fail_with=RuntimeError("TensorFlow crashed")))
    interaction = FakeInteraction()
    await client.respond_to_button(interaction, ButtonSpec("reroll", 3, 4, 7, 42))
    client.queue.close(1)
    assert [kind for kind, _ in interaction.sent] == ["defer", "followup"]
    assert "error id" in interaction.sent[1][1]["content"]


async def test_button_press_posts_new_grid(bot):
    interaction = FakeInteraction(user_id=5)
    await bot.respond_to_button(interaction, ButtonSpec("variations", 3, 4, 7, 42))
    assert interaction.sent[1][1]["content"].startswith("Variations for user5: 4 × **cat**, seed 7")


# Persistent buttons.


def test_custom_id_round_trip():
    spec = ButtonSpec("variations", None, 16, 2**53 - 1, 123456789012345678)
    match = re.fullmatch(CUSTOM_ID_PATTERN, encode_custom_id(spec))
    assert decode_custom_id(match) == spec


def test_custom_id_fits_discord_limit():
    spec = ButtonSpec("variations", 9999, 9999, 2**63 - 1, 2**64 - 1)
    assert len(encode_custom_id(spec)) <= 100


async def test_button_rebuilt_from_custom_id():
    custom_id = "gan:reroll:3:4:7:42"
    match = GenerationButton.__discord_ui_compiled_template__.fullmatch(custom_id)
    button = await GenerationButton.from_custom_id(None, None, match)
    assert button.spec == ButtonSpec("reroll", 3, 4, 7, 42)


async def test_view_is_persistent():
    view = build_view((ButtonSpec("reroll", 3, 4, 7, 42), ButtonSpec("variations", 3, 4, 7, 42)))
    assert view.timeout is None
    assert view.is_persistent() is True


# Command definitions.


async def test_generate_command_options(bot):
    command = bot.tree.get_command("generate")
    options = {parameter.display_name: parameter for parameter in command.parameters}
    assert [choice.value for choice in options["class"].choices][-2:] == ["truck", "random"]
    assert (options["count"].min_value, options["count"].max_value) == (1, 16)
    assert (options["seed"].min_value, options["seed"].max_value) == (0, 2**53 - 1)


async def test_train_group_hidden_from_members(bot):
    group = bot.tree.get_command("train")
    assert group.default_permissions == discord.Permissions(manage_guild=True)
    assert group.get_command("status") is not None


def walk_descriptions(payload: dict):
    yield payload["description"]
    for option in payload.get("options", []):
        yield from walk_descriptions(option)


async def test_command_descriptions_fit_discord(bot):
    payloads = [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
    longest = max(len(text) for payload in payloads for text in walk_descriptions(payload))
    assert longest <= 100


async def test_model_command_registered(bot):
    assert bot.tree.get_command("model") is not None


# Shutdown.


async def test_shutdown_finishes_requests_in_flight():
    service = StandInService()
    service.gate = threading.Event()
    client = GanBot(settings(shutdown_seconds=5.0), service)
    interaction = FakeInteraction()
    task = asyncio.create_task(client.respond(interaction, generate_request(client, interaction, seed=7)))
    await asyncio.to_thread(service.started.wait, 5)
    closing = asyncio.create_task(client.close())
    await asyncio.sleep(0.05)
    service.gate.set()
    await asyncio.wait_for(closing, 10)
    await task
    assert [kind for kind, _ in interaction.sent] == ["defer", "followup"]
    assert "files" in interaction.sent[1][1]


async def test_shutdown_refuses_new_requests():
    service = StandInService()
    service.gate = threading.Event()
    client = GanBot(settings(shutdown_seconds=5.0), service)
    busy = FakeInteraction(user_id=1)
    task = asyncio.create_task(client.respond(busy, generate_request(client, busy, seed=7)))
    await asyncio.to_thread(service.started.wait, 5)
    closing = asyncio.create_task(client.close())
    await asyncio.sleep(0.05)
    late = FakeInteraction(user_id=2)
    await client.respond(late, generate_request(client, late, seed=8))
    service.gate.set()
    await asyncio.wait_for(asyncio.gather(closing, task), 10)
    assert late.sent[0][1]["content"] == "The bot is shutting down. Try again in a minute."
    assert late.sent[0][1]["ephemeral"] is True


async def test_shutdown_wait_is_bounded():
    service = StandInService()
    service.gate = threading.Event()
    client = GanBot(settings(shutdown_seconds=0.2), service)
    interaction = FakeInteraction()
    task = asyncio.create_task(client.respond(interaction, generate_request(client, interaction, seed=7)))
    await asyncio.to_thread(service.started.wait, 5)
    await asyncio.wait_for(client.close(), 20)
    service.gate.set()
    assert task.cancelled() is True
    assert interaction.sent[-1][1]["content"].startswith("The bot is shutting down.")


# Login.


class RejectingDiscord(http.server.BaseHTTPRequestHandler):
    """Responds to every request as Discord responds to an invalid token."""

    def do_GET(self):
        body = b'{"message": "401: Unauthorized", "code": 0}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_rejected_token_exits_1(monkeypatch, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RejectingDiscord)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{server.server_port}/api/v10")
    token = "MTIz.fake.token-that-must-not-be-printed"
    try:
        status = _run_discord(settings(discord_token=token), StandInService())
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.startswith("Discord rejected the token in DISCORD_TOKEN.")
    assert token not in captured.err + captured.out
