"""The fake gateway: a websocket that speaks Discord's gateway protocol v10.

It sends HELLO, replies to IDENTIFY with READY and one GUILD_CREATE per guild,
acknowledges heartbeats, numbers every dispatch, keeps each session's history
and replays the missed part when a client RESUMEs. Tests can drop the
connection, send RECONNECT or invalidate the session to exercise the client's
recovery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .records import GatewayConnection, Heartbeat

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

# Opcodes.
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Close codes.
UNKNOWN_OPCODE = 4001
DECODE_ERROR = 4002
NOT_AUTHENTICATED = 4003
AUTHENTICATION_FAILED = 4004
ALREADY_AUTHENTICATED = 4005
INVALID_API_VERSION = 4012
INVALID_INTENTS = 4013
DISALLOWED_INTENTS = 4014

GUILD_MEMBERS_INTENT = 1 << 1
GUILD_MESSAGES_INTENT = 1 << 9

SUPPORTED_API_VERSIONS = ("9", "10")
TRACE = ["fake-discord-gateway"]


@dataclass(eq=False)
class GatewaySession:
    """A session from IDENTIFY on; it outlives connections so a client can resume it."""

    session_id: str
    intents: int
    sequence: int = 0
    history: list[tuple[int, str]] = field(default_factory=list)  # (sequence, frame text) of every dispatch
    connection: Connection | None = None
    invalidated: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Connection:
    """One websocket connection; serializes frames because zlib-stream is stateful."""

    def __init__(self, ws: web.WebSocketResponse, record: GatewayConnection, request: web.Request) -> None:
        self.ws = ws
        self.record = record
        self.request = request
        self.send_lock = asyncio.Lock()

        # discord.py requests zlib-stream unless zstandard is installed: one zlib
        # stream per connection, each message ending in a Z_SYNC_FLUSH marker.
        # NOTE: zstd-stream is not implemented; with it the fake sends plain text
        # frames, which discord.py also reads.
        self.compressor = zlib.compressobj() if record.compress == "zlib-stream" else None

    async def send_text(self, text: str) -> None:
        async with self.send_lock:
            if self.compressor is None:
                await self.ws.send_str(text)
                return
            frame = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(frame)

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send_text(json.dumps(payload))


class Gateway:
    """All gateway state of one fake Discord."""

    def __init__(self, fake: FakeDiscord, heartbeat_interval_ms: int) -> None:
        self.fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ack_heartbeats = True  # False simulates a zombie connection
        self.disallowed_intents = 0  # intent bits IDENTIFY is rejected for, with close code 4014

        self.sessions: dict[str, GatewaySession] = {}
        self.current: GatewaySession | None = None
        self.connections: list[GatewayConnection] = []
        self.heartbeats: list[Heartbeat] = []
        self.identify_payloads: list[dict[str, Any]] = []  # IDENTIFY data without the token
        self.presence_updates: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self.ready_count = 0  # READY and GUILD_CREATE sent completely

        self._live: set[Connection] = set()
        self._hold_until = 0.0  # new connections get HELLO only after this time.monotonic()

    # Connection handling.

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)

        record = GatewayConnection(id=len(self.connections) + 1, path=request.path, query=dict(request.query))
        self.connections.append(record)
        connection = Connection(ws, record, request)
        self._live.add(connection)
        log.info("Gateway connection %d opened on %s with %s", record.id, record.path, record.query)

        session: GatewaySession | None = None
        try:
            if not await self._check_query(connection):
                return ws

            delay = self._hold_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await connection.send_json({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": TRACE}})

            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    await self._close(connection, DECODE_ERROR, "Error while decoding payload.")
                    break

                try:
                    next_session = await self._receive(connection, session, payload)
                except ConnectionError as error:
                    log.info("Gateway connection %d lost while replying: %s", record.id, error)
                    break
                if next_session is None and ws.closed:
                    break
                session = next_session or session
        finally:
            self._live.discard(connection)
            record.closed_at = time.monotonic()
            if record.close_code is None:
                record.close_code = ws.close_code
            if session is not None and session.connection is connection:
                session.connection = None
            log.info("Gateway connection %d closed with code %s", record.id, record.close_code)
            self.fake.notifier.notify()
        return ws

    async def _check_query(self, connection: Connection) -> bool:
        query = connection.record.query
        if query.get("v", "10") not in SUPPORTED_API_VERSIONS:
            await self._close(connection, INVALID_API_VERSION, "Invalid API version.")
            return False
        if query.get("encoding", "json") != "json":
            log.error("The fake gateway supports encoding=json only, not %r", query.get("encoding"))
            await self._close(connection, DECODE_ERROR, "Only encoding=json is supported.")
            return False
        return True

    async def _receive(
        self,
        connection: Connection,
        session: GatewaySession | None,
        payload: dict[str, Any],
    ) -> GatewaySession | None:
        """Handle one client payload; return the session the connection belongs to now."""
        op = payload.get("op")
        data = payload.get("d")

        if op == HEARTBEAT:
            self.heartbeats.append(Heartbeat(time.monotonic(), data, connection.record.id))
            self.fake.notifier.notify()
            if self.ack_heartbeats:
                await connection.send_json({"op": HEARTBEAT_ACK})
            return session

        if op == IDENTIFY:
            if session is not None:
                await self._close(connection, ALREADY_AUTHENTICATED, "Already authenticated.")
                return None
            return await self._identify(connection, data or {})

        if op == RESUME:
            if session is not None:
                await self._close(connection, ALREADY_AUTHENTICATED, "Already authenticated.")
                return None
            return await self._resume(connection, data or {})

        if session is None:
            await self._close(connection, NOT_AUTHENTICATED, "Not authenticated.")
            return None

        if op == PRESENCE_UPDATE:
            self.presence_updates.append(data)
            self.fake.notifier.notify()
        elif op == REQUEST_GUILD_MEMBERS:
            await self._send_member_chunk(session, data or {})
        elif op == VOICE_STATE_UPDATE:
            log.info("Ignoring a voice state update: the fake has no voice")
        else:
            await self._close(connection, UNKNOWN_OPCODE, "Unknown opcode.")
            return None
        return session

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        connection.record.close_code = code
        log.info("Closing gateway connection %d with %d %s", connection.record.id, code, reason)
        await connection.ws.close(code=code, message=reason.encode())

    # Sessions.

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> GatewaySession | None:
        if not self.fake.token_is_valid(data.get("token")):
            await self._close(connection, AUTHENTICATION_FAILED, "Authentication failed.")
            return None

        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await self._close(connection, INVALID_INTENTS, "Invalid intent(s).")
            return None
        if intents & self.disallowed_intents:
            await self._close(connection, DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None

        # Open the session.
        session = GatewaySession(session_id=secrets.token_hex(16), intents=intents)
        self.sessions[session.session_id] = session
        self.current = session
        self.identify_count += 1
        self.identify_payloads.append({key: value for key, value in data.items() if key != "token"})
        connection.record.opened_with = "identify"
        connection.record.session_id = session.session_id

        # Send READY, then the guilds.
        async with session.lock:
            session.connection = connection
            await self._dispatch_locked(session, "READY", self.fake.ready_payload(session, data.get("shard")))
            for guild_payload in self.fake.guild_create_payloads(include_all_members=bool(intents & GUILD_MEMBERS_INTENT)):
                await self._dispatch_locked(session, "GUILD_CREATE", guild_payload)
        self.ready_count += 1
        log.info("Gateway session %s identified; intents %d", session.session_id, intents)
        self.fake.notifier.notify()
        return session

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> GatewaySession | None:
        if not self.fake.token_is_valid(data.get("token")):
            await self._close(connection, AUTHENTICATION_FAILED, "Authentication failed.")
            return None

        session = self.sessions.get(data.get("session_id"))
        if session is None or session.invalidated:
            log.info("Rejecting RESUME of unknown or invalidated session %s", data.get("session_id"))
            await connection.send_json({"op": INVALID_SESSION, "d": False})
            return None

        # Take the session over and replay what the client missed, then RESUMED.
        last_seen = data.get("seq") or 0
        async with session.lock:
            previous = session.connection
            session.connection = connection
            if previous is not None and previous is not connection:
                asyncio.create_task(previous.ws.close(code=4009, message=b"Session taken over."))
            missed = [text for sequence, text in session.history if sequence > last_seen]
            for text in missed:
                await connection.send_text(text)
            await self._dispatch_locked(session, "RESUMED", {"_trace": TRACE})

        self.resume_count += 1
        connection.record.opened_with = "resume"
        connection.record.session_id = session.session_id
        log.info("Gateway session %s resumed after sequence %s; replayed %d event(s)", session.session_id, last_seen, len(missed))
        self.fake.notifier.notify()
        return session

    async def _send_member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        members = self.fake.guild.members.values()
        query = data.get("query") or ""
        user_ids = {int(user_id) for user_id in data.get("user_ids") or []}
        selected = [
            member.member_payload()
            for member in members
            if (not user_ids or member.id in user_ids) and member.username.startswith(query)
        ]
        if data.get("limit"):
            selected = selected[: data["limit"]]
        chunk = {
            "guild_id": str(data.get("guild_id")),
            "members": selected,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk, session=session)

    # Dispatch.

    async def dispatch(self, event: str, data: dict[str, Any], *, session: GatewaySession | None = None) -> int:
        """Send a numbered event; while the client is away it waits in the history for RESUME.

        Returns the event's sequence number.
        """
        session = session or self.current
        if session is None:
            raise AssertionError(f"Cannot dispatch {event}: no client has identified yet. Await fake.wait_for_ready() first.")
        async with session.lock:
            return await self._dispatch_locked(session, event, data)

    async def _dispatch_locked(self, session: GatewaySession, event: str, data: dict[str, Any]) -> int:
        session.sequence += 1
        text = json.dumps({"op": DISPATCH, "t": event, "s": session.sequence, "d": data})
        session.history.append((session.sequence, text))
        connection = session.connection
        if connection is not None and not connection.ws.closed:
            try:
                await connection.send_text(text)
            except (ConnectionError, RuntimeError) as error:
                # The event stays in the history and is replayed on RESUME.
                log.info("Gateway event %s %d not delivered: %s", event, session.sequence, error)
        return session.sequence

    # Faults a test can inject.

    def current_connection(self) -> Connection:
        session = self.current
        if session is None or session.connection is None:
            raise AssertionError("No client is connected to the fake gateway.")
        return session.connection

    async def drop(self, *, code: int = 4000, abort: bool = False, reconnect_delay: float = 0.0, timeout: float = 10.0) -> None:
        """Close the current connection; the session stays resumable.

        `abort` closes the TCP connection without a close frame. `reconnect_delay`
        delays HELLO on new connections by that many seconds, so events sent
        meanwhile wait for the RESUME.
        """
        connection = self.current_connection()
        session = self.current
        self._hold_until = time.monotonic() + reconnect_delay
        connection.record.close_code = code if not abort else None
        log.info("Dropping gateway connection %d (%s)", connection.record.id, "abort" if abort else f"close {code}")

        if abort:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        else:
            await connection.ws.close(code=code, message=b"Dropped by the test.")

        await self.fake.notifier.wait_until(
            lambda: session.connection is not connection,
            timeout,
            f"Gateway connection {connection.record.id} did not close after the drop",
        )

    async def send_reconnect(self) -> None:
        """Send opcode 7 RECONNECT, after which the client reconnects and resumes."""
        connection = self.current_connection()
        await connection.send_json({"op": RECONNECT, "d": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send opcode 9 INVALID_SESSION; unless `resumable`, the client must IDENTIFY again."""
        connection = self.current_connection()
        if not resumable and self.current is not None:
            self.current.invalidated = True
        await connection.send_json({"op": INVALID_SESSION, "d": resumable})

    async def close_all(self, code: int = 1001) -> None:
        for connection in list(self._live):
            if not connection.ws.closed:
                await connection.ws.close(code=code, message=b"Fake Discord is shutting down.")
