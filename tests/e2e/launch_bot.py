"""Run the real bot (`bot.__main__.main`) as a process that talks to a fake Discord.

    FAKE_DISCORD_URL=http://127.0.0.1:PORT DISCORD_TOKEN=... GAN_EXPORT=DIR \
        .venv/bin/python tests/e2e/launch_bot.py --discord

Test use only. Before the bot starts, this points discord.py's REST base at
FAKE_DISCORD_URL/api/v10 and its first gateway connection at
ws://HOST:PORT/gateway, the addresses the fake in tests/fake_discord serves.
It also makes every aiohttp request to a host other than the loopback
interface fail, so a mistake cannot reach discord.com. The arguments and the
exit status are those of `python -m bot`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import yarl

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ExternalRequestBlocked(ConnectionError):
    """The bot tried to reach a host other than the loopback interface."""


def read_fake_url(environ: dict[str, str]) -> yarl.URL:
    """Return FAKE_DISCORD_URL as a URL, or exit 2 if it is missing or not on the loopback interface."""
    raw = environ.get("FAKE_DISCORD_URL", "").strip()
    if not raw:
        sys.exit("FAKE_DISCORD_URL is not set. Set it to the fake Discord's address, e.g. http://127.0.0.1:8080.")
    url = yarl.URL(raw)
    if url.scheme != "http" or url.host not in LOOPBACK_HOSTS or url.port is None:
        sys.exit(f"FAKE_DISCORD_URL must be http://127.0.0.1:PORT, got {raw!r}.")
    return url


def point_discord_py_at(fake_url: yarl.URL) -> None:
    """Send discord.py's REST and gateway traffic to the fake, and block every other host."""
    import aiohttp
    import discord.gateway
    import discord.http

    discord.http.Route.BASE = str(fake_url / "api" / "v10")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = fake_url.with_scheme("ws") / "gateway"

    # NOTE: this wraps aiohttp's private ClientSession._request, as
    # tests/fake_discord/patching.py does. Recheck it after upgrading aiohttp.
    original_request = aiohttp.ClientSession._request

    async def loopback_only_request(self: aiohttp.ClientSession, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        url = yarl.URL(str(str_or_url))
        if url.host not in LOOPBACK_HOSTS:
            raise ExternalRequestBlocked(f"Blocked {method} {url}: the bot under test may only reach 127.0.0.1")
        return await original_request(self, method, str_or_url, *args, **kwargs)

    aiohttp.ClientSession._request = loopback_only_request


def main(argv: list[str]) -> int:
    point_discord_py_at(read_fake_url(dict(os.environ)))

    from bot.__main__ import main as bot_main

    return bot_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
