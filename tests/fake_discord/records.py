"""What the fake Discord saw: interactions, the responses to them, requests, heartbeats.

Tests read these records to check what the client under test sent. Every wait
is bounded and fails with an AssertionError that names what was missing.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, TypeVar

from .models import FakeUser

T = TypeVar("T")

EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Interaction callback types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Interaction types.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5


TOKEN_IN_PATH = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/]+")


def redact(path: str) -> str:
    """Replace the interaction token in a path, since it grants access like a password."""
    return TOKEN_IN_PATH.sub(r"\1<token>", path)


class ChangeNotifier:
    """Wakes waiters whenever the fake's state changes; single event loop only."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_until(
        self,
        predicate: Callable[[], T],
        timeout: float,
        message: str | Callable[[], str],
    ) -> T:
        """Return the first truthy value of `predicate()`, checked after every change.

        Raises AssertionError with `message` when `timeout` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value

            remaining = deadline - time.monotonic()
            if remaining <= 0:
                text = message() if callable(message) else message
                raise AssertionError(f"{text} (waited {timeout:.1f} s)")

            if self._event is None:
                self._event = asyncio.Event()
            try:
                await asyncio.wait_for(self._event.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass


class UploadedFile(NamedTuple):
    """A file from a multipart request: unpacks as (filename, data)."""

    filename: str
    data: bytes


@dataclass
class ResponseRecord:
    """One request the client made for an interaction: callback, followup, edit or deletion.

    `kind` is one of "callback", "followup", "edit_original", "edit_followup",
    "delete_original" and "delete_followup".
    """

    kind: str
    body: dict[str, Any]  # JSON body; for multipart requests the parsed payload_json
    files: list[UploadedFile] = field(default_factory=list)
    callback_type: int | None = None  # callbacks only
    message_id: int | None = None  # the message created, edited or deleted
    message: dict[str, Any] | None = None  # that message as stored right after the request
    received_at: float = field(default_factory=time.monotonic)

    @property
    def data(self) -> dict[str, Any]:
        """The message fields: a callback's `data`, or the whole body of a webhook request."""
        if self.kind == "callback":
            return self.body.get("data") or {}
        return self.body

    @property
    def flags(self) -> int:
        """The message flags the client sent in this request."""
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether the resulting message is ephemeral.

        The first followup after an ephemeral defer is ephemeral without sending
        the flag, so this reads the stored message when there is one.
        """
        if self.message is not None:
            return bool(int(self.message.get("flags", 0)) & EPHEMERAL)
        return bool(self.flags & EPHEMERAL)

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.data.get("components") or []

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    def describe(self) -> str:
        if self.kind == "callback":
            return f"callback type {self.callback_type}"
        return self.kind


@dataclass(eq=False)
class InteractionRecord:
    """An interaction the fake dispatched, and every response the client sent for it."""

    id: int
    token: str
    type: int  # 2 application command, 3 message component, 4 autocomplete, 5 modal submit
    name: str  # the command path ("train status") or the component's custom_id
    payload: dict[str, Any]  # the INTERACTION_CREATE data, as dispatched
    user: FakeUser
    guild_id: int | None
    channel_id: int
    notifier: ChangeNotifier = field(repr=False)
    messages: dict[int, dict[str, Any]] = field(repr=False)  # the fake's message store
    component_message_id: int | None = None  # the message a component was on
    original_message_id: int | None = None  # the message @original names
    followup_message_ids: list[int] = field(default_factory=list)
    loading: bool = False  # a deferred "thinking" message waits for its first followup
    expired: bool = False  # the callback came too late and got 10062 Unknown interaction, as on Discord
    responses: list[ResponseRecord] = field(default_factory=list)
    dispatched_at: float = field(default_factory=time.monotonic)

    @property
    def callback(self) -> ResponseRecord | None:
        """The accepted callback, or None before the client responded."""
        return next((response for response in self.responses if response.kind == "callback"), None)

    @property
    def callback_type(self) -> int | None:
        callback = self.callback
        return callback.callback_type if callback else None

    @property
    def followups(self) -> list[ResponseRecord]:
        return [response for response in self.responses if response.kind == "followup"]

    @property
    def files(self) -> list[UploadedFile]:
        """Every file uploaded for this interaction, in order."""
        return [file for response in self.responses for file in response.files]

    @property
    def original_message(self) -> dict[str, Any] | None:
        """The message @original names now, or None if there is none or it was deleted."""
        if self.original_message_id is None:
            return None
        return self.messages.get(self.original_message_id)

    def describe_responses(self) -> str:
        kinds = ", ".join(response.describe() for response in self.responses) or "nothing"
        return f"interaction {self.id} ({self.name!r}) received: {kinds}"

    async def wait_for_responses(
        self,
        count: int = 1,
        timeout: float = 10.0,
        *,
        kind: str | None = None,
    ) -> list[ResponseRecord]:
        """Wait until `count` responses (of `kind`, if given) arrived; return them all."""

        def matching() -> list[ResponseRecord]:
            return [response for response in self.responses if kind is None or response.kind == kind]

        await self.notifier.wait_until(
            lambda: len(matching()) >= count,
            timeout,
            lambda: f"Expected {count} {kind or 'response'}(s), but {self.describe_responses()}",
        )
        return matching()

    async def wait_for_callback(self, timeout: float = 5.0) -> ResponseRecord:
        await self.wait_for_responses(1, timeout, kind="callback")
        return self.callback  # type: ignore[return-value]


@dataclass
class RequestRecord:
    """One HTTP request to the fake's REST API."""

    method: str
    path: str  # without the /api/vN prefix
    query: dict[str, str]
    status: int = 0
    body: Any = None  # parsed JSON, or payload_json of a multipart request
    file_names: list[str] = field(default_factory=list)
    received_at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        return f"{self.method} {redact(self.path)} -> {self.status}"


class Heartbeat(NamedTuple):
    received_at: float  # time.monotonic() when the heartbeat arrived
    sequence: int | None  # the last sequence number the client had seen
    connection_id: int


@dataclass
class GatewayConnection:
    """One websocket connection to the fake gateway."""

    id: int
    path: str
    query: dict[str, str]
    opened_at: float = field(default_factory=time.monotonic)
    opened_with: str | None = None  # "identify", "resume" or None before either arrived
    session_id: str | None = None
    closed_at: float | None = None
    close_code: int | None = None

    @property
    def compress(self) -> str | None:
        return self.query.get("compress")
