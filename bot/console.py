"""The offline console: the bot's commands in a terminal, without Discord.

    printf '/generate class:cat count:4 seed:7\\n/model\\n' | python -m bot --console

Lines look like Discord's slash commands (`/generate class:cat count:4`).
Replies are printed as a Discord user would read them and images are written
to BOT_OUTPUT_DIR. The Re-roll and Variations buttons of the last result are
the commands /reroll and /variations. The operator counts as a server
manager, so /train status works. The queue and the per-user limit apply as on
Discord, but not the cooldown: commands run one at a time for one person.
SIGTERM stops the console as Ctrl-C does, with exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.errors import log_unexpected
from bot.handlers import GENERATE_OPTIONS, CommandHandlers
from bot.limits import GenerationQueue
from bot.messages import ButtonSpec, Reply, Request
from bot.settings import Settings
from gan.exports import atomic_write_bytes

log = logging.getLogger(__name__)

CONSOLE_USER_ID = 0  # no Discord user has id 0
PROMPT = "gan> "


@dataclass(frozen=True)
class ConsoleCommand:
    name: str  # as typed, without the slash
    handler_command: str | None  # the Request.command it runs; None for console-only commands
    options: tuple[str, ...]
    description: str


COMMANDS = {
    command.name: command
    for command in (
        ConsoleCommand("generate", "generate", ("class", "count", "seed"), "Generate a grid of images."),
        ConsoleCommand("reroll", "reroll", (), "Re-roll the last result: same class and count, new seed."),
        ConsoleCommand(
            "variations", "variations", (), "Variations of the last result: same seed, slightly moved latent vectors."
        ),
        ConsoleCommand("model", "model", (), "Show the served model: step, data, metrics, last reload."),
        ConsoleCommand("train status", "train status", (), "Show the training run of GAN_RUN_DIR."),
        ConsoleCommand("help", None, (), "List the commands and their options."),
        ConsoleCommand("quit", None, (), "Leave the console (end of input does the same)."),
    )
}


class ConsoleError(ValueError):
    """A line that is not a valid command. The message explains what to type instead."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM inside `sigterm_interrupts`, so SIGTERM stops what Ctrl-C stops."""


@contextlib.contextmanager
def sigterm_interrupts():
    """Make SIGTERM raise Terminated in the main thread while the block runs, then restore the previous handler.

    Only the first SIGTERM raises. Later ones are ignored, so they cannot
    interrupt the cleanup that the first one started. Outside the main
    thread, where Python cannot install signal handlers, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = False

    def on_sigterm(signum, frame):
        nonlocal received
        if not received:
            received = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_line(line: str) -> tuple[ConsoleCommand, dict[str, str]]:
    """Split a line such as `/generate class:cat count:4` into its command and options."""
    # Text pasted from chat or the web often has no-break spaces between words.
    line = line.replace("\u00a0", " ")
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise ConsoleError(f"Cannot read the line: {error}. Quote values with spaces, like class:'pickup truck'.") from None

    if not words:
        raise ConsoleError("Empty line. Type /help for the commands.")

    # Command names: "/generate", or two words for "/train status"; the slash is optional.
    typed = words[0] if len(words[0]) <= 40 else words[0][:40] + "..."
    first = words[0].lower().lstrip("/")
    if first == "train" and len(words) > 1 and words[1].lower() == "status":
        name, words = "train status", words[2:]
    else:
        name, words = first, words[1:]
    command = COMMANDS.get(name)
    if command is None:
        known = ", ".join("/" + known for known in COMMANDS)
        if name == "train":
            raise ConsoleError(f"/train needs a subcommand: type /train status. Commands: {known}.")
        raise ConsoleError(f"Unknown command '{typed}'. Commands: {known}. Type /help for their options.")

    options: dict[str, str] = {}
    for word in words:
        key, colon, value = word.partition(":")
        key = key.lower()
        if not colon:
            raise ConsoleError(f"Expected an option as name:value, got {word!r}. Type /help for the options of /{name}.")
        if key not in command.options:
            listed = ", ".join(command.options) if command.options else "none"
            raise ConsoleError(f"Unknown option {key!r} for /{name}. Its options: {listed}.")
        if key in options:
            raise ConsoleError(f"Option {key!r} is given twice.")
        if not value:
            raise ConsoleError(f"Option {key!r} needs a value, like {key}:{_example(key)}.")
        options[key] = value
    return command, options


def _example(option: str) -> str:
    return {"class": "cat", "count": "4", "seed": "7"}.get(option, "VALUE")


def help_text(class_names: tuple[str, ...]) -> str:
    lines = ["Commands (options are name:value, all optional):"]
    for command in COMMANDS.values():
        lines.append(f"  /{command.name:<14} {command.description}")
        if command.name == "generate":
            for option, description in GENERATE_OPTIONS.items():
                lines.append(f"      {option + ':':<8} {description}")
            lines.append(f"      classes: {', '.join([*class_names, 'random'])}")
    return "\n".join(lines)


class Console:
    """Reads commands, runs them through the shared handlers and shows the replies."""

    def __init__(self, settings: Settings, service, out: TextIO = sys.stdout):
        self.settings = settings
        self.service = service
        self.out = out
        self.queue = GenerationQueue(settings.queue_size, settings.max_per_user, cooldown_seconds=0)
        self.handlers = CommandHandlers(service, self.queue, settings)
        self.last_buttons: tuple[ButtonSpec, ...] = ()
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.queue.close(timeout=5)
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def run(self, source: TextIO, interactive: bool) -> int:
        """Run commands until /quit or end of input; return the exit status, 0."""
        if interactive:
            self._print("Offline console. Type /help for the commands, /quit to leave.")
        while True:
            try:
                line = input(PROMPT) if interactive else source.readline()
                if not interactive and not line:
                    return 0
                if not self.execute(line):
                    return 0
            except (EOFError, KeyboardInterrupt) as stop:
                # Ctrl-D, Ctrl-C or SIGTERM, at the prompt or during a command, leaves the console.
                if isinstance(stop, Terminated):
                    log.info("Received SIGTERM: leaving the console")
                self._print("")
                return 0

    def execute(self, line: str) -> bool:
        """Run one line; return False when the console should stop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        try:
            command, options = parse_line(line)
        except ConsoleError as error:
            self._print(str(error))
            return True

        if command.name == "quit":
            return False
        if command.name == "help":
            self._print(help_text(tuple(self.service.class_names)))
            return True
        if command.name in ("reroll", "variations"):
            spec = next((button for button in self.last_buttons if button.action == command.name), None)
            if spec is None:
                self._print(f"There is no result to use /{command.name} on yet. Run /generate first.")
                return True
            options = spec.request_options()

        request = Request(
            command=command.handler_command,
            user_id=CONSOLE_USER_ID,
            user_name="console",
            options=options,
            manage_guild=True,  # the local operator
        )
        try:
            reply = self._loop.run_until_complete(self.handlers.handle(request, _no_defer))
        except Exception as error:
            self._print(log_unexpected(error, command.name, CONSOLE_USER_ID, None))
            return True
        self.show(reply)
        return True

    def show(self, reply: Reply) -> None:
        # Discord renders **bold** and `code`; a terminal shows the bare text.
        self._print(reply.text.replace("**", "").replace("`", ""))
        for file in reply.files:
            path = Path(self.settings.output_dir) / file.filename
            try:
                # Atomic, so a console stopped mid-write leaves no truncated PNG behind.
                atomic_write_bytes(path, file.data)
            except OSError as error:
                log.error("Could not write %s: %s", path, error)
                self._print(f"Could not write {path}: {error.strerror or error}. Set BOT_OUTPUT_DIR to a writable folder.")
                continue
            self._print(f"Saved {path}")
        if reply.buttons:
            self.last_buttons = reply.buttons
            self._print("Buttons: " + ", ".join(f"/{button.action} ({button.label})" for button in reply.buttons))

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


async def _no_defer(ephemeral: bool) -> None:
    """Do nothing, because the console has no response deadline."""


def run_console(settings: Settings, service, source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Run the console on a started generation service until /quit, end of input, Ctrl-C or SIGTERM; return 0.

    The console prompts only when `source` is a terminal.
    """
    console = Console(settings, service, out)
    try:
        with sigterm_interrupts():
            try:
                return console.run(source, interactive=source.isatty())
            finally:
                console.close()
    except KeyboardInterrupt:
        # Ctrl-C or the first SIGTERM arrived while closing, after the commands ended.
        log.info("Interrupted while closing the console")
        return 0
