"""Hot reload in the running bot: a new export from the trainer swaps in, a corrupt one is refused.

The bot polls the manifest every 0.3 s (GAN_RELOAD_INTERVAL) and is checked
only through what the fake Discord received.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from gan.config import CIFAR10_CLASSES
from gan.exports import LATEST, read_manifest, write_export
from tests.e2e.bot_fixtures import (
    GENERATION_TIMEOUT,
    TINY,
    TrainedRun,
    ask_until,
    decode_png,
    grid_size,
    publish_corrupt_export,
    response_kinds,
    serving_bot,
    wait_answered,
)
from tests.fake_discord import FakeDiscord, FakeUser, InteractionRecord

RELOAD_SETTINGS = {"GAN_RELOAD_INTERVAL": "0.3", "BOT_MAX_PER_USER": "1"}
SWAP_TIMEOUT = 60.0  # seconds for the trainer to publish and the bot to load the export, on a busy CPU
PACE_SECONDS = 0.25  # pause between the requests of one user, to keep the CPU free for training and loading
MODEL_STEP = re.compile(r"model step (\d+)\.")


def reported_step(record: InteractionRecord) -> int | None:
    """Return the model step a /generate followup names, or None if it names none."""
    match = MODEL_STEP.search(record.followups[0].content or "") if record.followups else None
    return int(match[1]) if match else None


async def generate_until(fake: FakeDiscord, user: FakeUser, done: asyncio.Event, records: list[InteractionRecord]) -> None:
    """Send /generate as `user`, one at a time, until `done` is set, and store every interaction in `records`."""
    seed = 0
    while not done.is_set():
        record = await fake.send_command("generate", {"class": "horse", "count": 2, "seed": seed}, user=user)
        records.append(record)
        await fake.wait_until(lambda: record.followups or record.callback_type == 4, GENERATION_TIMEOUT, record.describe_responses)
        seed += 1
        await asyncio.sleep(PACE_SECONDS)


async def test_new_export_swaps_without_failures(fake_discord: FakeDiscord, trained_run: TrainedRun) -> None:
    fake = fake_discord
    old_step = read_manifest(trained_run.run_dir / "exports" / LATEST).step
    users = [fake.make_user(f"painter{index}") for index in range(4)]
    records: list[InteractionRecord] = []
    async with serving_bot(fake, {"GAN_RUN_DIR": str(trained_run.run_dir), **RELOAD_SETTINGS}):
        before = await fake.send_command("generate", {"class": "cat", "count": 1, "seed": 1})
        await wait_answered(fake, [before])

        # Users keep generating while the trainer trains, publishes and the bot swaps.
        done = asyncio.Event()
        senders = [asyncio.create_task(generate_until(fake, user, done, records)) for user in users]
        new_step = await asyncio.to_thread(trained_run.publish_export)
        await fake.wait_until(lambda: any(reported_step(record) == new_step for record in records), SWAP_TIMEOUT, "No /generate reported the new export")
        done.set()
        await asyncio.wait_for(asyncio.gather(*senders), GENERATION_TIMEOUT)

        after = await fake.send_command("generate", {"class": "cat", "count": 1, "seed": 1})
        await wait_answered(fake, [after])
        model = await ask_until(fake, "model", lambda content: f"step {new_step} " in content, 10.0)

    steps = [reported_step(record) for record in records]
    assert reported_step(before) == old_step
    assert new_step > old_step
    assert all(response_kinds(record) == ["defer", "followup"] for record in records), [record.describe_responses() for record in records]
    assert all(len(record.followups[0].files) == 1 for record in records)
    assert all(decode_png(record.followups[0].files[0].data).size == grid_size(2) for record in records)
    assert set(steps) <= {old_step, new_step}, steps
    assert old_step in steps, steps
    for user in users:
        user_steps = [reported_step(record) for record in records if record.user.id == user.id]
        assert user_steps == sorted(user_steps), f"{user.username} saw the old export after the new one: {user_steps}"
    assert response_kinds(after) == ["defer", "followup"]
    assert reported_step(after) == new_step
    assert "Last reload error: none" in model
    assert not fake.unknown_requests
    assert not fake.error_responses


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("truncated", "TensorFlow failed to load it"), ("sha256", "sha256 mismatch")],
)
async def test_corrupt_export_keeps_old(fake_discord: FakeDiscord, tmp_path: Path, tiny_generator, damage: str, reason: str) -> None:
    fake = fake_discord
    run_dir = tmp_path / "run"
    old_step = write_export(tiny_generator, TINY, CIFAR10_CLASSES, run_dir / "exports", step=100, kimg=6.4).step
    async with serving_bot(fake, {"GAN_RUN_DIR": str(run_dir), **RELOAD_SETTINGS}):
        await asyncio.to_thread(publish_corrupt_export, run_dir, tiny_generator, 200, damage)
        model = await ask_until(fake, "model", lambda content: "Last reload error: none" not in content, 30.0)
        record = await fake.send_command("generate", {"class": "cat", "count": 4, "seed": 7})
        await wait_answered(fake, [record])

    assert f"step {old_step} " in model
    assert "(step 200) rejected" in model
    assert reason in model
    assert response_kinds(record) == ["defer", "followup"]
    assert reported_step(record) == old_step
    assert not fake.unknown_requests
    assert not fake.error_responses
