"""The gan-train command line: bad arguments, a short run, stopping on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar_fixtures import small_archive  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def run_train(*args, timeout=240):
    command = [sys.executable, "-m", "gan.cli.train", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--kimg", "0"], "--kimg must be positive"),
        (["--batch", "-4"], "--batch must be positive"),
        (["--diffaugment", "color,blur"], "Unknown DiffAugment policy"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, small_archive, args, message):
    result = run_train("--data", small_archive, "--out", tmp_path / "run", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_exit_2(tmp_path):
    result = run_train("--data", tmp_path / "nothing.tar.gz", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "error: Data path not found" in result.stderr


def test_unwritable_output_exit_2(tmp_path, small_archive):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_train("--data", small_archive, "--out", blocker / "run", "--preset", "tiny")
    assert result.returncode == 2
    assert "Cannot write to the output directory" in result.stderr


def test_resume_without_run_exit_2(tmp_path):
    result = run_train("--out", tmp_path / "never-trained", "--resume")
    assert result.returncode == 2
    assert "Nothing to resume" in result.stderr


def test_short_run_then_resume(tmp_path, small_archive):
    run = tmp_path / "run"
    first = run_train("--data", small_archive, "--preset", "tiny", "--out", run, "--batch", "8", "--kimg", "0.032", "--tick-kimg", "0.016")
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((run / "status.json").read_text())["state"] == "finished"

    second = run_train("--out", run, "--resume", "--kimg", "0.064")
    assert second.returncode == 0, second.stderr[-2000:]
    status = json.loads((run / "status.json").read_text())
    assert status["step"] == 8
    assert status["state"] == "finished"

    clash = run_train("--out", run, "--resume", "--preset", "small")
    assert clash.returncode == 2
    assert "different configuration" in clash.stderr


def test_sigterm_saves_and_exits_0(tmp_path, small_archive):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "gan.cli.train", "--data", str(small_archive), "--preset", "tiny", "--out", str(run), "--batch", "8", "--kimg", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status_path = run / "status.json"
            if status_path.is_file() and json.loads(status_path.read_text()).get("step", 0) > 0:
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-2000:]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped"
    assert status["last_checkpoint"]["kimg"] == status["kimg"]
    assert (run / "exports" / "latest.json").is_file()
