"""The bot as a separate process (tests/e2e/launch_bot.py) against the fake Discord.

Covers what needs a real process: buttons that keep working across a restart,
exit statuses after SIGTERM and after a rejected token, and the latency
benchmark helper. Each start imports TensorFlow, about 5 to 10 s on a busy
2-core machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gan.exports import LATEST, read_manifest
from tests.e2e.bot_fixtures import (
    button_ids,
    decode_png,
    grid_size,
    pixels,
    response_kinds,
    wait_answered,
)
from tests.fake_discord import FakeDiscord, InteractionRecord
from tests.fake_discord.bench import measure_bot_latency
from tests.fake_discord.bot_process import BotProcess

SEED = re.compile(r"seed (\d+),")
PYTHON_ERROR_LOG = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (ERROR|CRITICAL) ", re.MULTILINE)
TOKEN_REJECTED = "Discord rejected the token in DISCORD_TOKEN."


def seed_of(record: InteractionRecord) -> int:
    return int(SEED.search(record.followups[0].content)[1])


def grid_of(record: InteractionRecord) -> bytes:
    return record.followups[0].files[0].data


async def test_buttons_work_after_restart(fake_discord: FakeDiscord, tiny_run_dir: Path, tmp_path: Path) -> None:
    fake = fake_discord
    settings = {"GAN_RUN_DIR": str(tiny_run_dir), "BOT_COOLDOWN_SECONDS": "0"}
    step = read_manifest(tiny_run_dir / "exports" / LATEST).step

    # The first process responds to /generate and to the buttons under its result.
    # It logs at DEBUG level, where discord.py prints every request URL.
    async with BotProcess.started(fake, {**settings, "LOG_LEVEL": "DEBUG"}, workdir=tmp_path, name="first") as first:
        original = await fake.send_command("generate", {"class": "cat", "count": 4, "seed": 7})
        await wait_answered(fake, [original])
        buttons = button_ids(original.followups[0])
        reroll = await fake.press_button(buttons["Re-roll"], message=original)
        await wait_answered(fake, [reroll])
        variations = await fake.press_button(buttons["Variations"], message=original)
        await wait_answered(fake, [variations])
        first_exit = await first.stop()

    # A new process responds to the buttons of the old message.
    async with BotProcess.started(fake, settings, workdir=tmp_path, name="second") as second:
        late_reroll = await fake.press_button(buttons["Re-roll"], message=original)
        await wait_answered(fake, [late_reroll])
        late_variations = await fake.press_button(buttons["Variations"], message=original)
        await wait_answered(fake, [late_variations])
        second_exit = await second.stop()

    presses = {"reroll": reroll, "variations": variations, "late reroll": late_reroll, "late variations": late_variations}
    assert set(buttons) == {"Re-roll", "Variations"}
    assert {name: response_kinds(record) for name, record in presses.items()} == {name: ["defer", "followup"] for name in presses}
    assert {name: decode_png(grid_of(record)).size for name, record in presses.items()} == {name: grid_size(4) for name in presses}
    for name, record in presses.items():
        assert "**cat**" in record.followups[0].content, name
        assert f"model step {step}." in record.followups[0].content, name
        assert not np.array_equal(pixels(grid_of(record)), pixels(grid_of(original))), name
    assert late_reroll.followups[0].content.startswith("Re-roll for ")
    assert seed_of(late_reroll) != 7
    assert late_variations.followups[0].content.startswith("Variations for ")
    assert seed_of(late_variations) == 7
    assert "variation seed" in late_variations.followups[0].content
    assert fake.identify_count == 2
    assert first_exit == 0
    assert second_exit == 0
    assert "Traceback" not in first.stderr_text()
    assert "Traceback" not in second.stderr_text()
    # Interaction tokens are secrets: the DEBUG log names the URLs without them.
    assert "/interactions/" in first.stderr_text()
    assert [name for name, record in presses.items() if record.token in first.stderr_text() + second.stderr_text()] == []
    assert original.token not in first.stderr_text()
    assert fake.token not in first.stderr_text()
    assert not fake.unknown_requests
    assert not fake.error_responses


async def test_rejected_token_exits_with_one_line(fake_discord: FakeDiscord, tiny_run_dir: Path, tmp_path: Path) -> None:
    fake = fake_discord
    fake.reject_token = True
    bot = await BotProcess.start(fake, {"GAN_RUN_DIR": str(tiny_run_dir)}, workdir=tmp_path)
    exit_code = await bot.wait(120)

    stderr = bot.stderr_text()
    assert exit_code == 1
    assert [line for line in stderr.splitlines() if TOKEN_REJECTED in line] == [
        f"{TOKEN_REJECTED} Copy a new one from the Developer Portal (Bot > Reset Token)."
    ]
    assert "Traceback" not in stderr
    assert not PYTHON_ERROR_LOG.findall(stderr), stderr
    assert fake.token not in stderr
    assert fake.identify_count == 0
    assert [str(record) for record in fake.error_responses] == ["GET /users/@me -> 401"]
    assert not fake.unknown_requests


def test_bench_reports_latency(tiny_run_dir: Path) -> None:
    export = read_manifest(tiny_run_dir / "exports" / LATEST).path
    report = measure_bot_latency(export, counts=(4,), users=(1,), requests_per_user=2)

    rows = report["bot_e2e"]
    assert set(report) == {"bot_e2e", "bot_peak_rss_mb"}
    assert [(row["count"], row["users"], row["n"]) for row in rows] == [(4, 1, 2)]
    assert set(rows[0]) == {"count", "users", "p50_ms", "p95_ms", "n"}
    assert rows[0]["p50_ms"] > 0
    assert rows[0]["p95_ms"] >= rows[0]["p50_ms"]
    assert report["bot_peak_rss_mb"] > 0
