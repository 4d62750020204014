"""The offline console: line parsing, the shared handlers in process, and `python -m bot --console` on a real export."""

from __future__ import annotations

import io
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.console import Console, ConsoleError, parse_line, run_console
from test_bot_fakes import StandInService, settings

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


# Parsing.


def test_parse_generate_options():
    command, options = parse_line("/generate class:cat count:4 seed:7")
    assert (command.name, options) == ("generate", {"class": "cat", "count": "4", "seed": "7"})


def test_parse_train_status():
    command, options = parse_line("/train status")
    assert (command.handler_command, options) == ("train status", {})


def test_parse_without_slash():
    assert parse_line("model")[0].name == "model"


def test_parse_no_break_spaces():
    command, options = parse_line("/generate\u00a0class:cat\u00a0count:4")
    assert command.name == "generate"
    assert options == {"class": "cat", "count": "4"}


def test_parse_quoted_value():
    assert parse_line("/generate class:'pickup truck'")[1] == {"class": "pickup truck"}


@pytest.mark.parametrize(
    "line, message",
    [
        ("/frob", "Unknown command '/frob'."),
        ("/train", "/train needs a subcommand: type /train status."),
        ("/train stats", "/train needs a subcommand: type /train status."),
        ("hello", "Unknown command 'hello'."),
        ("   ", "Empty line."),
        ("/generate colour:red", "Unknown option 'colour' for /generate. Its options: class, count, seed."),
        ("/generate cat", "Expected an option as name:value, got 'cat'."),
        ("/generate seed:1 seed:2", "Option 'seed' is given twice."),
        ("/generate seed:", "Option 'seed' needs a value, like seed:7."),
        ("/model count:3", "Unknown option 'count' for /model. Its options: none."),
        ("/generate class:'cat", "Cannot read the line"),
    ],
)
def test_parse_rejects(line, message):
    with pytest.raises(ConsoleError) as caught:
        parse_line(line)
    assert str(caught.value).startswith(message)


# The console in process, on the stand-in service.


def run_lines(tmp_path, text: str, service=None) -> tuple[int, str]:
    out = io.StringIO()
    status = run_console(settings(output_dir=tmp_path / "images"), service or StandInService(), io.StringIO(text), out)
    return status, out.getvalue()


def test_console_generate_writes_png(tmp_path):
    status, output = run_lines(tmp_path, "/generate class:cat count:4 seed:7\n")
    path = tmp_path / "images" / "cat-4x-seed7.png"
    assert status == 0
    assert path.read_bytes().startswith(PNG)
    assert output.splitlines() == [
        "4 × cat, seed 7, model step 1200.",
        f"Saved {path}",
        "Buttons: /reroll (Re-roll), /variations (Variations)",
    ]


def test_console_bad_command_continues(tmp_path):
    _, output = run_lines(tmp_path, "/frob\n/generate seed:1 count:1\n")
    assert output.startswith("Unknown command '/frob'.")
    assert "1 random: " in output


def test_console_invalid_value_same_message(tmp_path):
    _, output = run_lines(tmp_path, "/generate count:40\n")
    assert output == "count must be a whole number from 1 to 16, got '40'.\n"


def test_console_variations_act_on_last_result(tmp_path):
    service = StandInService()
    run_lines(tmp_path, "/generate class:dog count:2 seed:11\n/variations\n", service)
    assert (service.calls[1]["seed"], service.calls[1]["class_name"], service.calls[1]["count"]) == (11, 5, 2)
    assert service.calls[1]["variation"] > 0


def test_console_reroll_before_generate(tmp_path):
    _, output = run_lines(tmp_path, "/reroll\n")
    assert output == "There is no result to use /reroll on yet. Run /generate first.\n"


def test_console_no_cooldown_between_commands(tmp_path):
    service = StandInService()
    run_lines(tmp_path, "/generate seed:1\n/generate seed:2\n/reroll\n", service)
    assert len(service.calls) == 3


def test_console_operator_is_admin(tmp_path):
    _, output = run_lines(tmp_path, "/train status\n")
    assert output.startswith("The bot is not watching a training run (GAN_RUN_DIR is not set).")


def test_console_quit_stops_reading(tmp_path):
    service = StandInService()
    status, _ = run_lines(tmp_path, "/quit\n/generate seed:1\n", service)
    assert status == 0
    assert service.calls == []


def test_console_unexpected_error_continues(tmp_path, caplog):
    service = StandInService(fail_with=RuntimeError("TensorFlow crashed"))
    _, output = run_lines(tmp_path, "/generate seed:1\n/help\n", service)
    error_id = re.search(r"error id ([0-9a-f]{8})", output).group(1)
    assert error_id in caplog.text
    assert "Commands (options are name:value" in output


def test_console_unwritable_output_continues(tmp_path):
    blocker = tmp_path / "images"
    blocker.write_text("a file where the output folder should be")
    _, output = run_lines(tmp_path, "/generate seed:1 count:1\n/generate seed:2 count:1\n")
    assert output.count("Set BOT_OUTPUT_DIR to a writable folder.") == 2


def test_console_overlong_seed_rejected(tmp_path):
    _, output = run_lines(tmp_path, "/generate seed:" + "9" * 5000 + "\n")
    assert output == f"seed must be a whole number from 0 to 9007199254740991, got '{'9' * 40}…' (5000 characters).\n"


def test_console_overlong_class_rejected(tmp_path):
    _, output = run_lines(tmp_path, "/generate class:" + "9" * 5000 + "\n")
    assert output.startswith("class must be a class name or index of at most 256 characters")


def test_console_replaces_image_atomically(tmp_path):
    # A file rewritten in place keeps its inode, so a hard link to it would see the new bytes.
    # An atomic write replaces the directory entry and leaves the linked old file as it was.
    images = tmp_path / "images"
    images.mkdir()
    (images / "cat-1x-seed7.png").write_bytes(b"old image")
    os.link(images / "cat-1x-seed7.png", tmp_path / "old-link.png")
    run_lines(tmp_path, "/generate class:cat count:1 seed:7\n")
    assert (tmp_path / "old-link.png").read_bytes() == b"old image"
    assert (images / "cat-1x-seed7.png").read_bytes().startswith(PNG)
    assert sorted(path.name for path in images.iterdir()) == ["cat-1x-seed7.png"]


class SigtermOnRead(io.StringIO):
    """Input whose first readline sends SIGTERM to this process and returns a command; later reads are end of input."""

    def __init__(self):
        super().__init__()
        self.sent = False

    def readline(self, *args):
        if self.sent:
            return ""
        self.sent = True
        os.kill(os.getpid(), signal.SIGTERM)
        return "/generate seed:1 count:1\n"


def test_console_sigterm_stops_cleanly(tmp_path):
    # If the console installed no handler, this test's handler would swallow the signal and
    # the command after it would run.
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    service = StandInService()
    try:
        status = run_console(settings(output_dir=tmp_path), service, SigtermOnRead(), io.StringIO())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 0
    assert service.calls == []
    assert received == []


def test_console_restores_sigterm_handler(tmp_path):
    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        run_console(settings(output_dir=tmp_path), StandInService(), io.StringIO("/help\n"), io.StringIO())
        installed = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert installed is handler


def test_console_help_lists_classes(tmp_path):
    _, output = run_lines(tmp_path, "/help\n")
    assert "classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck, random" in output


def test_console_skips_comments_and_blank_lines(tmp_path):
    _, output = run_lines(tmp_path, "# a script\n\n")
    assert output == ""


def test_console_show_strips_markdown(tmp_path):
    out = io.StringIO()
    console = Console(settings(output_dir=tmp_path), StandInService(), out)
    console.execute("/model")
    console.close()
    assert "**" not in out.getvalue()


# `python -m bot --console` on a real tiny export (the tiny_run_dir fixture of conftest.py).


def run_bot_console(tmp_path: Path, script: str, **variables) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "GAN_", "DISCORD_"))}
    environ.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT), **variables)
    return subprocess.run(
        [sys.executable, "-m", "bot", "--console"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=120,
    )


def test_piped_console_on_run_dir(tiny_run_dir, tmp_path):
    script = "/generate class:cat count:4 seed:7\n/generate class:kat\n/help\n/variations\n/model\n/train status\n"
    result = run_bot_console(tmp_path, script, GAN_RUN_DIR=str(tiny_run_dir))
    lines = result.stdout.splitlines()
    variations = next(line for line in lines if line.startswith("Saved console-output/cat-4x-seed7-variation"))

    assert result.returncode == 0, result.stderr
    assert lines[:3] == [
        "4 × cat, seed 7, model step 100.",
        "Saved console-output/cat-4x-seed7.png",
        "Buttons: /reroll (Re-roll), /variations (Variations)",
    ]
    assert (tmp_path / "console-output" / "cat-4x-seed7.png").read_bytes().startswith(PNG)
    assert (tmp_path / variations.removeprefix("Saved ")).is_file()
    assert "Unknown class 'kat'. Did you mean 'cat'?" in result.stdout
    assert "Serving the latest export of training run" in result.stdout
    assert "status.json does not exist yet" in result.stdout
    assert "gan-train --data PATH --preset small --out runs/NAME" in result.stdout


def test_piped_console_sigterm_exits_0(tiny_run_dir, tmp_path):
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("BOT_", "GAN_", "DISCORD_"))}
    environ.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT), GAN_RUN_DIR=str(tiny_run_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "--console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=environ,
    )
    try:
        # Wait until the console answers a command, then stop it while it waits for the next line.
        process.stdin.write(b"/help\n")
        process.stdin.flush()
        output = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 120
            while b"Commands (options" not in output and time.monotonic() < deadline:
                if selector.select(timeout=1):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    output += chunk
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stdin.close()
        process.stdout.close()
    assert b"Commands (options" in output
    assert returncode == 0


def test_piped_console_without_model_exits_1(tmp_path):
    result = run_bot_console(tmp_path, "/help\n", GAN_RUN_DIR=str(tmp_path / "no-such-run"))
    assert result.returncode == 1
    assert "no-such-run not found" in result.stderr
