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
        (["--kimg", "0"], "--kimg must be a positive finite number"),
        (["--kimg", "inf"], "--kimg must be a positive finite number"),
        (["--batch", "-4"], "--batch must be a positive finite number"),
        (["--seed", str(2**40)], "--seed must be in 0..4294967295"),
        (["--diffaugment", "color,blur"], "Unknown DiffAugment policy"),
        (["--g-warmup-kimg", "-1"], "--g-warmup-kimg must be 0 or a positive finite number"),
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

    exports_before = sorted(p.name for p in (run / "exports").iterdir())
    again = run_train("--out", run, "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to train" in again.stderr
    assert sorted(p.name for p in (run / "exports").iterdir()) == exports_before
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_resume_skips_corrupt_checkpoint(tmp_path, small_archive):
    run = tmp_path / "run"
    first = run_train("--data", small_archive, "--preset", "tiny", "--out", run, "--batch", "8", "--kimg", "0.032", "--tick-kimg", "0.016", "--snapshot-kimg", "0.016")
    assert first.returncode == 0, first.stderr[-2000:]
    newest = sorted((run / "checkpoints").glob("ckpt-*.index"))[-1]
    newest.write_bytes(b"garbage")

    resumed = run_train("--out", run, "--resume", "--kimg", "0.048")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "is unreadable" in resumed.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_resume_without_checkpoint_exit_2(tmp_path, small_archive):
    run = tmp_path / "run"
    first = run_train("--data", small_archive, "--preset", "tiny", "--out", run, "--batch", "8", "--kimg", "0.016")
    assert first.returncode == 0, first.stderr[-2000:]
    for file in (run / "checkpoints").iterdir():
        file.unlink()
    result = run_train("--out", run, "--resume", "--kimg", "0.032")
    assert result.returncode == 2
    assert "No checkpoint to resume from" in result.stderr


def test_run_files_readable_by_others(tmp_path, small_archive):
    run = tmp_path / "run"
    old_umask = os.umask(0o022)
    try:
        result = run_train("--data", small_archive, "--preset", "tiny", "--out", run, "--batch", "8", "--kimg", "0.016")
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "status.json").stat().st_mode & 0o777 == 0o644
    assert (run / "exports" / "latest.json").stat().st_mode & 0o777 == 0o644
    export = next(p for p in (run / "exports").iterdir() if p.is_dir())
    assert export.stat().st_mode & 0o777 == 0o755


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


def tiny_export(tiny_run_dir) -> Path:
    return tiny_run_dir / "exports" / json.loads((tiny_run_dir / "exports" / "latest.json").read_text())["path"]


def test_init_generator_with_resume_exit_2(tmp_path, tiny_run_dir):
    result = run_train("--out", tmp_path / "run", "--resume", "--init-generator", tiny_export(tiny_run_dir))
    assert result.returncode == 2
    assert "--init-generator starts a new run" in result.stderr


def test_init_generator_other_preset_exit_2(tmp_path, small_archive, tiny_run_dir):
    export = tiny_export(tiny_run_dir)
    other_preset = run_train("--data", small_archive, "--out", tmp_path / "run", "--init-generator", export, "--preset", "small")
    assert other_preset.returncode == 2
    assert "error: Cannot start from the export" in other_preset.stderr
    assert "choose a matching --preset" in other_preset.stderr
    assert "Traceback" not in other_preset.stderr


def test_init_generator_run_records_its_start(tmp_path, small_archive, tiny_run_dir):
    export = tiny_export(tiny_run_dir)
    run = tmp_path / "run"
    result = run_train("--data", small_archive, "--preset", "tiny", "--out", run, "--batch", "8", "--kimg", "0.032", "--init-generator", export, "--g-warmup-kimg", "0.016")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "G and the EMA generator start from" in result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["init_generator"] == str(export.resolve())
    assert config["g_warmup_kimg"] == 0.016
    assert config["ema_rampup"] == 0.0
    assert "Warm-up over at 0.0 kimg" in result.stderr


def test_init_generator_from_a_run_export_keeps_d(tmp_path, small_archive):
    first = run_train("--data", small_archive, "--preset", "tiny", "--out", tmp_path / "first", "--batch", "8", "--kimg", "0.016")
    assert first.returncode == 0, first.stderr[-2000:]
    export = tmp_path / "first" / "exports" / json.loads((tmp_path / "first" / "exports" / "latest.json").read_text())["path"]

    second = run_train("--data", small_archive, "--preset", "tiny", "--out", tmp_path / "second", "--batch", "8", "--kimg", "0.016", "--init-generator", export)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "G, the EMA generator and D continue from" in second.stderr
    assert json.loads((tmp_path / "second" / "config.json").read_text())["g_warmup_kimg"] == 0.0
