"""Fixtures for end-to-end tests: a fake Discord on 127.0.0.1 that discord.py is pointed at.

Run with `.venv/bin/python -m pytest tests/e2e` from the repository root, so
that `tests.fake_discord` is importable.
"""

from __future__ import annotations

from typing import AsyncIterator

import discord.gateway
import discord.http
import pytest
import pytest_asyncio

from tests.e2e.bot_fixtures import trained_run  # noqa: F401  (a fixture for the product bot's tests)
from tests.fake_discord import FakeDiscord, patch_discord_py

# Short enough that tests see several heartbeats, long enough not to load a busy CPU.
TEST_HEARTBEAT_INTERVAL_MS = 1000


@pytest_asyncio.fixture(loop_scope="function")
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A started fake Discord that discord.py's REST and gateway traffic goes to, for one test."""
    async with FakeDiscord(heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS) as fake:
        blocked = patch_discord_py(fake, monkeypatch)
        assert discord.http.Route.BASE.startswith("http://127.0.0.1:"), discord.http.Route.BASE
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("ws://127.0.0.1:")

        yield fake

        assert not blocked, f"Requests outside 127.0.0.1 were blocked: {blocked}"
