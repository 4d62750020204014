"""A fake Discord (REST API and gateway) on 127.0.0.1 for end-to-end tests of discord.py bots.

Start it inside the test's event loop, point discord.py at it and drive it:

    async with FakeDiscord(heartbeat_interval_ms=1000) as fake:
        patch_discord_py(fake, monkeypatch)          # Route.BASE and the gateway URL
        async with running_client(fake, client):     # client.start(fake.token) in a task
            record = await fake.send_command("draw", {"count": 4})
            await record.wait_for_responses(2)

The fake keeps one guild with a text channel, the bot's member and a default
user; `make_user`, `make_role` and `make_channel` add more. Every interaction
it dispatches is returned as an InteractionRecord that stores the client's
responses. tests/fake_discord/README.md lists the whole driving API.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import logging
import secrets
import time
from typing import Any, Callable, Iterable, TypeVar

from aiohttp import web

from . import commands
from .gateway import GUILD_MEMBERS_INTENT, GUILD_MESSAGES_INTENT, TRACE, Gateway, GatewaySession
from .messages import ACTION_ROW, BUTTON, LABEL, SELECT_TYPES, STRING_SELECT, TEXT_INPUT, attachment_payload, custom_ids, find_component, iter_components
from .models import (
    DM,
    EVERYONE_PERMISSIONS,
    GUILD_CATEGORY,
    PERMISSION_BITS,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    iso_timestamp,
    to_permission_bits,
)
from .records import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    ChangeNotifier,
    GatewayConnection,
    Heartbeat,
    InteractionRecord,
    RequestRecord,
    UploadedFile,
)
from .rest import SETTABLE_MESSAGE_FLAGS, RestApi
from .snowflakes import SnowflakeGenerator

log = logging.getLogger(__name__)

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # bytes; Discord's upload limit in guilds without boosts
DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250  # the interval discord.com sends
DEFAULT_CALLBACK_TIMEOUT = 3.0  # seconds Discord waits for the initial response to an interaction

# Application flags: APPLICATION_COMMAND_BADGE and GATEWAY_MESSAGE_CONTENT_LIMITED.
APPLICATION_FLAGS = (1 << 23) | (1 << 19)

BOT_PERMISSIONS = sum(
    PERMISSION_BITS[name]
    for name in ("view_channel", "send_messages", "embed_links", "attach_files", "read_message_history", "use_application_commands")
)

# Message types.
DEFAULT_MESSAGE = 0
CHAT_INPUT_COMMAND_MESSAGE = 20

# Interaction contexts.
GUILD_CONTEXT = 0
BOT_DM_CONTEXT = 1


class FakeDiscord:
    """Discord's REST API and gateway for one bot, one guild and its users, on 127.0.0.1."""

    def __init__(
        self,
        *,
        token: str | None = None,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        callback_timeout: float | None = DEFAULT_CALLBACK_TIMEOUT,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
    ) -> None:
        """Build the fake; `start()` opens its port.

        `callback_timeout` is how long, in seconds, the fake accepts the initial
        response to an interaction (None: forever). `attachment_size_limit` is
        the largest upload in bytes, also sent in every interaction.
        """
        self.snowflakes = SnowflakeGenerator()
        self.notifier = ChangeNotifier()
        self.callback_timeout = callback_timeout
        self.attachment_size_limit = attachment_size_limit
        self.dispatch_message_events = True  # send MESSAGE_CREATE/UPDATE/DELETE for the bot's messages

        # The bot, its application and the people in the guild.
        self.bot_user = FakeUser(id=self.snowflakes.next(), username="gan-bot", global_name="GAN Bot", bot=True)
        self.application_id = self.bot_user.id  # Discord gives a bot user its application's id
        self.token = token or make_token(self.bot_user.id)
        self.reject_token = False  # True: every token is invalid, so /users/@me returns 401
        self.owner = FakeUser(id=self.snowflakes.next(), username="owner", global_name="Guild Owner")
        self.default_user = FakeUser(id=self.snowflakes.next(), username="alice", global_name="Alice")
        self.users: dict[int, FakeUser] = {user.id: user for user in (self.bot_user, self.owner, self.default_user)}

        # The guild, with @everyone, the bot's managed role, a category and a text channel.
        guild_id = self.snowflakes.next()
        self.guild = FakeGuild(id=guild_id, name="Fake Guild", owner_id=self.owner.id)
        self.guild.roles[guild_id] = FakeRole(id=guild_id, name="@everyone", permissions=EVERYONE_PERMISSIONS)
        bot_role = FakeRole(id=self.snowflakes.next(), name="GAN Bot", permissions=BOT_PERMISSIONS, position=1, managed=True, bot_id=self.bot_user.id)
        self.guild.roles[bot_role.id] = bot_role
        self.bot_user.roles.append(bot_role.id)
        category = FakeChannel(id=self.snowflakes.next(), name="Text Channels", type=GUILD_CATEGORY, guild_id=guild_id)
        self.default_channel = FakeChannel(id=self.snowflakes.next(), name="general", guild_id=guild_id, parent_id=category.id)
        self.channels: dict[int, FakeChannel] = {}
        for channel in (category, self.default_channel):
            self.guild.channels[channel.id] = channel
            self.channels[channel.id] = channel
        for user in self.users.values():
            self.guild.members[user.id] = user

        # What the client did.
        self.synced_commands: dict[int | None, list[dict[str, Any]]] = {}  # None: global; else the guild id
        self.sync_payloads: list[tuple[int | None, list[dict[str, Any]]]] = []  # every overwrite, as sent
        self.interactions: dict[int, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # every message that exists now, by id
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.channel_messages: list[dict[str, Any]] = []  # messages sent with POST /channels/{id}/messages
        self.attachment_data: dict[int, bytes] = {}
        self.requests: list[RequestRecord] = []
        self.unknown_requests: list[RequestRecord] = []
        self.error_responses: list[RequestRecord] = []  # requests to known routes that got an error response

        self.gateway = Gateway(self, heartbeat_interval_ms)
        self._queued_events: list[tuple[str, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # Lifecycle.

    async def start(self) -> FakeDiscord:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        RestApi(self).add_routes(app)

        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("Fake Discord listening on %s", self.http_url)
        return self

    async def close(self) -> None:
        if self._runner is None:
            return
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None
        log.info("Fake Discord on port %s stopped", self.port)

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def http_url(self) -> str:
        if self.port is None:
            raise RuntimeError("The fake Discord is not started; await fake.start() first.")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for discord.http.Route.BASE."""
        return f"{self.http_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """A second path, so a test can check that the client resumed at the URL READY gave."""
        return f"ws://{LOOPBACK}:{self.port}/gateway/resume"

    def token_is_valid(self, token: str | None) -> bool:
        return not self.reject_token and token == self.token

    # Payloads the client reads at login.

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": "GAN Bot",
            "icon": None,
            "description": "Draws CIFAR-10-style images.",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": secrets.token_hex(32),
            "owner": self.owner.user_payload(),
            "team": None,
            "flags": APPLICATION_FLAGS,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": 1,
            "integration_types_config": {"0": {}},
            "bot": self.bot_user.user_payload(),
        }

    def ready_payload(self, session: GatewaySession, shard: list[int] | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user.user_payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(self.guild.id), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": APPLICATION_FLAGS},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "user_settings": {},
            "auth": {},
            "_trace": TRACE,
        }
        if shard is not None:
            payload["shard"] = shard
        return payload

    def guild_create_payloads(self, *, include_all_members: bool) -> list[dict[str, Any]]:
        return [self.guild.guild_create_payload(bot_user_id=self.bot_user.id, include_all_members=include_all_members)]

    # Users, roles and channels.

    def make_user(
        self,
        username: str,
        *,
        roles: Iterable[int | FakeRole] = (),
        permissions: int | str | Iterable[str] | Any | None = None,
        nick: str | None = None,
        global_name: str | None = None,
        locale: str = "en-US",
    ) -> FakeUser:
        """Add a guild member; `permissions` (bits or names) overrides what the roles grant."""
        user = FakeUser(
            id=self.snowflakes.next(),
            username=username,
            global_name=global_name,
            roles=[role.id if isinstance(role, FakeRole) else int(role) for role in roles],
            permissions=None if permissions is None else to_permission_bits(permissions),
            nick=nick,
            locale=locale,
        )
        self.users[user.id] = user
        self.guild.members[user.id] = user
        session = self.gateway.current
        if session is not None and session.intents & GUILD_MEMBERS_INTENT:
            self._queued_events.append(("GUILD_MEMBER_ADD", user.member_payload() | {"guild_id": str(self.guild.id)}))
        return user

    def make_role(
        self,
        name: str,
        *,
        permissions: int | str | Iterable[str] | Any = 0,
        color: int = 0,
        hoist: bool = False,
        mentionable: bool = False,
    ) -> FakeRole:
        """Add a guild role; a connected client hears of it before the next event."""
        position = max(role.position for role in self.guild.roles.values()) + 1
        role = FakeRole(
            id=self.snowflakes.next(),
            name=name,
            permissions=to_permission_bits(permissions),
            position=position,
            color=color,
            hoist=hoist,
            mentionable=mentionable,
        )
        self.guild.roles[role.id] = role
        if self.gateway.current is not None:
            self._queued_events.append(("GUILD_ROLE_CREATE", {"guild_id": str(self.guild.id), "role": role.payload()}))
        return role

    def make_channel(self, name: str, *, topic: str | None = None) -> FakeChannel:
        """Add a text channel; a connected client hears of it before the next event."""
        position = len(self.guild.text_channels())
        channel = FakeChannel(id=self.snowflakes.next(), name=name, guild_id=self.guild.id, position=position, topic=topic)
        self.guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        if self.gateway.current is not None:
            self._queued_events.append(("CHANNEL_CREATE", channel.payload()))
        return channel

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """Return the DM channel between the bot and `user`, creating it on first use."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipients and channel.recipients[0].id == user.id:
                return channel
        channel = FakeChannel(id=self.snowflakes.next(), name=None, type=DM, recipients=[user])
        self.channels[channel.id] = channel
        return channel

    # Application commands.

    def store_commands(self, scope: int | None, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the commands of a scope (None: global, else a guild id), as a bulk overwrite does.

        A command keeps its id while its name and type stay, as on Discord.
        """
        self.sync_payloads.append((scope, copy.deepcopy(payloads)))
        previous = {(command["name"], command["type"]): command for command in self.synced_commands.get(scope, [])}
        stored = []
        for payload in payloads:
            command_type = int(payload.get("type", commands.CHAT_INPUT))
            old = previous.get((payload["name"], command_type))
            command_id = int(old["id"]) if old else self.snowflakes.next()
            stored.append(
                commands.stored_command(
                    payload,
                    command_id=command_id,
                    version=self.snowflakes.next(),
                    application_id=self.application_id,
                    guild_id=scope,
                )
            )
        self.synced_commands[scope] = stored
        log.info("Stored %d command(s) for %s", len(stored), "global scope" if scope is None else f"guild {scope}")
        self.notifier.notify()
        return stored

    def find_command(self, name: str, *, guild_id: int | None = None, command_type: int = commands.CHAT_INPUT) -> dict[str, Any] | None:
        """Return the synced command a user in `guild_id` (None: a DM) would invoke by `name`.

        Guild commands shadow global ones of the same name, as in Discord's picker.
        """
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.synced_commands.get(scope, []):
                if command["name"] == name and command["type"] == command_type:
                    return command
        return None

    # Messages.

    def create_message(
        self,
        channel_id: int,
        data: dict[str, Any],
        files: list[tuple[int, UploadedFile]],
        *,
        interaction: InteractionRecord | None = None,
        loading: bool = False,
    ) -> dict[str, Any]:
        """Store a new message by the bot and return it as Discord's REST API does."""
        flags = int(data.get("flags") or 0) & SETTABLE_MESSAGE_FLAGS
        if loading:
            flags |= LOADING
        ephemeral = bool(flags & EPHEMERAL)
        message_type = DEFAULT_MESSAGE
        if interaction is not None and interaction.type == APPLICATION_COMMAND:
            message_type = CHAT_INPUT_COMMAND_MESSAGE

        message: dict[str, Any] = {
            "id": str(self.snowflakes.next()),
            "channel_id": str(channel_id),
            "type": message_type,
            "content": data.get("content") or "",
            "author": self.bot_user.user_payload(),
            "timestamp": iso_timestamp(),
            "edited_timestamp": None,
            "tts": bool(data.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._new_attachments(channel_id, data, files, [], ephemeral=ephemeral),
            "embeds": data.get("embeds") or [],
            "components": data.get("components") or [],
            "pinned": False,
            "flags": flags,
        }
        if interaction is not None:
            message.update(
                webhook_id=str(self.application_id),
                application_id=str(self.application_id),
                interaction_metadata=self._interaction_metadata(interaction),
            )
            if interaction.type == APPLICATION_COMMAND:
                message["interaction"] = {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "name": interaction.name,
                    "user": interaction.user.user_payload(),
                }

        self.messages[int(message["id"])] = message
        channel = self.channels.get(channel_id)
        if channel is not None and not ephemeral:
            channel.last_message_id = int(message["id"])
        return message

    def edit_message(
        self,
        message: dict[str, Any],
        data: dict[str, Any],
        files: list[tuple[int, UploadedFile]],
        *,
        finish_loading: bool = False,
    ) -> dict[str, Any]:
        """Apply a PATCH body to a stored message, in place, and return it.

        Fields in the body replace the message's; `attachments`, when given,
        lists which old attachments stay, else all stay and uploads are added.
        """
        flags = int(message.get("flags", 0))
        ephemeral = bool(flags & EPHEMERAL)
        if finish_loading:
            flags &= ~LOADING
        if "flags" in data and data["flags"] is not None:
            # Only suppress-embeds and components-v2 can change on an existing message.
            changeable = (1 << 2) | (1 << 15)
            flags = (flags & ~changeable) | (int(data["flags"]) & changeable)

        if "content" in data:
            message["content"] = data["content"] or ""
        for key in ("embeds", "components"):
            if key in data:
                message[key] = data[key] or []
        message["attachments"] = self._new_attachments(int(message["channel_id"]), data, files, message["attachments"], ephemeral=ephemeral)
        message["flags"] = flags
        if not finish_loading:
            message["edited_timestamp"] = iso_timestamp()
        return message

    def delete_message(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self.deleted_messages[message_id] = self.messages.pop(message_id)

    def _new_attachments(
        self,
        channel_id: int,
        data: dict[str, Any],
        files: list[tuple[int, UploadedFile]],
        existing: list[dict[str, Any]],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        uploads = dict(files)
        old_by_id = {attachment["id"]: attachment for attachment in existing}
        if "attachments" not in data or data["attachments"] is None:
            entries = [{"id": attachment_id} for attachment_id in old_by_id] + [{"id": index} for index in uploads]
        else:
            entries = data["attachments"]

        attachments = []
        for entry in entries:
            entry_id = str(entry.get("id"))
            if entry_id in old_by_id:
                attachments.append(old_by_id[entry_id])
                continue
            index = int(entry_id)
            if index not in uploads:
                continue
            file = uploads[index]
            attachment_id = self.snowflakes.next()
            self.attachment_data[attachment_id] = file.data
            url = f"{self.http_url}/attachments/{channel_id}/{attachment_id}/{file.filename}"
            attachments.append(
                attachment_payload(attachment_id, file, url=url, description=entry.get("description"), ephemeral=ephemeral)
            )
        return attachments

    def _interaction_metadata(self, interaction: InteractionRecord) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": interaction.user.user_payload(),
            "authorizing_integration_owners": interaction.payload.get("authorizing_integration_owners", {}),
        }
        if interaction.type == APPLICATION_COMMAND:
            metadata["name"] = interaction.name
            metadata["command_type"] = commands.CHAT_INPUT
        if interaction.original_message_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_message_id)
        if interaction.component_message_id is not None:
            metadata["interacted_message_id"] = str(interaction.component_message_id)
        return metadata

    async def dispatch_message_event(self, event: str, message: dict[str, Any]) -> None:
        """Tell a client with the GUILD_MESSAGES intent about a guild message of the bot.

        Ephemeral messages and DMs send no event, as on Discord.
        """
        session = self.gateway.current
        channel = self.channels.get(int(message["channel_id"]))
        if not self.dispatch_message_events or session is None or channel is None or channel.type == DM:
            return
        if not session.intents & GUILD_MESSAGES_INTENT or int(message.get("flags", 0)) & EPHEMERAL:
            return

        if event == "MESSAGE_DELETE":
            data = {"id": message["id"], "channel_id": message["channel_id"], "guild_id": str(self.guild.id)}
        else:
            data = dict(message, guild_id=str(self.guild.id), member=self.bot_user.member_payload(with_user=False))
        await self.dispatch(event, data)

    # Gateway.

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a gateway event to the client, after any queued guild updates; return its sequence."""
        await self.flush_events()
        return await self.gateway.dispatch(event, data)

    async def flush_events(self) -> None:
        """Send the role, member and channel events that `make_*` queued."""
        while self._queued_events:
            event, data = self._queued_events.pop(0)
            await self.gateway.dispatch(event, data)

    async def wait_for_ready(self, timeout: float = 10.0) -> None:
        """Wait until a client identified and got READY and its GUILD_CREATE."""
        await self.wait_until(
            lambda: self.gateway.ready_count > 0 and self.gateway.current is not None and self.gateway.current.connection is not None,
            timeout,
            lambda: f"No client became ready on the fake gateway. {self.describe_activity()}",
        )

    async def drop_gateway(self, *, code: int = 4000, abort: bool = False, reconnect_delay: float = 0.0, timeout: float = 10.0) -> None:
        """Close the client's gateway connection, keeping its session resumable.

        `code` is the close code (4000 and most 4xxx codes let discord.py resume),
        `abort` cuts the TCP connection without a close frame, and
        `reconnect_delay` (seconds) delays HELLO on the next connection so
        that events sent meanwhile are replayed on RESUME.
        """
        await self.gateway.drop(code=code, abort=abort, reconnect_delay=reconnect_delay, timeout=timeout)

    async def send_reconnect(self) -> None:
        """Send opcode 7 RECONNECT; discord.py then reconnects and resumes."""
        await self.gateway.send_reconnect()

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send opcode 9 INVALID_SESSION.

        Unless `resumable`, discord.py 2.7 identifies again, after the 5 s sleep
        of its default `Client.before_identify_hook`.
        """
        await self.gateway.invalidate_session(resumable=resumable)

    async def wait_for_resume(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_until(
            lambda: self.resume_count >= count,
            timeout,
            lambda: f"Expected {count} RESUME(s), got {self.resume_count}. {self.describe_activity()}",
        )

    @property
    def heartbeat_interval_ms(self) -> int:
        """The interval sent in HELLO; a change applies to the next connection."""
        return self.gateway.heartbeat_interval_ms

    @heartbeat_interval_ms.setter
    def heartbeat_interval_ms(self, value: int) -> None:
        self.gateway.heartbeat_interval_ms = value

    @property
    def heartbeats(self) -> list[Heartbeat]:
        return self.gateway.heartbeats

    @property
    def identify_count(self) -> int:
        return self.gateway.identify_count

    @property
    def resume_count(self) -> int:
        return self.gateway.resume_count

    @property
    def gateway_connections(self) -> list[GatewayConnection]:
        return self.gateway.connections

    @property
    def identify_payloads(self) -> list[dict[str, Any]]:
        return self.gateway.identify_payloads

    @property
    def presence_updates(self) -> list[dict[str, Any]]:
        return self.gateway.presence_updates

    def heartbeat_gaps(self) -> list[float]:
        """Return the seconds between consecutive heartbeats on the same connection."""
        gaps = []
        for previous, current in zip(self.heartbeats, self.heartbeats[1:]):
            if previous.connection_id == current.connection_id:
                gaps.append(current.received_at - previous.received_at)
        return gaps

    # Interactions.

    async def send_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        user: FakeUser | None = None,
        roles: Iterable[int | FakeRole] | None = None,
        permissions: int | str | Iterable[str] | Any | None = None,
        channel: FakeChannel | None = None,
        dm: bool = False,
        locale: str | None = None,
        validate: bool = True,
    ) -> InteractionRecord:
        """Dispatch a slash command invocation, as if `user` ran it in `channel`.

        `name` may carry the subcommand path ("train status"), or pass it as
        `subcommand` ("status", or "group sub"). `options` maps option names to
        values; users, roles and channels may be given as fake objects and
        attachments as (filename, bytes). `roles` and `permissions` override the
        user's for this interaction. With `validate`, input a Discord user could
        not send (a missing required option, a value outside its range or
        choices, an unsynced command) raises ValueError instead.
        """
        path = name.split() + (subcommand.split() if subcommand else [])
        user = self._acting_user(user, roles, permissions)
        channel = self._interaction_channel(channel, user, dm)
        command = self._command_or_raise(path[0], channel)

        data = commands.build_command_data(command, path[1:], options or {}, self._resolve_option, validate=validate)
        return await self._dispatch_interaction(APPLICATION_COMMAND, " ".join(path), data, user, channel, locale=locale)

    async def send_autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        subcommand: str | None = None,
        user: FakeUser | None = None,
        channel: FakeChannel | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """Dispatch an autocomplete request while the user types option `focused`."""
        path = name.split() + (subcommand.split() if subcommand else [])
        user = self._acting_user(user, None, None)
        channel = self._interaction_channel(channel, user, False)
        command = self._command_or_raise(path[0], channel)

        data = commands.build_command_data(command, path[1:], options, self._resolve_option, validate=True, focused=focused)
        return await self._dispatch_interaction(AUTOCOMPLETE, " ".join(path), data, user, channel, locale=locale)

    async def press_button(
        self,
        custom_id: str,
        *,
        message: dict[str, Any] | int | InteractionRecord | None = None,
        user: FakeUser | None = None,
        roles: Iterable[int | FakeRole] | None = None,
        permissions: int | str | Iterable[str] | Any | None = None,
        locale: str | None = None,
        validate: bool = True,
    ) -> InteractionRecord:
        """Dispatch a click on the button `custom_id`.

        `message` is the message the button is on: a message dict or id, or an
        interaction whose original response it is. By default the newest stored
        message with that custom_id. With `validate`, a disabled button raises
        ValueError, since a user cannot click it.
        """
        target = self._component_message(custom_id, message)
        component = find_component(target, custom_id)
        if validate and component is not None and component.get("type") != BUTTON:
            raise ValueError(f"Component {custom_id!r} is of type {component.get('type')}, not a button.")
        if validate and component is not None and component.get("disabled"):
            raise ValueError(f"Button {custom_id!r} is disabled; a user cannot click it.")

        data = {"custom_id": custom_id, "component_type": BUTTON}
        if component is not None and "id" in component:
            data["id"] = component["id"]
        return await self._dispatch_component(data, target, user, roles, permissions, locale)

    async def choose_options(
        self,
        custom_id: str,
        values: list[str],
        *,
        message: dict[str, Any] | int | InteractionRecord | None = None,
        user: FakeUser | None = None,
        locale: str | None = None,
        validate: bool = True,
    ) -> InteractionRecord:
        """Dispatch a choice in the select menu `custom_id`.

        For a string select the values are option values; for user, role and
        channel selects they are ids. With `validate`, values outside the menu's
        options or its min/max count raise ValueError.
        """
        target = self._component_message(custom_id, message)
        component = find_component(target, custom_id) or {}
        component_type = component.get("type", STRING_SELECT)
        if validate:
            if component_type not in SELECT_TYPES:
                raise ValueError(f"Component {custom_id!r} is of type {component_type}, not a select menu.")
            allowed = [option["value"] for option in component.get("options") or []]
            if component_type == STRING_SELECT and any(value not in allowed for value in values):
                raise ValueError(f"Select {custom_id!r} offers {allowed}, got {values}.")
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(values) <= high:
                raise ValueError(f"Select {custom_id!r} takes {low} to {high} values, got {len(values)}.")

        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type, "values": list(values)}
        return await self._dispatch_component(data, target, user, None, None, locale)

    async def submit_modal(
        self,
        custom_id: str,
        values: dict[str, str | list[str]],
        *,
        user: FakeUser | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """Dispatch the submission of the modal `custom_id` that the bot opened last.

        `values` maps each text input's custom_id to its text (a select's to a
        list of values).
        """
        source, modal = self._last_modal(custom_id)

        # The submission mirrors the modal's layout: rows and labels wrap the inputs.
        def submitted(component: dict[str, Any]) -> dict[str, Any]:
            component_type = component.get("type")
            if component_type == ACTION_ROW:
                return {"type": ACTION_ROW, "components": [submitted(child) for child in component.get("components") or []]}
            if component_type == LABEL:
                return {"type": LABEL, "component": submitted(component["component"])}
            entry = {"type": component_type, "custom_id": component.get("custom_id")}
            if component_type == TEXT_INPUT:
                entry["value"] = values.get(component.get("custom_id", ""), "")
            else:
                entry["values"] = values.get(component.get("custom_id", ""), [])
            return entry

        data = {"custom_id": custom_id, "components": [submitted(component) for component in modal.get("components") or []]}
        user = self._acting_user(user or source.user, None, None)
        channel = self.channels[source.channel_id]
        message = self.messages.get(source.component_message_id or 0)
        return await self._dispatch_interaction(MODAL_SUBMIT, custom_id, data, user, channel, message=message, locale=locale)

    # Interaction helpers.

    def _acting_user(self, user: FakeUser | None, roles: Iterable[int | FakeRole] | None, permissions: Any) -> FakeUser:
        user = user or self.default_user
        changes: dict[str, Any] = {}
        if roles is not None:
            changes["roles"] = [role.id if isinstance(role, FakeRole) else int(role) for role in roles]
        if permissions is not None:
            changes["permissions"] = to_permission_bits(permissions)
        return dataclasses.replace(user, **changes) if changes else user

    def _interaction_channel(self, channel: FakeChannel | None, user: FakeUser, dm: bool) -> FakeChannel:
        if dm:
            return self.dm_channel(user)
        return channel or self.default_channel

    def _command_or_raise(self, name: str, channel: FakeChannel) -> dict[str, Any]:
        guild_id = None if channel.type == DM else self.guild.id
        command = self.find_command(name, guild_id=guild_id)
        if command is None:
            known = sorted({command["name"] for scope in self.synced_commands.values() for command in scope})
            raise ValueError(f"No synced command /{name} for this {'DM' if guild_id is None else 'guild'}; synced: {known}.")
        return command

    def _resolve_option(self, option_type: int, value: Any) -> tuple[str, dict[str, dict[str, Any]]]:
        """Return the snowflake and `resolved` entries for a user, role, channel or attachment option."""
        if option_type in (commands.USER_OPTION, commands.MENTIONABLE) and isinstance(value, FakeUser):
            entries = {"users": {str(value.id): value.user_payload()}}
            if value.id in self.guild.members:
                permissions = self.guild.member_permissions(value)
                entries["members"] = {str(value.id): value.member_payload(permissions=permissions, with_user=False)}
            return str(value.id), entries
        if option_type in (commands.ROLE, commands.MENTIONABLE) and isinstance(value, FakeRole):
            return str(value.id), {"roles": {str(value.id): value.payload()}}
        if option_type == commands.CHANNEL and isinstance(value, FakeChannel):
            # Discord resolves channels partially, with the invoking member's permissions there.
            payload = value.payload(permissions=self.guild.member_permissions(self.default_user))
            entry = {key: payload[key] for key in ("id", "name", "type", "parent_id", "guild_id", "permissions") if key in payload}
            return str(value.id), {"channels": {str(value.id): entry}}
        if option_type == commands.ATTACHMENT:
            filename, data = value
            attachment_id = self.snowflakes.next()
            self.attachment_data[attachment_id] = bytes(data)
            url = f"{self.http_url}/attachments/{self.default_channel.id}/{attachment_id}/{filename}"
            payload = attachment_payload(attachment_id, UploadedFile(filename, bytes(data)), url=url, ephemeral=True)
            return str(attachment_id), {"attachments": {str(attachment_id): payload}}
        if isinstance(value, (int, str)) and str(value).isdigit():
            return str(value), {}
        raise ValueError(f"Cannot use {value!r} for an option of type {option_type}; pass a FakeUser, FakeRole, FakeChannel or (filename, bytes).")

    def _component_message(self, custom_id: str, message: dict[str, Any] | int | InteractionRecord | None) -> dict[str, Any]:
        if isinstance(message, InteractionRecord):
            found = message.original_message
            if found is None:
                raise ValueError(f"Interaction {message.id} has no original response message to click on.")
            return found
        if isinstance(message, int):
            found = self.messages.get(message)
            if found is None:
                raise ValueError(f"No stored message {message}.")
            return found
        if isinstance(message, dict):
            return message

        for candidate in reversed(list(self.messages.values())):
            if find_component(candidate, custom_id) is not None:
                return candidate
        known = sorted({item for candidate in self.messages.values() for item in custom_ids(candidate)})
        raise ValueError(f"No stored message has a component {custom_id!r}; custom_ids on stored messages: {known}.")

    async def _dispatch_component(
        self,
        data: dict[str, Any],
        message: dict[str, Any],
        user: FakeUser | None,
        roles: Iterable[int | FakeRole] | None,
        permissions: Any,
        locale: str | None,
    ) -> InteractionRecord:
        user = self._acting_user(user, roles, permissions)
        channel = self.channels.get(int(message["channel_id"])) or self.default_channel
        return await self._dispatch_interaction(MESSAGE_COMPONENT, data["custom_id"], data, user, channel, message=message, locale=locale)

    def _last_modal(self, custom_id: str) -> tuple[InteractionRecord, dict[str, Any]]:
        for record in reversed(list(self.interactions.values())):
            callback = record.callback
            if callback is not None and callback.callback_type == MODAL and callback.data.get("custom_id") == custom_id:
                return record, callback.data
        raise ValueError(f"The bot never opened a modal {custom_id!r}.")

    async def _dispatch_interaction(
        self,
        interaction_type: int,
        name: str,
        data: dict[str, Any],
        user: FakeUser,
        channel: FakeChannel,
        *,
        message: dict[str, Any] | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """Build the INTERACTION_CREATE payload, record it and send it to the client."""
        interaction_id = self.snowflakes.next()
        token = make_interaction_token(interaction_id)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "channel_id": str(channel.id),
            "token": token,
            "version": 1,
            "locale": locale or user.locale,
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }

        if channel.type == DM:
            # NOTE: the DM fields follow Discord's documentation for a guild-installed app;
            # the {"0": "0"} integration owner was not checked against live Discord.
            payload.update(
                channel=channel.payload(),
                user=user.user_payload(),
                app_permissions=str(BOT_PERMISSIONS),
                context=BOT_DM_CONTEXT,
                authorizing_integration_owners={"0": "0"},
            )
        else:
            permissions = self.guild.member_permissions(user)
            payload.update(
                guild_id=str(self.guild.id),
                guild={"id": str(self.guild.id), "locale": self.guild.preferred_locale, "features": []},
                guild_locale=self.guild.preferred_locale,
                channel=channel.payload(permissions=permissions),
                member=user.member_payload(permissions=permissions),
                app_permissions=str(self.guild.member_permissions(self.bot_user)),
                context=GUILD_CONTEXT,
                authorizing_integration_owners={"0": str(self.guild.id)},
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)

        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=interaction_type,
            name=name,
            payload=payload,
            user=user,
            guild_id=None if channel.type == DM else self.guild.id,
            channel_id=channel.id,
            notifier=self.notifier,
            messages=self.messages,
            component_message_id=int(message["id"]) if message is not None else None,
        )
        self.interactions[interaction_id] = record
        self.interactions_by_token[token] = record

        if self.gateway.current is None:
            await self.wait_for_ready()
        await self.dispatch("INTERACTION_CREATE", payload)
        # The response window starts once the event is sent, or queued for a RESUME.
        record.dispatched_at = time.monotonic()
        log.info("Dispatched interaction %d (%s) from user %d", interaction_id, name, user.id)
        return record

    # Waiting and checking.

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0, message: str | Callable[[], str] = "Condition not met") -> T:
        """Return the first truthy `predicate()`, re-checked whenever the fake's state changes.

        Raises AssertionError with `message` and a summary of recent activity
        after `timeout` seconds.
        """

        def failure() -> str:
            text = message() if callable(message) else message
            return f"{text}. {self.describe_activity()}"

        return await self.notifier.wait_until(predicate, timeout, failure)

    def find_message(self, custom_id: str) -> dict[str, Any] | None:
        """Return the newest stored message with a component `custom_id`."""
        for message in reversed(list(self.messages.values())):
            if find_component(message, custom_id) is not None:
                return message
        return None

    def describe_activity(self) -> str:
        """Summarize recent requests and problems, for assertion messages."""
        recent = ", ".join(str(record) for record in self.requests[-8:]) or "none"
        parts = [f"Recent requests: {recent}."]
        if self.unknown_requests:
            parts.append(f"Unknown routes: {', '.join(str(record) for record in self.unknown_requests)}.")
        if self.error_responses:
            parts.append(f"Rejected: {', '.join(f'{record} {record.body!r:.200}' for record in self.error_responses[-5:])}.")
        parts.append(f"Gateway: {self.identify_count} identify, {self.resume_count} resume, {len(self.gateway_connections)} connection(s).")
        return " ".join(parts)

    def assert_no_unexpected_requests(self) -> None:
        """Raise AssertionError if the client called an unknown route or got an error response."""
        problems = [f"unknown route {record}" for record in self.unknown_requests]
        problems += [f"rejected {record}: {record.body!r:.300}" for record in self.error_responses]
        if problems:
            raise AssertionError("Unexpected requests: " + "; ".join(problems))

    def component_custom_ids(self) -> list[str]:
        """Return every custom_id on stored messages, newest message first."""
        ids: list[str] = []
        for message in reversed(list(self.messages.values())):
            ids.extend(component["custom_id"] for component in iter_components(message.get("components") or []) if "custom_id" in component)
        return ids


def make_token(user_id: int) -> str:
    """Return a token shaped like a bot token: base64 user id, timestamp, HMAC-like tail."""
    user_part = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{user_part}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(27)}"


def make_interaction_token(interaction_id: int) -> str:
    prefix = base64.urlsafe_b64encode(f"interaction:{interaction_id}:".encode()).decode().rstrip("=")
    return f"{prefix}{secrets.token_urlsafe(120)}"

