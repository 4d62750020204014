"""The product bot against the fake Discord: run it in the test's event loop, build run directories, read replies.

`serving_bot` runs the real client (`bot.client.create_bot`) with settings
parsed by `bot.settings.load_settings` and the generation service built by
`bot.__main__.build_service`, as `python -m bot` does, but in the test's
event loop, so the fake's patches apply. Tests that need a separate process
use `tests.fake_discord.bot_process.BotProcess` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable, Mapping

import numpy as np
import pytest
from PIL import Image

from bot.__main__ import build_service
from bot.client import GanBot, create_bot
from bot.settings import Settings, load_settings
from gan.config import CIFAR10_CLASSES, PRESETS, TrainConfig
from gan.exports import LATEST, atomic_write_json, hash_export, write_export
from gan.images import grid_shape
from tests.cifar_fixtures import write_archive
from tests.fake_discord import FakeDiscord, InteractionRecord, ResponseRecord, running_client

TINY = PRESETS["tiny"]
GRID_CELL = 128  # px per image in a /generate grid when the PNG fits the upload limit
GRID_GAP = 2  # px between grid cells (render_grid's default, which the bot keeps)
DEFERRED = 5  # interaction callback type: "thinking" message, followup later
CHANNEL_MESSAGE = 4  # interaction callback type: the reply itself
GENERATION_TIMEOUT = 60.0  # seconds for a defer and its followup on a busy 2-core machine
REPLY_TIMEOUT = 10.0  # seconds for a reply that needs no generation
SETTLE_SECONDS = 0.5  # quiet time after the last expected response, to catch extra ones
VARIABLES_FILE = Path("variables") / "variables.data-00000-of-00001"  # a SavedModel's weights


# Settings and the in-process bot.


def bot_settings(fake: FakeDiscord, settings: Mapping[str, str]) -> Settings:
    """Parse `settings` as environment variables, with the fake's token and guild and no cooldown."""
    environ = {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_GUILD_ID": str(fake.guild.id),
        "BOT_COOLDOWN_SECONDS": "0",
        "BOT_SHUTDOWN_SECONDS": "10",
        **settings,
    }
    return load_settings(environ=environ)


@contextlib.asynccontextmanager
async def serving_bot(fake: FakeDiscord, settings: Mapping[str, str]) -> AsyncIterator[GanBot]:
    """Start the generation service and the bot, wait for its READY, and stop both when the block ends."""
    parsed = bot_settings(fake, settings)
    service = build_service(parsed)
    await asyncio.to_thread(service.start)
    try:
        bot = create_bot(parsed, service)
        # discord.py fires on_ready guild_ready_timeout (2 s) after GUILD_CREATE but caches the guild at once,
        # so interactions can be sent as soon as the fake sent READY.
        async with running_client(fake, bot, token=parsed.discord_token, wait_until_ready=False):
            yield bot
    finally:
        await asyncio.to_thread(service.close)


# Run directories.


@dataclass
class TrainedRun:
    """A run directory written by gan.training.Trainer, and the trainer, which can publish more exports."""

    run_dir: Path
    trainer: object  # gan.training.Trainer

    def publish_export(self, steps: int = 2) -> int:
        """Train `steps` more steps, publish an export of the EMA generator and return its step."""
        self.trainer.run_steps(self.trainer.make_iterator(), steps)
        return self.trainer.export().step


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """A `tiny` run stopped after 4 steps of 16 images: status.json, a sample grid, a loss history, exports.

    About 25 s on a busy 2-core CPU. Tests may add exports (publish_export)
    but must leave status.json and the samples as they are.
    """
    from gan.data import load_dataset
    from gan.training import Trainer

    root = tmp_path_factory.mktemp("trained")
    archive = write_archive(root / "cifar-10-python.tar.gz")
    config = TrainConfig(
        model=TINY,
        data=str(archive),
        batch_size=16,
        total_kimg=1.0,  # not reached: max_steps stops the run first, so its state is "stopped"
        tick_kimg=0.016,  # a status tick, with a loss history entry, at every step
        snapshot_kimg=0.032,  # an export every 2 steps
    )
    trainer = Trainer(config, root / "run", load_dataset(archive))
    trainer.prepare_run_dir(resume=False)
    trainer.train(max_steps=4)
    return TrainedRun(root / "run", trainer)


def publish_corrupt_export(run_dir: Path, generator, step: int, damage: str) -> Path:
    """Publish an export whose variables file is cut in half and return its path.

    With damage "truncated" the manifest's sha256 matches the damaged files,
    so only loading can reject it. With "sha256" the manifest keeps the sha256
    of the intact files. The export is written elsewhere and damaged before
    the manifest names it, so the bot can only read the damaged files.
    """
    exports = run_dir / "exports"
    staging = run_dir.parent / f"staging-{step}"
    manifest = write_export(generator, TINY, CIFAR10_CLASSES, staging, step=step, kimg=step * 0.064)
    target = exports / manifest.path.name
    shutil.move(str(manifest.path), target)

    variables = target / VARIABLES_FILE
    data = variables.read_bytes()
    variables.write_bytes(data[: len(data) // 2])

    manifest.path = target.resolve()
    if damage == "truncated":
        manifest.sha256 = hash_export(target)
    elif damage != "sha256":
        raise ValueError(f"Unknown damage {damage!r}. Use 'truncated' or 'sha256'.")
    atomic_write_json(exports / LATEST, manifest.to_dict(exports))
    return target


# Reading replies.


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def grid_size(count: int) -> tuple[int, int]:
    """Return the (width, height) in px of a /generate grid of `count` images at full size."""
    rows, columns = grid_shape(count)
    return columns * GRID_CELL + (columns - 1) * GRID_GAP, rows * GRID_CELL + (rows - 1) * GRID_GAP


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(decode_png(data).convert("RGB"))


def button_ids(response: ResponseRecord) -> dict[str, str]:
    """Map each button label of a response to its custom_id."""
    ids = {}
    for row in response.components:
        for component in row.get("components", []):
            if "custom_id" in component:
                ids[component.get("label", "")] = component["custom_id"]
    return ids


def is_answered(record: InteractionRecord) -> bool:
    """Return whether the bot sent a final reply: a callback message, or a defer and its followup."""
    if record.callback_type == CHANNEL_MESSAGE:
        return True
    return record.callback_type == DEFERRED and bool(record.followups)


def response_kinds(record: InteractionRecord) -> list[str]:
    """Name the responses in order: "message" (callback type 4), "defer" (type 5), "followup" and so on."""
    names = {CHANNEL_MESSAGE: "message", DEFERRED: "defer"}
    return [names.get(response.callback_type, response.describe()) if response.kind == "callback" else response.kind for response in record.responses]


async def wait_answered(fake: FakeDiscord, records: list[InteractionRecord], timeout: float = GENERATION_TIMEOUT) -> None:
    """Wait until every record has its final reply, then SETTLE_SECONDS more for any extra response."""
    await fake.wait_until(
        lambda: all(is_answered(record) for record in records),
        timeout,
        lambda: "Unanswered: " + "; ".join(record.describe_responses() for record in records if not is_answered(record)),
    )
    await asyncio.sleep(SETTLE_SECONDS)


async def ask_until(
    fake: FakeDiscord,
    command: str,
    accept: Callable[[str], bool],
    timeout: float,
    interval: float = 0.5,
    **send_options,
) -> str:
    """Send `command` every `interval` seconds until the content of its reply passes `accept`, and return that content."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    content = None
    while loop.time() < deadline:
        record = await fake.send_command(command, **send_options)
        await wait_answered(fake, [record], REPLY_TIMEOUT)
        reply = record.followups[-1] if record.followups else record.callback
        content = reply.content or ""
        if accept(content):
            return content
        await asyncio.sleep(interval)
    raise AssertionError(f"/{command} gave no expected reply in {timeout:.0f} s. The last reply was: {content!r}")
