"""Run the real bot as a separate process against a started FakeDiscord.

    async with FakeDiscord() as fake:
        async with BotProcess.started(fake, {"GAN_EXPORT": str(export_dir)}, workdir=tmp_path) as bot:
            record = await fake.send_command("generate", {"count": 4})
            ...
            assert await bot.stop() == 0      # SIGTERM, then the exit status

The process runs tests/e2e/launch_bot.py, which points discord.py at the fake
through FAKE_DISCORD_URL and then calls `bot.__main__.main`. Its stdout and
stderr go to files in `workdir`, so a chatty bot can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import AsyncIterator, Mapping

from .server import FakeDiscord

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).resolve().parents[1] / "e2e" / "launch_bot.py"
REPOSITORY = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0  # seconds from spawn to the bot's READY; importing TensorFlow on a busy CPU takes a while
STOP_TIMEOUT = 30.0  # seconds from SIGTERM to exit before the process is killed

# Settings of the developer's shell that must not leak into the bot under test.
SETTING_PREFIXES = ("DISCORD_", "GAN_", "BOT_", "FAKE_DISCORD_")
SETTING_NAMES = ("LOG_LEVEL",)


def bot_environment(fake: FakeDiscord, settings: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for a bot process: this process's without bot settings, plus the fake's address, token and guild, plus `settings`."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(SETTING_PREFIXES) and name not in SETTING_NAMES
    }
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environ["PYTHONUNBUFFERED"] = "1"
    # The bot finds `bot` and `gan` here even when they are not installed into the interpreter.
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), environ.get("PYTHONPATH")]))
    environ.update(
        FAKE_DISCORD_URL=fake.http_url,
        DISCORD_TOKEN=fake.token,
        DISCORD_GUILD_ID=str(fake.guild.id),
    )
    environ.update({name: str(value) for name, value in settings.items()})
    return environ


class BotProcess:
    """One bot process started by `BotProcess.start` or `BotProcess.started`."""

    def __init__(self, process: asyncio.subprocess.Process, stdout_path: Path, stderr_path: Path) -> None:
        self.process = process
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    @classmethod
    async def start(
        cls,
        fake: FakeDiscord,
        settings: Mapping[str, str],
        *,
        workdir: Path,
        args: tuple[str, ...] = ("--discord",),
        name: str = "bot",
    ) -> BotProcess:
        """Spawn the bot with `settings` added to its environment, without waiting for its login.

        The process runs in `workdir`, so no `.env` of the repository is read,
        and writes `workdir/NAME.stdout` and `workdir/NAME.stderr`.
        """
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        stdout_path, stderr_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(LAUNCHER),
                *args,
                cwd=workdir,
                env=bot_environment(fake, settings),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        log.info("Started bot process %d in %s", process.pid, workdir)
        return cls(process, stdout_path, stderr_path)

    @classmethod
    @contextlib.asynccontextmanager
    async def started(
        cls,
        fake: FakeDiscord,
        settings: Mapping[str, str],
        *,
        workdir: Path,
        name: str = "bot",
        timeout: float = START_TIMEOUT,
    ) -> AsyncIterator[BotProcess]:
        """Start the bot, wait until it logged in to `fake`, and stop it (SIGTERM) when the block ends."""
        ready_before = fake.gateway.ready_count
        bot = await cls.start(fake, settings, workdir=workdir, name=name)
        try:
            await bot.wait_for_login(fake, ready_before, timeout)
            yield bot
        finally:
            if bot.returncode is None:
                await bot.stop()

    async def wait_for_login(self, fake: FakeDiscord, ready_before: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until the fake sent READY to one more client than `ready_before`, and fail early if the bot exits first."""
        login = asyncio.ensure_future(
            fake.wait_until(
                lambda: fake.gateway.ready_count > ready_before,
                timeout,
                lambda: f"Bot process {self.pid} did not log in. Its stderr ends with:\n{self.stderr_tail()}",
            )
        )
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({login, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (login, exited):
                task.cancel()
            await asyncio.gather(login, exited, return_exceptions=True)
        if login.cancelled() or login.exception() is not None:
            if self.returncode is not None:
                raise AssertionError(f"Bot process {self.pid} exited with {self.returncode} before login:\n{self.stderr_tail()}")
            login.result()

    async def wait(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the process to exit and return its exit status."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"Bot process {self.pid} still runs after {timeout:.0f} s:\n{self.stderr_tail()}") from None

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM and return the exit status. Kill the process and fail if it outlives `timeout` seconds."""
        if self.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            log.error("Bot process %d did not exit within %.0f s of SIGTERM. Killing it", self.pid, timeout)
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"Bot process {self.pid} did not exit within {timeout:.0f} s of SIGTERM:\n{self.stderr_tail()}") from None

    def peak_rss_mb(self) -> float:
        """Return the process's peak resident set size in MiB, from VmHWM in /proc/PID/status (Linux only)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                kilobytes = int(line.split()[1])
                return kilobytes / 1024
        raise RuntimeError(f"/proc/{self.pid}/status has no VmHWM line")

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stderr_tail(self, lines: int = 30) -> str:
        return "\n".join(self.stderr_text().splitlines()[-lines:])
