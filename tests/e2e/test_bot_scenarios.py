"""The product bot against the fake Discord: start-up, /generate, bad input, /train status, load, resume.

Each test runs the real client and generation service (real TensorFlow on a
`tiny` export) in the test's event loop and checks only what the fake
received. Reload scenarios are in test_bot_reload.py, the bot as a separate
process in test_bot_process.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from gan.config import CIFAR10_CLASSES
from gan.exports import LATEST, read_manifest
from tests.e2e.bot_fixtures import (
    GENERATION_TIMEOUT,
    REPLY_TIMEOUT,
    decode_png,
    grid_size,
    pixels,
    response_kinds,
    serving_bot,
    wait_answered,
)
from tests.fake_discord import EPHEMERAL, FakeDiscord

MANAGE_GUILD = 1 << 5  # the Manage Server permission bit
MAX_SEED = 2**53 - 1  # the largest integer Discord carries exactly


def served_step(run_dir: Path) -> int:
    return read_manifest(run_dir / "exports" / LATEST).step


# Start-up.


async def test_startup_syncs_command_payload(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    fake = fake_discord
    async with serving_bot(fake, {"GAN_RUN_DIR": str(tiny_run_dir)}):
        commands = {command["name"]: command for command in fake.synced_commands[fake.guild.id]}

    generate = {option["name"]: option for option in commands["generate"]["options"]}
    train_options = commands["train"]["options"]
    assert fake.identify_count == 1
    assert set(commands) == {"generate", "model", "train"}
    assert None not in fake.synced_commands, "commands were also synced globally"
    assert list(generate) == ["class", "count", "seed"]
    assert generate["class"]["type"] == 3
    assert [choice["value"] for choice in generate["class"]["choices"]] == [*CIFAR10_CLASSES, "random"]
    assert generate["count"]["type"] == 4
    assert generate["count"]["min_value"] == 1
    assert generate["count"]["max_value"] == 16
    assert generate["seed"]["type"] == 4
    assert generate["seed"]["min_value"] == 0
    assert generate["seed"]["max_value"] == MAX_SEED
    assert not any(option.get("required") for option in generate.values())
    assert "options" not in commands["model"]
    assert [(option["name"], option["type"]) for option in train_options] == [("status", 1)]
    assert commands["train"]["default_member_permissions"] == str(MANAGE_GUILD)
    assert commands["generate"]["default_member_permissions"] is None
    assert commands["model"]["default_member_permissions"] is None
    assert not fake.unknown_requests
    assert not fake.error_responses


# /generate.


async def test_generate_grid_repeats_exactly(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    fake = fake_discord
    options = {"class": "cat", "count": 4, "seed": 7}
    async with serving_bot(fake, {"GAN_RUN_DIR": str(tiny_run_dir)}):
        first = await fake.send_command("generate", options)
        await wait_answered(fake, [first])
        second = await fake.send_command("generate", options)
        await wait_answered(fake, [second])

    callback, followup = first.responses
    grid = decode_png(followup.files[0].data)
    assert response_kinds(first) == ["defer", "followup"]
    assert not callback.ephemeral
    assert not followup.ephemeral
    assert [file.filename for file in followup.files] == ["cat-4x-seed7.png"]
    assert grid.format == "PNG"
    assert grid.size == grid_size(4)
    assert "**cat**" in followup.content
    assert "seed 7," in followup.content
    assert f"model step {served_step(tiny_run_dir)}." in followup.content
    assert response_kinds(second) == ["defer", "followup"]
    assert np.array_equal(pixels(followup.files[0].data), pixels(second.followups[0].files[0].data))
    assert not fake.unknown_requests
    assert not fake.error_responses


async def test_generate_bad_input_ephemeral(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    # Discord itself rejects these, but an outdated client or a forged request can still send them.
    fake = fake_discord
    cases = {
        "count 17": ({"class": "cat", "count": 17}, "count must be a whole number from 1 to 16, got '17'"),
        "count 0": ({"count": 0}, "count must be a whole number from 1 to 16, got '0'"),
        "seed -1": ({"seed": -1}, "seed must be a whole number from 0 to"),
        "class kat": ({"class": "kat", "count": 4}, "Unknown class 'kat'. Did you mean 'cat'?"),
    }
    async with serving_bot(fake, {"GAN_RUN_DIR": str(tiny_run_dir)}):
        records = {name: await fake.send_command("generate", options, validate=False) for name, (options, _) in cases.items()}
        await wait_answered(fake, list(records.values()), REPLY_TIMEOUT)

    assert {name: response_kinds(record) for name, record in records.items()} == {name: ["message"] for name in cases}
    assert {name: record.callback.flags for name, record in records.items()} == {name: EPHEMERAL for name in cases}
    for name, (_, expected) in cases.items():
        assert expected in records[name].callback.content, name
    assert not any(record.files for record in records.values())
    assert not fake.unknown_requests
    assert not fake.error_responses


# /train status.


async def test_train_status_admin_sees_run(fake_discord: FakeDiscord, trained_run) -> None:
    fake = fake_discord
    admin = fake.make_user("manager", permissions=["view_channel", "use_application_commands", "manage_guild"])
    status = json.loads((trained_run.run_dir / "status.json").read_text())
    async with serving_bot(fake, {"GAN_RUN_DIR": str(trained_run.run_dir)}):
        record = await fake.send_command("train status", user=admin)
        await wait_answered(fake, [record])

    callback, followup = record.responses
    files = {file.filename: file.data for file in followup.files}
    sample = trained_run.run_dir / status["last_sample"]["path"]  # relative to the run directory
    headline = followup.content.splitlines()[0]
    assert response_kinds(record) == ["defer", "followup"]
    assert callback.flags == EPHEMERAL
    assert followup.ephemeral
    assert headline.endswith(f": {status['state']}")
    assert status["state"] == "stopped"
    assert f"Progress: {status['kimg']:.1f} of" in followup.content
    assert f"step {status['step']}" in followup.content
    assert set(files) == {sample.name, "loss-curve.png"}
    assert files[sample.name] == sample.read_bytes()
    assert decode_png(files["loss-curve.png"]).format == "PNG"
    assert not fake.unknown_requests
    assert not fake.error_responses


async def test_train_status_admin_role(fake_discord: FakeDiscord, trained_run) -> None:
    fake = fake_discord
    role = fake.make_role("GAN trainers")
    trainer_user = fake.make_user("trainer", roles=[role])
    async with serving_bot(fake, {"GAN_RUN_DIR": str(trained_run.run_dir), "BOT_ADMIN_ROLE_IDS": str(role.id)}):
        record = await fake.send_command("train status", user=trainer_user)
        await wait_answered(fake, [record])

    followup = record.followups[0]
    assert response_kinds(record) == ["defer", "followup"]
    assert followup.ephemeral
    assert "Training run" in followup.content
    assert len(followup.files) == 2
    assert not fake.unknown_requests
    assert not fake.error_responses


async def test_train_status_member_refused(fake_discord: FakeDiscord, trained_run) -> None:
    fake = fake_discord
    member = fake.make_user("member")
    async with serving_bot(fake, {"GAN_RUN_DIR": str(trained_run.run_dir), "BOT_ADMIN_ROLE_IDS": "1234"}):
        record = await fake.send_command("train status", user=member)
        await wait_answered(fake, [record], REPLY_TIMEOUT)

    assert response_kinds(record) == ["message"]
    assert record.callback.flags == EPHEMERAL
    assert "needs the Manage Server permission" in record.callback.content
    assert not record.files
    assert not fake.unknown_requests
    assert not fake.error_responses


async def test_train_status_without_run_dir(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    fake = fake_discord
    admin = fake.make_user("manager", permissions=["manage_guild"])
    export = read_manifest(tiny_run_dir / "exports" / LATEST).path
    async with serving_bot(fake, {"GAN_EXPORT": str(export)}):
        record = await fake.send_command("train status", user=admin)
        await wait_answered(fake, [record], REPLY_TIMEOUT)

    assert response_kinds(record) == ["message"]
    assert record.callback.flags == EPHEMERAL
    assert "GAN_RUN_DIR is not set" in record.callback.content
    assert "gan-train --data" in record.callback.content
    assert not fake.unknown_requests
    assert not fake.error_responses


# Load.


async def test_burst_answered_once_heartbeats_steady(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    fake = fake_discord
    interval = 0.5  # seconds between heartbeats
    fake.heartbeat_interval_ms = int(interval * 1000)
    users = [fake.make_user(f"user{index}") for index in range(5)]
    settings = {"GAN_RUN_DIR": str(tiny_run_dir), "BOT_MAX_PER_USER": "1", "BOT_QUEUE_SIZE": "20"}
    async with serving_bot(fake, settings) as bot:
        # The first heartbeat comes after a random fraction of the interval, so wait for the regular ones.
        await fake.wait_until(lambda: len(fake.heartbeats) >= 2, REPLY_TIMEOUT, "No heartbeats before the burst")
        burst_start = time.monotonic()
        records = await asyncio.gather(
            *(fake.send_command("generate", {"count": 16, "seed": index}, user=users[index % 5]) for index in range(20))
        )
        await wait_answered(fake, records, GENERATION_TIMEOUT)
        heartbeats_before = len(fake.heartbeats)
        await fake.wait_until(lambda: len(fake.heartbeats) >= heartbeats_before + 2, REPLY_TIMEOUT, "Heartbeats stopped")
        latency = bot.latency

    burst = [beat.received_at for beat in fake.heartbeats if beat.received_at >= burst_start]
    gaps = np.diff(burst)
    accepted = [record for record in records if record.callback_type == 5]
    rejected = [record for record in records if record.callback_type == 4]
    kinds = {tuple(response_kinds(record)) for record in records}
    per_user = {user.username: [record.callback_type for record in records if record.user.id == user.id] for user in users}
    assert kinds <= {("defer", "followup"), ("message",)}, kinds
    assert len(accepted) + len(rejected) == 20
    assert all(record.followups[0].files for record in accepted)
    assert all(record.callback.flags == EPHEMERAL for record in rejected)
    assert {record.callback.content for record in rejected} == {"Your previous request is still being generated. Wait for it to finish."}
    assert all(5 in types for types in per_user.values()), per_user
    assert all(4 in types for types in per_user.values()), per_user
    assert len(gaps) >= 2, burst
    assert gaps.max() < 1.5 * interval, gaps
    assert latency < 2 * interval  # heartbeat round trip; only a blocked event loop makes it grow past this
    assert len(fake.gateway_connections) == 1
    assert not fake.unknown_requests
    assert not fake.error_responses


# Gateway faults.


async def test_dropped_gateway_resumes(fake_discord: FakeDiscord, tiny_run_dir: Path) -> None:
    fake = fake_discord
    async with serving_bot(fake, {"GAN_RUN_DIR": str(tiny_run_dir)}):
        # Hold the reconnection back, so the command sent meanwhile must be replayed on RESUME.
        await fake.drop_gateway(reconnect_delay=0.3)
        missed = await fake.send_command("generate", {"class": "dog", "count": 1, "seed": 3})
        await fake.wait_for_resume(1, REPLY_TIMEOUT)
        await wait_answered(fake, [missed])
        after = await fake.send_command("generate", {"class": "ship", "count": 2, "seed": 4})
        await wait_answered(fake, [after])

    assert fake.resume_count == 1
    assert fake.identify_count == 1
    assert response_kinds(missed) == ["defer", "followup"]
    assert "**dog**" in missed.followups[0].content
    assert response_kinds(after) == ["defer", "followup"]
    assert decode_png(after.followups[0].files[0].data).size == grid_size(2)
    assert not fake.unknown_requests
    assert not fake.error_responses
