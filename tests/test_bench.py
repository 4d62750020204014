"""The benchmark script runs end to end on tiny settings and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "gan.cli.bench", "--quick", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_cores"] > 0
    assert report["matmul_gflops"] > 0
    assert report["training"][0]["preset"] == "tiny"
    assert report["training"][0]["img_per_sec"] > 0
    phases = {row["phase"]: row for row in report["training"][0]["phases"]}
    assert {"D step", "G step", "EMA update", "whole train step"} <= set(phases)
    assert phases["whole train step"]["share"] == 1.0
    assert all(row["ms"] > 0 for row in phases.values())
    assert "where one tiny train step's time goes" in result.stdout
    assert [row["count"] for row in report["generation"]] == [1, 16, 64]
    assert report["reload"]["n"] == 2
    assert report["bot"]["bot_e2e"][0]["p50_ms"] > 0


def test_bench_unknown_preset_exit_2(tmp_path):
    command = [sys.executable, "-m", "gan.cli.bench", "--presets", "huge", "--json", str(tmp_path / "b.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2
    assert "unknown preset huge" in result.stderr


def test_bench_phases_preset_must_be_benchmarked(tmp_path):
    command = [sys.executable, "-m", "gan.cli.bench", "--presets", "tiny", "--phases-preset", "small", "--json", str(tmp_path / "b.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2
    assert "--phases-preset small is not among --presets tiny" in result.stderr
