"""Point discord.py at a fake Discord for one test, and run a client against it.

discord.py 2.7 reads two addresses: `discord.http.Route.BASE` for REST, and
`DiscordWebSocket.DEFAULT_GATEWAY` for the first gateway connection of a plain
`Client` (only `AutoShardedClient` requests GET /gateway/bot). Later connections
use READY's `resume_gateway_url`, which the fake points at itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl

from .server import FakeDiscord

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ExternalRequestBlocked(AssertionError):
    """A test tried to reach a host other than the loopback interface."""


def patch_discord_py(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Send discord.py's REST and gateway traffic to `fake` until the test ends.

    Also makes every aiohttp request to a non-loopback host raise
    ExternalRequestBlocked. Returns the list where those blocked URLs are
    recorded, so a test can assert it stayed empty.
    """
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_url)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))

    # NOTE: this wraps aiohttp's private ClientSession._request, which every
    # request and ws_connect of aiohttp 3.x goes through; recheck it on upgrades.
    blocked: list[str] = []
    original_request = aiohttp.ClientSession._request

    async def loopback_only_request(self: aiohttp.ClientSession, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        url = yarl.URL(str(str_or_url))
        if url.host not in LOOPBACK_HOSTS:
            blocked.append(f"{method} {url}")
            raise ExternalRequestBlocked(f"Blocked {method} {url}: tests may only reach 127.0.0.1")
        return await original_request(self, method, str_or_url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", loopback_only_request)
    return blocked


@contextlib.asynccontextmanager
async def running_client(
    fake: FakeDiscord,
    client: discord.Client,
    *,
    token: str | None = None,
    timeout: float = 15.0,
    wait_until_ready: bool = True,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `client.start(token)` in a task until the block ends, then close the client.

    Waits until the fake sent READY and GUILD_CREATE and, with
    `wait_until_ready`, until the client dispatched on_ready (discord.py waits
    `guild_ready_timeout` seconds after the last GUILD_CREATE for that, 2 s by
    default). Fails at once if the client task ends early. Yields the task.
    """
    task = asyncio.create_task(client.start(token or fake.token), name="discord-client")
    try:
        await _wait_or_fail(task, fake.wait_for_ready(timeout), "the fake's READY")
        if wait_until_ready:
            await _wait_or_fail(task, asyncio.wait_for(client.wait_until_ready(), timeout), "the client's on_ready")
        yield task
    finally:
        await client.close()
        try:
            await asyncio.wait_for(task, timeout)
        except asyncio.TimeoutError:
            log.error("The discord.py client did not stop within %.0f s after close()", timeout)
            raise
        except (asyncio.CancelledError, discord.DiscordException, aiohttp.ClientError, OSError) as error:
            log.info("The discord.py client stopped with %r", error)


async def _wait_or_fail(task: asyncio.Task[None], awaitable: Any, what: str) -> None:
    """Await `awaitable`, but raise the client's error if its task ends first."""
    waiter = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        waiter.result()
        return

    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError, AssertionError, asyncio.TimeoutError):
        await waiter
    error = task.exception()
    raise AssertionError(f"The client stopped before {what}: {error!r}") from error
