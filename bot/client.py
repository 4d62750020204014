"""The discord.py client: command tree, persistent buttons, interaction responses, shutdown.

Run it with `run_bot(settings, service)` after starting the generation
service; it returns once the bot has shut down, after SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import discord
from discord import app_commands

from bot.commands import register_commands
from bot.handlers import CommandHandlers
from bot.limits import SHUTDOWN_MESSAGE, GenerationQueue
from bot.messages import ButtonSpec, Reply, Request
from bot.responder import RESPONDED, report_error, request_from_interaction, send_reply
from bot.settings import Settings
from bot.views import GenerationButton

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0  # after the shutdown wait, time given to cancelled requests to say so


class GanCommandTree(app_commands.CommandTree):
    """The command tree whose error handler sends the one response a failed command still lacks."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        command = interaction.command.qualified_name if interaction.command is not None else "unknown"
        await report_error(interaction, error, command)


class GanBot(discord.Client):
    """A client that serves /generate, /model and /train status from one generation service."""

    def __init__(self, settings: Settings, service):
        # Slash commands and buttons need no privileged intents. The guilds intent
        # fills the guild and role cache, which the admin check by role reads.
        super().__init__(intents=discord.Intents(guilds=True))
        self.settings = settings
        self.service = service
        self.queue = GenerationQueue(settings.queue_size, settings.max_per_user, settings.cooldown_seconds)
        self.handlers = CommandHandlers(service, self.queue, settings)
        self.tree = GanCommandTree(self)
        register_commands(self.tree, tuple(service.class_names))
        self.synced_commands: int | None = None  # commands Discord accepted at the last sync
        self._active: set[asyncio.Task] = set()  # tasks responding to an interaction right now
        self._shutdown: asyncio.Task | None = None
        self._stop_waiting = asyncio.Event()

    # Start-up.

    async def setup_hook(self) -> None:
        self.add_dynamic_items(GenerationButton)

        # A guild sync shows the commands at once, a global sync can take up to an hour.
        guild = discord.Object(id=self.settings.guild_id) if self.settings.guild_id else None
        try:
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            else:
                synced = await self.tree.sync()
        except discord.HTTPException as error:
            log.error(
                "Could not sync the slash commands%s: %s. Invite the bot with the applications.commands scope, "
                "or check DISCORD_GUILD_ID. Commands synced earlier keep working.",
                f" to guild {guild.id}" if guild is not None else "",
                error,
            )
            return
        self.synced_commands = len(synced)
        log.info("Synced %d commands %s", len(synced), f"to guild {guild.id}" if guild is not None else "globally")

    async def on_ready(self) -> None:
        guilds = ", ".join(f"{guild.name} ({guild.id})" for guild in self.guilds) or "none"
        served = self.service.served
        log.info("Logged in as %s (id %s); guilds: %s", self.user, self.user.id if self.user else "?", guilds)
        if served is not None:
            log.info("Serving export %s at step %d", served.path, served.step)

    # Responding to interactions.

    async def respond(self, interaction: discord.Interaction, request: Request) -> None:
        """Run the handler for `request` and send its reply; errors propagate to the caller."""
        task = asyncio.current_task()
        self._active.add(task)
        try:

            async def defer(ephemeral: bool) -> None:
                await interaction.response.defer(thinking=True, ephemeral=ephemeral)

            reply = await self.handlers.handle(request, defer)
            await send_reply(interaction, reply)
        except asyncio.CancelledError:
            # Only shutdown cancels these tasks, after its wait ran out.
            if not interaction.extras.get(RESPONDED):
                await asyncio.shield(self._say_shutting_down(interaction))
            raise
        finally:
            self._active.discard(task)

    async def respond_to_button(self, interaction: discord.Interaction, spec: ButtonSpec) -> None:
        """Respond to a Re-roll or Variations press and report its errors, which reach no command tree handler."""
        try:
            request = request_from_interaction(interaction, spec.action, spec.request_options())
            await self.respond(interaction, request)
        except Exception as error:
            await report_error(interaction, error, spec.action)

    async def _say_shutting_down(self, interaction: discord.Interaction) -> None:
        try:
            await send_reply(interaction, Reply(SHUTDOWN_MESSAGE + " Your request was not finished.", ephemeral=True))
        except discord.HTTPException as error:
            log.warning("Could not tell interaction %s about the shutdown: %s", interaction.id, error)

    # Shutdown.

    async def close(self) -> None:
        """Stop taking requests, let those in flight finish (bounded), then disconnect."""
        if self._shutdown is None:
            self._shutdown = asyncio.create_task(self._drain())
        await self._shutdown
        await super().close()

    @property
    def shutting_down(self) -> bool:
        return self._shutdown is not None

    def stop_waiting(self) -> None:
        """End the wait for requests in flight early (a second SIGINT or SIGTERM)."""
        self._stop_waiting.set()

    async def _drain(self) -> None:
        self.handlers.closing = True
        active = {task for task in self._active if not task.done()}
        if active:
            log.info("Shutting down: waiting up to %g s for %d requests in flight", self.settings.shutdown_seconds, len(active))
            all_done = asyncio.create_task(asyncio.wait(active))
            stop = asyncio.create_task(self._stop_waiting.wait())
            await asyncio.wait({all_done, stop}, timeout=self.settings.shutdown_seconds, return_when=asyncio.FIRST_COMPLETED)
            all_done.cancel()
            stop.cancel()
        await self._cancel_remaining()

        # Every request has its response or was cancelled by now, so no one waits for jobs still running.
        self.queue.close(timeout=0)
        log.info("Stopped handling requests; disconnecting from Discord")

    async def _cancel_remaining(self) -> None:
        remaining = [task for task in self._active if not task.done()]
        if not remaining:
            return
        log.warning("Cancelling %d requests still in flight after the shutdown wait", len(remaining))
        for task in remaining:
            task.cancel()
        await asyncio.wait(remaining, timeout=CANCEL_GRACE_SECONDS)


def create_bot(settings: Settings, service) -> GanBot:
    """Build the client for a started generation service; `run_bot` connects it."""
    return GanBot(settings, service)


async def run_bot(settings: Settings, service) -> None:
    """Connect to Discord and serve until SIGINT or SIGTERM; raises discord.LoginFailure for a rejected token."""
    bot = create_bot(settings, service)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    closing_tasks = set()  # the event loop keeps only weak references to tasks

    def on_signal(signum: int) -> None:
        if not bot.shutting_down:
            log.info("Received %s: shutting down", signal.Signals(signum).name)
            closing_tasks.add(loop.create_task(bot.close()))
        else:
            log.info("Received %s again: no longer waiting for requests in flight", signal.Signals(signum).name)
            bot.stop_waiting()

    # Signal handlers work only in the main thread; tests may run the bot elsewhere and close it themselves.
    installed = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        async with bot:
            await bot.start(settings.discord_token)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
