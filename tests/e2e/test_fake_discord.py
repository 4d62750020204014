"""The fake Discord against a real discord.py client: login, sync, interactions, resume.

The client and its command tree below belong to these tests only, not to the
product bot, so they check the fake itself.
"""

from __future__ import annotations

import asyncio
import io
import re

import discord
import pytest
from discord import app_commands
from PIL import Image

from tests.fake_discord import EPHEMERAL, FakeDiscord, running_client

SEED = 42
TIMEOUT = 10.0  # seconds for any single wait


def make_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = make_png()


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=r"reroll:(?P<seed>\d+)"):
    """A button that survives restarts: its custom_id carries the seed."""

    def __init__(self, seed: int) -> None:
        super().__init__(discord.ui.Button(label="Reroll", custom_id=f"reroll:{seed}"))
        self.seed = seed

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]) -> RerollButton:
        return cls(int(match["seed"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.pressed.append(("reroll", self.seed))
        await interaction.response.edit_message(content=f"Rerolled seed {self.seed}")


class HelpView(discord.ui.View):
    """A persistent view, registered with add_view at startup."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Help", custom_id="probe:help")
    async def show_help(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        interaction.client.pressed.append(("help", None))
        await interaction.response.send_message("Here is some help.", ephemeral=True)


class PickView(discord.ui.View):
    """A string select menu that reports the chosen classes."""

    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.select(
        custom_id="probe:pick",
        options=[discord.SelectOption(label=name, value=name) for name in ("cat", "dog", "deer")],
        max_values=2,
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.edit_message(content=f"Picked {', '.join(select.values)}", view=None)


class SeedModal(discord.ui.Modal, title="Choose a seed"):
    seed = discord.ui.TextInput(label="Seed", custom_id="probe:seed")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Seed {self.seed.value}", ephemeral=True)


async def class_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=name, value=name) for name in ("cat", "dog", "deer") if name.startswith(current)]


class ProbeClient(discord.Client):
    """A small bot whose command tree exercises each kind of interaction flow."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.guild_id = guild_id
        self.tree = app_commands.CommandTree(self)
        self.pressed: list[tuple[str, int | None]] = []
        self.errors: list[Exception] = []
        self.train_status_calls = 0
        self.seen: list[object] = []
        self.add_commands()

    def add_commands(self) -> None:
        tree = self.tree

        @tree.command()
        @app_commands.describe(count="How many images to draw")
        async def draw(interaction: discord.Interaction, count: app_commands.Range[int, 1, 8] = 1) -> None:
            """Draw images and attach them as a PNG."""
            await interaction.response.defer(thinking=True)
            view = HelpView()
            view.add_item(RerollButton(SEED))
            await interaction.followup.send(f"{count} image(s)", file=discord.File(io.BytesIO(PNG), "draw.png"), view=view)

        @tree.command()
        async def secret(interaction: discord.Interaction) -> None:
            """Reply so that only the caller sees it."""
            await interaction.response.send_message("Only you can see this.", ephemeral=True)

        @tree.command()
        async def sample(interaction: discord.Interaction) -> None:
            """Reply with a PNG attached to the initial response."""
            await interaction.response.send_message("Sample", file=discord.File(io.BytesIO(PNG), "sample.png"))

        @tree.command()
        async def slow(interaction: discord.Interaction) -> None:
            """Reply after Discord's response window closed."""
            await asyncio.sleep(0.5)
            await interaction.response.send_message("Late.")

        @tree.command()
        async def retouch(interaction: discord.Interaction) -> None:
            """Edit the deferred reply with a file, read it back, then delete it."""
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(content="Retouched", attachments=[discord.File(io.BytesIO(PNG), "retouch.png")])
            message = await interaction.original_response()
            self.seen.append(await message.attachments[0].read())
            await interaction.delete_original_response()

        @tree.command()
        async def notes(interaction: discord.Interaction) -> None:
            """Reply, send a followup and edit that followup."""
            await interaction.response.send_message("First")
            message = await interaction.followup.send("Second", wait=True)
            await message.edit(content="Second, edited")

        @tree.command()
        @app_commands.autocomplete(label=class_choices)
        async def label(interaction: discord.Interaction, label: str) -> None:
            """Echo a class name."""
            await interaction.response.send_message(label)

        @tree.command()
        async def pick(interaction: discord.Interaction) -> None:
            """Offer a select menu."""
            await interaction.response.send_message("Pick classes", view=PickView())

        @tree.command()
        async def ask(interaction: discord.Interaction) -> None:
            """Open a modal."""
            await interaction.response.send_modal(SeedModal(custom_id="probe:modal"))

        @tree.command()
        async def whois(interaction: discord.Interaction, member: discord.Member) -> None:
            """List a member's roles."""
            await interaction.response.send_message(", ".join(sorted(role.name for role in member.roles)))

        @tree.command()
        @app_commands.checks.has_permissions(manage_guild=True)
        async def admin(interaction: discord.Interaction) -> None:
            """Reply only to members who may manage the guild."""
            await interaction.response.send_message("Allowed")

        train = app_commands.Group(name="train", description="Training commands")

        @train.command(name="status")
        async def train_status(interaction: discord.Interaction) -> None:
            """Show the training status."""
            self.train_status_calls += 1
            await interaction.response.send_message("Training: running")

        tree.add_command(train)

        @tree.command(guild=discord.Object(self.guild_id))
        async def ping(interaction: discord.Interaction) -> None:
            """Reply pong in this guild only."""
            await interaction.response.send_message("pong")

        @tree.error
        async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            self.errors.append(error)

    async def setup_hook(self) -> None:
        self.add_view(HelpView())
        self.add_dynamic_items(RerollButton)
        await self.tree.sync()
        await self.tree.sync(guild=discord.Object(self.guild_id))


def probe_client(fake: FakeDiscord) -> ProbeClient:
    return ProbeClient(fake.guild.id)


async def test_login_syncs_commands(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        global_commands = {command["name"]: command for command in fake_discord.synced_commands[None]}
        guild_commands = {command["name"]: command for command in fake_discord.synced_commands[fake_discord.guild.id]}

        assert set(global_commands) == {"admin", "ask", "draw", "label", "notes", "pick", "retouch", "sample", "secret", "slow", "train", "whois"}
        assert set(guild_commands) == {"ping"}
        count_option = global_commands["draw"]["options"][0]
        assert count_option["name"] == "count"
        assert count_option["type"] == 4
        assert count_option["min_value"] == 1
        assert count_option["max_value"] == 8
        status_option = global_commands["train"]["options"][0]
        assert status_option["name"] == "status"
        assert status_option["type"] == 1
        assert all(command["id"].isdigit() for command in global_commands.values())
        assert client.user.id == fake_discord.bot_user.id
        assert client.application_id == fake_discord.application_id
        assert client.get_guild(fake_discord.guild.id) is not None
        assert fake_discord.identify_count == 1
        assert fake_discord.gateway_connections[0].compress == "zlib-stream"
        assert not fake_discord.unknown_requests


async def test_command_defers_then_sends_file(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("draw", {"count": 3})
        callback, followup = await record.wait_for_responses(2, TIMEOUT)

        assert callback.callback_type == 5
        assert followup.kind == "followup"
        assert followup.content == "3 image(s)"
        assert followup.files == [("draw.png", PNG)]
        attachment = followup.message["attachments"][0]
        assert attachment["width"] == 6
        assert attachment["height"] == 4
        assert attachment["size"] == len(PNG)
        assert followup.message_id == record.original_message_id
        assert record.loading is False
        assert not client.errors


async def test_ephemeral_reply_flags(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("secret")
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.callback_type == 4
        assert callback.flags & EPHEMERAL
        assert callback.ephemeral
        assert callback.content == "Only you can see this."


async def test_reply_with_file(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("sample")
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.callback_type == 4
        assert callback.files == [("sample.png", PNG)]
        assert callback.message["attachments"][0]["filename"] == "sample.png"
        assert not callback.ephemeral


async def test_subcommand_reaches_handler(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("train status")
        callback = await record.wait_for_callback(TIMEOUT)

        assert client.train_status_calls == 1
        assert callback.content == "Training: running"


async def test_dynamic_button_reaches_callback(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        command = await fake_discord.send_command("draw")
        await command.wait_for_responses(2, TIMEOUT)

        press = await fake_discord.press_button(f"reroll:{SEED}", message=command)
        callback = await press.wait_for_callback(TIMEOUT)

        assert client.pressed == [("reroll", SEED)]
        assert callback.callback_type == 7
        assert fake_discord.messages[command.original_message_id]["content"] == f"Rerolled seed {SEED}"


async def test_persistent_view_button(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        command = await fake_discord.send_command("draw")
        await command.wait_for_responses(2, TIMEOUT)

        press = await fake_discord.press_button("probe:help")
        callback = await press.wait_for_callback(TIMEOUT)

        assert client.pressed == [("help", None)]
        assert callback.callback_type == 4
        assert callback.ephemeral


async def test_rejected_token_fails_login(fake_discord: FakeDiscord) -> None:
    fake_discord.reject_token = True
    client = probe_client(fake_discord)
    try:
        with pytest.raises(discord.LoginFailure):
            await asyncio.wait_for(client.start(fake_discord.token), TIMEOUT)
    finally:
        await client.close()

    assert fake_discord.requests[0].path == "/users/@me"
    assert fake_discord.requests[0].status == 401
    assert fake_discord.identify_count == 0


async def test_dropped_gateway_resumes(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        # Hold the reconnection back so the command below has to be replayed.
        await fake_discord.drop_gateway(reconnect_delay=0.3)
        missed = await fake_discord.send_command("secret")
        await fake_discord.wait_for_resume(1, TIMEOUT)
        await missed.wait_for_callback(TIMEOUT)

        after = await fake_discord.send_command("draw")
        await after.wait_for_responses(2, TIMEOUT)

        assert fake_discord.resume_count == 1
        assert fake_discord.identify_count == 1
        assert fake_discord.gateway_connections[-1].path == "/gateway/resume"
        assert fake_discord.gateway_connections[-1].opened_with == "resume"


async def test_reconnect_opcode_resumes(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        await fake_discord.send_reconnect()
        await fake_discord.wait_for_resume(1, TIMEOUT)
        record = await fake_discord.send_command("ping")
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.content == "pong"
        assert fake_discord.identify_count == 1


async def test_heartbeats_are_acknowledged(fake_discord: FakeDiscord) -> None:
    fake_discord.heartbeat_interval_ms = 250
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        await fake_discord.wait_until(lambda: len(fake_discord.heartbeats) >= 3, TIMEOUT, "Fewer than 3 heartbeats")
        gaps = fake_discord.heartbeat_gaps()

        assert len(gaps) >= 2
        assert all(0.1 < gap < 2.0 for gap in gaps), gaps
        assert client.latency < 1.0  # finite only once an ACK arrived


async def test_unknown_route_recorded(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        route = discord.http.Route("GET", "/channels/{channel_id}/webhooks", channel_id=fake_discord.default_channel.id)
        with pytest.raises(discord.NotFound):
            await client.http.request(route)

        unknown = fake_discord.unknown_requests
        assert [(record.method, record.path) for record in unknown] == [("GET", f"/channels/{fake_discord.default_channel.id}/webhooks")]
        assert unknown[0].status == 404


async def test_late_callback_rejected(fake_discord: FakeDiscord) -> None:
    fake_discord.callback_timeout = 0.2
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("slow")
        await fake_discord.wait_until(lambda: client.errors, TIMEOUT, "The late callback raised nothing in the client")

        assert record.expired
        assert record.callback is None
        assert isinstance(client.errors[0].__cause__, discord.NotFound)


async def test_concurrent_commands_from_five_users(fake_discord: FakeDiscord) -> None:
    users = [fake_discord.make_user(f"user{index}") for index in range(5)]
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        records = await asyncio.gather(*(fake_discord.send_command("draw", {"count": 1 + index % 8}, user=users[index % 5]) for index in range(20)))
        await asyncio.gather(*(record.wait_for_responses(2, TIMEOUT) for record in records))

        assert len({record.id for record in records}) == 20
        assert all(record.followups[0].files == [("draw.png", PNG)] for record in records)
        assert {record.user.id for record in records} == {user.id for user in users}
        assert not fake_discord.error_responses


async def test_invalid_option_raises() -> None:
    async with FakeDiscord() as fake:
        fake.store_commands(None, [{"name": "draw", "description": "Draw", "options": [{"type": 4, "name": "count", "description": "How many", "min_value": 1, "max_value": 8}]}])

        with pytest.raises(ValueError, match="at most 8"):
            await fake.send_command("draw", {"count": 9})
        with pytest.raises(ValueError, match="No synced command"):
            await fake.send_command("paint")


async def test_edit_original_with_file(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("retouch")
        callback, edit, delete = await record.wait_for_responses(3, TIMEOUT)

        assert callback.callback_type == 5
        assert callback.flags == EPHEMERAL
        assert edit.kind == "edit_original"
        assert edit.files == [("retouch.png", PNG)]
        assert edit.ephemeral
        assert client.seen == [PNG]
        assert delete.kind == "delete_original"
        assert record.original_message is None


async def test_followup_edit_recorded(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("notes")
        callback, followup, edit = await record.wait_for_responses(3, TIMEOUT)

        assert callback.content == "First"
        assert followup.message_id != callback.message_id
        assert edit.kind == "edit_followup"
        assert edit.message_id == followup.message_id
        assert fake_discord.messages[followup.message_id]["content"] == "Second, edited"


async def test_autocomplete_returns_choices(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_autocomplete("label", {"label": "d"}, focused="label")
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.callback_type == 8
        assert [choice["value"] for choice in callback.data["choices"]] == ["dog", "deer"]


async def test_select_menu_choice(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        command = await fake_discord.send_command("pick")
        await command.wait_for_callback(TIMEOUT)

        choice = await fake_discord.choose_options("probe:pick", ["cat", "deer"], message=command)
        callback = await choice.wait_for_callback(TIMEOUT)

        assert callback.callback_type == 7
        assert callback.content == "Picked cat, deer"
        assert callback.components == []


async def test_modal_submit_reaches_handler(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        command = await fake_discord.send_command("ask")
        opened = await command.wait_for_callback(TIMEOUT)

        submit = await fake_discord.submit_modal("probe:modal", {"probe:seed": "1234"})
        callback = await submit.wait_for_callback(TIMEOUT)

        assert opened.callback_type == 9
        assert callback.content == "Seed 1234"


async def test_member_option_with_new_role(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        trainer = fake_discord.make_role("Trainer")
        bob = fake_discord.make_user("bob", roles=[trainer])
        record = await fake_discord.send_command("whois", {"member": bob})
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.content == "@everyone, Trainer"


async def test_permissions_reach_checks(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        allowed = await fake_discord.send_command("admin", permissions=["manage_guild", "view_channel"])
        denied = await fake_discord.send_command("admin")
        await allowed.wait_for_callback(TIMEOUT)
        await fake_discord.wait_until(lambda: client.errors, TIMEOUT, "The permission check raised nothing")

        assert allowed.callback.content == "Allowed"
        assert isinstance(client.errors[0], app_commands.MissingPermissions)
        assert denied.callback is None


async def test_command_in_dm(fake_discord: FakeDiscord) -> None:
    client = probe_client(fake_discord)
    async with running_client(fake_discord, client):
        record = await fake_discord.send_command("secret", dm=True)
        callback = await record.wait_for_callback(TIMEOUT)

        assert callback.content == "Only you can see this."
        assert record.guild_id is None
        assert "user" in record.payload


def test_patches_undone_after_tests() -> None:
    # Runs after the tests above in file order: their monkeypatches must be gone.
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
