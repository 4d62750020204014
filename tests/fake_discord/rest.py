"""The fake REST API: the routes a bot calls at login, for command sync and for interactions.

Routes live under /api/v9 and /api/v10 as on discord.com. Any other route
returns 404 with Discord's error body and lands in `fake.unknown_requests`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import commands
from .messages import DiscordError, form_error, unknown, validate_message
from .models import FakeChannel
from .records import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    PING,
    PONG,
    UPDATE_MESSAGE,
    InteractionRecord,
    RequestRecord,
    ResponseRecord,
    UploadedFile,
    redact,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

API_PREFIX = "/api/v{version:\\d+}"
RECORD_KEY = web.RequestKey("record", RequestRecord)

# Callback types Discord accepts for each interaction type.
ALLOWED_CALLBACKS = {
    PING: {PONG},
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE},
}

MAX_AUTOCOMPLETE_CHOICES = 25

# Flags a bot may set on a new message: suppress embeds, ephemeral, suppress notifications, components v2.
SETTABLE_MESSAGE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)


async def read_body(request: web.Request) -> tuple[Any, list[tuple[int, UploadedFile]]]:
    """Return the JSON body and the uploaded files (with their files[N] index) of a request."""
    if request.content_type == "multipart/form-data":
        body: Any = None
        files: list[tuple[int, UploadedFile]] = []
        reader = await request.multipart()
        async for part in reader:
            name = part.name or ""
            if name == "payload_json":
                body = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                data = bytes(await part.read(decode=False))
                files.append((int(name[6:-1]), UploadedFile(part.filename or name, data)))
            else:
                raise form_error(name or "multipart", "UNKNOWN_FIELD", f"Unexpected multipart field {name!r}.")
        return body, files

    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def json_response(payload: Any, status: int = 200) -> web.Response:
    # discord.py 2.7 parses a body as JSON only if Content-Type is exactly "application/json",
    # which is what Discord sends, so no charset parameter here.
    return web.Response(body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json"})


def no_content() -> web.Response:
    return web.Response(status=204)


def is_true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class RestApi:
    """Route handlers bound to one fake Discord."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        routes = [
            ("GET", "/users/@me", self.get_current_user, True),
            ("GET", "/users/{user_id:\\d+}", self.get_user, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/applications/@me", self.get_application, True),
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            # Application commands, global and per guild.
            ("GET", "/applications/{app_id}/commands", self.get_commands, True),
            ("PUT", "/applications/{app_id}/commands", self.bulk_overwrite_commands, True),
            ("POST", "/applications/{app_id}/commands", self.upsert_command, True),
            ("GET", "/applications/{app_id}/commands/{command_id:\\d+}", self.get_command, True),
            ("PATCH", "/applications/{app_id}/commands/{command_id:\\d+}", self.edit_command, True),
            ("DELETE", "/applications/{app_id}/commands/{command_id:\\d+}", self.delete_command, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self.get_commands, True),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self.bulk_overwrite_commands, True),
            ("POST", "/applications/{app_id}/guilds/{guild_id}/commands", self.upsert_command, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/permissions", self.get_command_permissions, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id:\\d+}", self.get_command, True),
            ("PATCH", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id:\\d+}", self.edit_command, True),
            ("DELETE", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id:\\d+}", self.delete_command, True),
            # Interactions: the interaction token authenticates these, not the bot token.
            ("POST", "/interactions/{interaction_id:\\d+}/{token}/callback", self.interaction_callback, False),
            ("POST", "/webhooks/{app_id:\\d+}/{token}", self.execute_webhook, False),
            ("GET", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.get_webhook_message, False),
            ("PATCH", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.edit_webhook_message, False),
            ("DELETE", "/webhooks/{app_id:\\d+}/{token}/messages/{message_id}", self.delete_webhook_message, False),
            # Channels, messages and the guild.
            ("GET", "/channels/{channel_id:\\d+}", self.get_channel, True),
            ("POST", "/channels/{channel_id:\\d+}/typing", self.trigger_typing, True),
            ("POST", "/channels/{channel_id:\\d+}/messages", self.create_channel_message, True),
            ("GET", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.get_channel_message, True),
            ("PATCH", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.edit_channel_message, True),
            ("DELETE", "/channels/{channel_id:\\d+}/messages/{message_id:\\d+}", self.delete_channel_message, True),
            ("GET", "/guilds/{guild_id:\\d+}", self.get_guild, True),
            ("GET", "/guilds/{guild_id:\\d+}/channels", self.get_guild_channels, True),
            ("GET", "/guilds/{guild_id:\\d+}/roles", self.get_guild_roles, True),
            ("GET", "/guilds/{guild_id:\\d+}/members/{user_id:\\d+}", self.get_guild_member, True),
        ]
        for method, path, handler, needs_bot_token in routes:
            app.router.add_route(method, API_PREFIX + path, self.authenticated(handler) if needs_bot_token else handler)
        app.router.add_get("/attachments/{channel_id:\\d+}/{attachment_id:\\d+}/{filename}", self.get_attachment)
        app.router.add_route("*", "/{tail:.*}", self.unknown_route)

    # Middleware and authentication.

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/v"):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else path
        record = RequestRecord(request.method, path, dict(request.query))
        request[RECORD_KEY] = record
        self.fake.requests.append(record)

        try:
            response = await handler(request)
        except DiscordError as error:
            response = json_response(error.body(), error.status)
            self.fake.error_responses.append(record)
            log.info("%s %s answered %d: %s", request.method, redact(path), error.status, error.body())
        record.status = response.status
        self.fake.notifier.notify()
        return response

    def authenticated(self, handler: Any) -> Any:
        async def check_token(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            token = header[4:] if header.startswith("Bot ") else None
            if not self.fake.token_is_valid(token):
                raise DiscordError(401, 0, "401: Unauthorized")
            return await handler(request)

        return check_token

    async def unknown_route(self, request: web.Request) -> web.Response:
        record: RequestRecord = request[RECORD_KEY]
        try:
            record.body, files = await read_body(request)
            record.file_names = [file.filename for _, file in files]
        except (DiscordError, ValueError) as error:
            log.info("Unreadable body on unknown route %s %s: %s", request.method, request.path, error)
        self.fake.unknown_requests.append(record)
        log.warning("Unknown route %s %s", request.method, redact(request.path))
        raise DiscordError(404, 0, "404: Not Found")

    async def read_recorded_body(self, request: web.Request) -> tuple[Any, list[tuple[int, UploadedFile]]]:
        body, files = await read_body(request)
        record: RequestRecord = request[RECORD_KEY]
        record.body = body
        record.file_names = [file.filename for _, file in files]
        return body, files

    # Login.

    async def get_current_user(self, request: web.Request) -> web.Response:
        return json_response(self.fake.bot_user.user_payload() | {"verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise unknown("User", 10013)
        return json_response(user.user_payload())

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.fake.application_payload())

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
            }
        )

    # Application commands.

    def command_scope(self, request: web.Request) -> int | None:
        """Return the guild id of a guild command route, None for global routes."""
        if int(request.match_info["app_id"]) != self.fake.application_id:
            raise unknown("Application", 10002)
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if int(guild_id) != self.fake.guild.id:
            raise DiscordError(403, 50001, "Missing Access")
        return int(guild_id)

    async def get_commands(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        return json_response(self.fake.synced_commands.get(scope, []))

    async def bulk_overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        body, _ = await self.read_recorded_body(request)
        commands.validate_command_list(body)
        stored = self.fake.store_commands(scope, body)
        return json_response(stored)

    async def upsert_command(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        body, _ = await self.read_recorded_body(request)
        existing = [command for command in self.fake.synced_commands.get(scope, []) if not same_command(command, body)]
        commands.validate_command_list([*existing, body])
        stored = self.fake.store_commands(scope, [*existing, body])
        return json_response(next(command for command in stored if same_command(command, body)), 201)

    def find_command(self, request: web.Request, scope: int | None) -> dict[str, Any]:
        command_id = request.match_info["command_id"]
        for command in self.fake.synced_commands.get(scope, []):
            if command["id"] == command_id:
                return command
        raise unknown("application command", 10063)

    async def get_command(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        return json_response(self.find_command(request, scope))

    async def edit_command(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        command = self.find_command(request, scope)
        body, _ = await self.read_recorded_body(request)
        edited = {**command, **body}
        others = [other for other in self.fake.synced_commands.get(scope, []) if other["id"] != command["id"]]
        commands.validate_command_list([*others, edited])
        stored = self.fake.store_commands(scope, [*others, edited])
        return json_response(next(item for item in stored if item["id"] == command["id"]))

    async def delete_command(self, request: web.Request) -> web.Response:
        scope = self.command_scope(request)
        command = self.find_command(request, scope)
        others = [other for other in self.fake.synced_commands.get(scope, []) if other["id"] != command["id"]]
        self.fake.store_commands(scope, others)
        return no_content()

    async def get_command_permissions(self, request: web.Request) -> web.Response:
        self.command_scope(request)
        return json_response([])

    # Interaction callbacks.

    async def interaction_callback(self, request: web.Request) -> web.Response:
        record = self.fake.interactions.get(int(request.match_info["interaction_id"]))
        if record is None or record.token != request.match_info["token"]:
            raise unknown("interaction", 10062)
        body, files = await self.read_recorded_body(request)
        body = body or {}

        # Discord's rules for the one initial response.
        if record.callback is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - record.dispatched_at
        timeout = self.fake.callback_timeout
        if timeout is not None and elapsed > timeout:
            record.expired = True
            log.warning("Interaction %d answered after %.2f s, later than the %.1f s Discord allows", record.id, elapsed, timeout)
            raise unknown("interaction", 10062)
        callback_type = body.get("type")
        if callback_type not in ALLOWED_CALLBACKS.get(record.type, set()):
            raise form_error("type", "INTERACTION_CALLBACK_TYPE_INVALID", f"Callback type {callback_type!r} is invalid for interaction type {record.type}.")

        data = body.get("data") or {}
        uploads = [file for _, file in sorted(files, key=lambda item: item[0])]
        message = self.apply_callback(record, callback_type, data, files)

        response = ResponseRecord(
            kind="callback",
            body=body,
            files=uploads,
            callback_type=callback_type,
            message_id=int(message["id"]) if message else None,
            message=dict(message) if message else None,
        )
        record.responses.append(response)
        log.info("Interaction %d (%s) got callback type %d", record.id, record.name, callback_type)
        if message is not None:
            await self.fake.dispatch_message_event("MESSAGE_UPDATE" if callback_type == UPDATE_MESSAGE else "MESSAGE_CREATE", message)
        self.fake.notifier.notify()

        if not is_true(request.query.get("with_response")):
            return no_content()
        return json_response(self.callback_response(record, callback_type, message))

    def apply_callback(
        self,
        record: InteractionRecord,
        callback_type: int,
        data: dict[str, Any],
        files: list[tuple[int, UploadedFile]],
    ) -> dict[str, Any] | None:
        """Create or edit the message a callback stands for, and return it."""
        uploads = [file for _, file in files]
        ephemeral = int(data.get("flags") or 0) & EPHEMERAL

        if callback_type == CHANNEL_MESSAGE:
            validate_message(data, uploads, size_limit=self.fake.attachment_size_limit, creating=True, field_prefix="data.")
            message = self.fake.create_message(record.channel_id, data, files, interaction=record)
            record.original_message_id = int(message["id"])
            return message

        if callback_type == DEFERRED_CHANNEL_MESSAGE:
            loading = {"content": "", "flags": ephemeral}
            message = self.fake.create_message(record.channel_id, loading, [], interaction=record, loading=True)
            record.original_message_id = int(message["id"])
            record.loading = True
            return message

        if callback_type == DEFERRED_UPDATE_MESSAGE:
            record.original_message_id = record.component_message_id
            return None

        if callback_type == UPDATE_MESSAGE:
            validate_message(data, uploads, size_limit=self.fake.attachment_size_limit, creating=False, field_prefix="data.")
            message = self.fake.messages.get(record.component_message_id or 0)
            if message is None:
                raise unknown("Message", 10008)
            record.original_message_id = record.component_message_id
            return self.fake.edit_message(message, data, files)

        if callback_type == AUTOCOMPLETE_RESULT:
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > MAX_AUTOCOMPLETE_CHOICES:
                raise form_error("data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be a list of {MAX_AUTOCOMPLETE_CHOICES} or fewer choices.")
            return None

        if callback_type == MODAL:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise form_error(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            return None

        return None

    def callback_response(self, record: InteractionRecord, callback_type: int, message: dict[str, Any] | None) -> dict[str, Any]:
        """Return the body Discord sends for a callback with ?with_response=true."""
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        resource: dict[str, Any] = {"type": callback_type}
        if message is not None:
            interaction["response_message_id"] = message["id"]
            interaction["response_message_loading"] = callback_type == DEFERRED_CHANNEL_MESSAGE
            interaction["response_message_ephemeral"] = bool(int(message.get("flags", 0)) & EPHEMERAL)
            resource["message"] = message
        return {"interaction": interaction, "resource": resource}

    # Followups and the original response, through the interaction's webhook.

    def webhook_interaction(self, request: web.Request) -> InteractionRecord:
        record = self.fake.interactions_by_token.get(request.match_info["token"])
        if record is None or int(request.match_info["app_id"]) != self.fake.application_id:
            raise unknown("Webhook", 10015)
        return record

    def webhook_message(self, record: InteractionRecord, message_id_text: str) -> tuple[dict[str, Any], bool]:
        """Return the message a webhook route names, and whether it is @original."""
        if message_id_text == "@original":
            message = record.original_message
            if message is None:
                raise unknown("Message", 10008)
            return message, True

        try:
            message_id = int(message_id_text)
        except ValueError:
            raise unknown("Message", 10008) from None
        if message_id != record.original_message_id and message_id not in record.followup_message_ids:
            raise unknown("Message", 10008)
        message = self.fake.messages.get(message_id)
        if message is None:
            raise unknown("Message", 10008)
        return message, message_id == record.original_message_id

    async def execute_webhook(self, request: web.Request) -> web.Response:
        record = self.webhook_interaction(request)
        body, files = await self.read_recorded_body(request)
        body = body or {}
        uploads = [file for _, file in sorted(files, key=lambda item: item[0])]

        # Discord accepts followups only after the initial response.
        if record.callback_type not in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            raise unknown("Webhook", 10015)
        validate_message(body, uploads, size_limit=self.fake.attachment_size_limit, creating=True)

        # The first followup after a deferred response replaces the "thinking" message,
        # and that message keeps the ephemeral choice made when deferring.
        original = record.original_message
        if record.loading and original is not None:
            message = self.fake.edit_message(original, body, files, finish_loading=True)
            record.loading = False
            event = "MESSAGE_UPDATE"
        else:
            message = self.fake.create_message(record.channel_id, body, files, interaction=record)
            event = "MESSAGE_CREATE"
        record.followup_message_ids.append(int(message["id"]))

        record.responses.append(
            ResponseRecord(kind="followup", body=body, files=uploads, message_id=int(message["id"]), message=dict(message))
        )
        log.info("Interaction %d (%s) got followup message %s", record.id, record.name, message["id"])
        await self.fake.dispatch_message_event(event, message)
        self.fake.notifier.notify()

        if is_true(request.query.get("wait")):
            return json_response(message)
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        record = self.webhook_interaction(request)
        message, _ = self.webhook_message(record, request.match_info["message_id"])
        return json_response(message)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        record = self.webhook_interaction(request)
        message, is_original = self.webhook_message(record, request.match_info["message_id"])
        body, files = await self.read_recorded_body(request)
        body = body or {}
        uploads = [file for _, file in sorted(files, key=lambda item: item[0])]

        finish_loading = is_original and record.loading
        validate_message(body, uploads, size_limit=self.fake.attachment_size_limit, creating=finish_loading)
        edited = self.fake.edit_message(message, body, files, finish_loading=finish_loading)
        if finish_loading:
            record.loading = False

        kind = "edit_original" if is_original else "edit_followup"
        record.responses.append(ResponseRecord(kind=kind, body=body, files=uploads, message_id=int(edited["id"]), message=dict(edited)))
        log.info("Interaction %d (%s) edited message %s", record.id, record.name, edited["id"])
        await self.fake.dispatch_message_event("MESSAGE_UPDATE", edited)
        self.fake.notifier.notify()
        return json_response(edited)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        record = self.webhook_interaction(request)
        message, is_original = self.webhook_message(record, request.match_info["message_id"])
        self.fake.delete_message(message)

        kind = "delete_original" if is_original else "delete_followup"
        record.responses.append(ResponseRecord(kind=kind, body={}, message_id=int(message["id"])))
        log.info("Interaction %d (%s) deleted message %s", record.id, record.name, message["id"])
        await self.fake.dispatch_message_event("MESSAGE_DELETE", message)
        self.fake.notifier.notify()
        return no_content()

    # Channels and messages.

    def channel(self, request: web.Request) -> FakeChannel:
        channel = self.fake.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise unknown("Channel", 10003)
        return channel

    def channel_message(self, request: web.Request) -> dict[str, Any]:
        channel = self.channel(request)
        message = self.fake.messages.get(int(request.match_info["message_id"]))
        if message is None or int(message["channel_id"]) != channel.id or int(message.get("flags", 0)) & EPHEMERAL:
            raise unknown("Message", 10008)
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.channel(request).payload())

    async def trigger_typing(self, request: web.Request) -> web.Response:
        self.channel(request)
        return no_content()

    async def create_channel_message(self, request: web.Request) -> web.Response:
        channel = self.channel(request)
        body, files = await self.read_recorded_body(request)
        body = body or {}
        uploads = [file for _, file in sorted(files, key=lambda item: item[0])]
        if int(body.get("flags") or 0) & EPHEMERAL:
            raise form_error("flags", "MESSAGE_FLAGS_INVALID", "Only interaction responses can be ephemeral.")
        validate_message(body, uploads, size_limit=self.fake.attachment_size_limit, creating=True)

        message = self.fake.create_message(channel.id, body, files)
        self.fake.channel_messages.append(message)
        await self.fake.dispatch_message_event("MESSAGE_CREATE", message)
        return json_response(message)

    async def get_channel_message(self, request: web.Request) -> web.Response:
        return json_response(self.channel_message(request))

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        message = self.channel_message(request)
        if message["author"]["id"] != str(self.fake.bot_user.id):
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self.read_recorded_body(request)
        body = body or {}
        validate_message(body, [file for _, file in files], size_limit=self.fake.attachment_size_limit, creating=False)
        edited = self.fake.edit_message(message, body, files)
        await self.fake.dispatch_message_event("MESSAGE_UPDATE", edited)
        return json_response(edited)

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        message = self.channel_message(request)
        self.fake.delete_message(message)
        await self.fake.dispatch_message_event("MESSAGE_DELETE", message)
        return no_content()

    async def create_dm(self, request: web.Request) -> web.Response:
        body, _ = await self.read_recorded_body(request)
        user = self.fake.users.get(int((body or {}).get("recipient_id", 0)))
        if user is None:
            raise unknown("User", 10013)
        return json_response(self.fake.dm_channel(user).payload())

    # Guild.

    def check_guild(self, request: web.Request) -> None:
        if int(request.match_info["guild_id"]) != self.fake.guild.id:
            raise unknown("Guild", 10004)

    async def get_guild(self, request: web.Request) -> web.Response:
        self.check_guild(request)
        return json_response(self.fake.guild.guild_payload())

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        self.check_guild(request)
        channels = [channel.payload() for channel in self.fake.guild.channels.values()]
        return json_response(channels)

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        self.check_guild(request)
        return json_response([role.payload() for role in self.fake.guild.roles.values()])

    async def get_guild_member(self, request: web.Request) -> web.Response:
        self.check_guild(request)
        member = self.fake.guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise unknown("Member", 10007)
        return json_response(member.member_payload())

    # Attachments, served where the attachment objects' URLs point.

    async def get_attachment(self, request: web.Request) -> web.Response:
        data = self.fake.attachment_data.get(int(request.match_info["attachment_id"]))
        if data is None:
            raise unknown("Attachment", 10008)
        return web.Response(body=data, content_type="application/octet-stream")


def same_command(stored: dict[str, Any], payload: dict[str, Any]) -> bool:
    return stored["name"] == payload.get("name") and int(stored.get("type", 1)) == int(payload.get("type", 1))

