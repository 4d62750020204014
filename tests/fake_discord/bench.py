"""Measure the bot's end-to-end latency: interaction sent -> followup with the grid received.

    from tests.fake_discord.bench import measure_bot_latency
    report = measure_bot_latency(Path("runs/cifar10/exports/generator-000100"))

Starts a fake Discord on 127.0.0.1 and the real bot as a separate process
(tests/e2e/launch_bot.py) serving `export_dir`, then sends /generate from
several users at once. Each user waits for the followup of one request before
sending the next, as BOT_MAX_PER_USER=1 requires. Run it from the repository
root, so that `tests` is importable.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from .bot_process import BotProcess
from .models import FakeUser
from .records import EPHEMERAL
from .server import FakeDiscord

log = logging.getLogger(__name__)


class BenchmarkError(RuntimeError):
    """The bot under measurement failed a request or did not stop cleanly."""


def measure_bot_latency(
    export_dir: Path,
    counts: Iterable[int] = (4, 16),
    users: Iterable[int] = (1, 8),
    requests_per_user: int = 5,
    timeout: float = 60,
) -> dict:
    """Return the bot's latency per (images per request, concurrent users) and its peak memory.

    `timeout` is in seconds, for the bot's login and for each followup. For
    each image count, one warm-up request runs first and is not measured,
    because the first call of a loaded export also traces it. Returns
    {"bot_e2e": [{"count", "users", "p50_ms", "p95_ms", "n"}, ...],
    "bot_peak_rss_mb": VmHWM of the bot process in MiB, read before it stops}.
    Raises BenchmarkError if a request gets no grid or the bot does not exit 0.
    """
    counts, users = tuple(counts), tuple(users)
    if not counts or not users or min(counts) < 1 or min(users) < 1 or requests_per_user < 1:
        raise ValueError(f"counts, users and requests_per_user must be positive, got {counts}, {users}, {requests_per_user}.")
    return asyncio.run(_measure(Path(export_dir), counts, users, requests_per_user, timeout))


async def _measure(export_dir: Path, counts: tuple[int, ...], users: tuple[int, ...], requests_per_user: int, timeout: float) -> dict:
    settings = {
        "GAN_EXPORT": str(export_dir.resolve()),
        "BOT_COOLDOWN_SECONDS": "0",
        "BOT_MAX_PER_USER": "1",
        "BOT_QUEUE_SIZE": str(max(users)),  # every user has at most one request waiting
        "LOG_LEVEL": "WARNING",
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as workdir:
        async with FakeDiscord() as fake:
            people = [fake.make_user(f"bench{index}") for index in range(max(users))]
            async with BotProcess.started(fake, settings, workdir=Path(workdir), timeout=timeout) as bot:
                for count in counts:
                    await _generate(fake, people[0], count, timeout)  # warm-up, not measured
                    for user_count in users:
                        latencies = await _measure_combination(fake, people[:user_count], count, requests_per_user, timeout)
                        p50, p95 = (float(value) for value in np.percentile(latencies, [50, 95]))
                        rows.append({"count": count, "users": user_count, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "n": len(latencies)})
                        log.info("Bot latency with %d images, %d users: p50 %.0f ms, p95 %.0f ms", count, user_count, p50, p95)
                peak_rss_mb = bot.peak_rss_mb()
                exit_code = await bot.stop()
                if exit_code != 0:
                    raise BenchmarkError(f"The bot exited with {exit_code} after SIGTERM:\n{bot.stderr_tail()}")
    return {"bot_e2e": rows, "bot_peak_rss_mb": round(peak_rss_mb, 1)}


async def _measure_combination(fake: FakeDiscord, people: list[FakeUser], count: int, requests_per_user: int, timeout: float) -> list[float]:
    """Return the latencies, in ms, of `requests_per_user` requests from each of `people`, all users at once."""

    async def one_user(user: FakeUser) -> list[float]:
        return [await _generate(fake, user, count, timeout) for _ in range(requests_per_user)]

    per_user = await asyncio.gather(*(one_user(user) for user in people))
    return [latency for latencies in per_user for latency in latencies]


async def _generate(fake: FakeDiscord, user: FakeUser, count: int, timeout: float) -> float:
    """Send one /generate and return the ms until its followup with a file arrived."""
    sent_at = time.monotonic()
    record = await fake.send_command("generate", {"count": count}, user=user)
    await fake.wait_until(
        lambda: record.followups or (record.callback is not None and record.callback.flags & EPHEMERAL),
        timeout,
        record.describe_responses,
    )
    followup = record.followups[0] if record.followups else None
    if followup is None or not followup.files:
        reply = followup or record.callback
        raise BenchmarkError(f"/generate count:{count} from {user.username} got no image: {reply.content!r}")
    return (followup.received_at - sent_at) * 1000.0
