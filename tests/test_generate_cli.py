"""Tests of the gan-generate command line against real exports of the tiny preset."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gan.service
from gan.cli.generate import main
from gan.exports import LATEST, read_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_configured_model(monkeypatch, tmp_path_factory):
    """Hide GAN_RUN_DIR and any shipped pretrained model, so every test names its source."""
    monkeypatch.delenv("GAN_RUN_DIR", raising=False)
    monkeypatch.setattr(gan.service, "PRETRAINED_DIR", tmp_path_factory.mktemp("no-pretrained"))


@pytest.fixture(scope="module")
def export_dir(tiny_run_dir) -> Path:
    return read_manifest(tiny_run_dir / "exports" / LATEST).path


@pytest.fixture(scope="module")
def broken(tmp_path_factory, export_dir) -> dict[str, Path]:
    """A truncated export and a run directory whose manifest names a missing export."""
    root = tmp_path_factory.mktemp("broken")
    truncated = root / "truncated"
    shutil.copytree(export_dir, truncated)
    variables = truncated / "variables" / "variables.data-00000-of-00001"
    variables.write_bytes(variables.read_bytes()[:100])

    dangling = root / "dangling"
    (dangling / "exports").mkdir(parents=True)
    manifest = json.loads((export_dir.parent / LATEST).read_text())
    manifest["path"] = "generator-999999"
    (dangling / "exports" / LATEST).write_text(json.dumps(manifest))
    return {"truncated": truncated, "dangling": dangling}


def open_image(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
    return image


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


# Happy paths.


def test_cli_grid_written(tiny_run_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code = main(["--run", str(tiny_run_dir), "--count", "4", "--seed", "7", "--size", "64", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert open_image(out).size == (2 * 64 + 2, 2 * 64 + 2)
    assert "seed: 7" in stdout
    assert "step 100, 6.4 kimg" in stdout
    assert open_image(out).text["seed"] == "7"


def test_cli_grid_default_count(export_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["--export", str(export_dir), "--size", "32", "--class", "cat", "--out", str(out)]) == 0
    assert open_image(out).size == (4 * 32 + 3 * 2, 4 * 32 + 3 * 2)
    assert "seed: " in capsys.readouterr().out


def test_cli_gan_run_dir_env(tiny_run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_RUN_DIR", str(tiny_run_dir))
    out = tmp_path / "grid.png"
    assert main(["--count", "1", "--seed", "1", "--out", str(out)]) == 0
    assert "source run" in capsys.readouterr().out


def test_cli_walk_to_seed_gif(export_dir, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    code = main(["--export", str(export_dir), "--seed", "1", "--walk-to-seed", "2", "--frames", "4", "--size", "32", "--out", str(out)])
    assert code == 0
    image = open_image(out)
    assert image.n_frames == 4
    assert image.size == (32, 32)
    assert b"seed: 1" in image.info["comment"]
    assert "seed: 1" in capsys.readouterr().out


def test_cli_walk_to_class_gif(export_dir, tmp_path):
    out = tmp_path / "walk.gif"
    code = main(["--export", str(export_dir), "--class", "cat", "--walk-to-class", "dog", "--frames", "3", "--out", str(out)])
    assert code == 0
    assert open_image(out).size == (128, 128)


# Error paths: one "error:" line, a non-zero exit code and no file written.


ARGUMENT_ERRORS = {
    "count zero": ["--count", "0"],
    "count too large": ["--count", "65"],
    "seed negative": ["--seed", "-1"],
    "seed too large": ["--seed", str(2**63)],
    "size too small": ["--size", "16"],
    "count not a number": ["--count", "many"],
    "frames without walk": ["--frames", "4"],
    "run and export": ["--run", "a", "--export", "b"],
}


@pytest.mark.parametrize("arguments", ARGUMENT_ERRORS.values(), ids=ARGUMENT_ERRORS.keys())
def test_cli_argument_error(arguments, export_dir, tmp_path, capsys):
    source = [] if "--run" in arguments else ["--export", str(export_dir)]
    code = main([*source, *arguments, "--out", str(tmp_path / "out.png")])
    stderr = capsys.readouterr().err
    assert code == 2
    assert len(error_lines(stderr)) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "out_name, extra, message",
    [
        ("out.jpg", [], "unsupported suffix '.jpg'"),
        ("out", [], "unsupported suffix"),
        ("missing/out.png", [], "not found"),
        ("out.gif", [], "needs a walk"),
        ("out.png", ["--walk-to-seed", "3"], "Use a .gif file"),
        ("out.gif", ["--walk-to-seed", "3", "--count", "4"], "--frames"),
    ],
)
def test_cli_out_error(out_name, extra, message, export_dir, tmp_path, capsys):
    code = main(["--export", str(export_dir), *extra, "--out", str(tmp_path / out_name)])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(lines) == 1
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_out_is_directory(export_dir, tmp_path, capsys):
    (tmp_path / "taken.png").mkdir()
    assert main(["--export", str(export_dir), "--out", str(tmp_path / "taken.png")]) == 2
    assert "is a directory" in error_lines(capsys.readouterr().err)[0]


def test_cli_unknown_class(export_dir, tmp_path, capsys):
    code = main(["--export", str(export_dir), "--class", "kat", "--out", str(tmp_path / "out.png")])
    lines = error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(lines) == 1
    assert "Did you mean 'cat'?" in lines[0]
    assert "Classes: airplane, automobile" in lines[0]
    assert "--class also takes 'all' for one row per class." in lines[0]
    assert list(tmp_path.iterdir()) == []


def model_sources(tmp_path: Path, broken: dict[str, Path]) -> dict[str, list[str]]:
    """Source arguments, by case, that name nothing a model can be served from."""
    return {
        "missing run directory": ["--run", str(tmp_path / "no-run")],
        "run without export": ["--run", str(tmp_path)],
        "missing export": ["--export", str(tmp_path / "no-export")],
        "truncated export": ["--export", str(broken["truncated"])],
        "manifest names missing export": ["--run", str(broken["dangling"])],
        "no pretrained model": [],
    }


MODEL_ERRORS = [
    "missing run directory",
    "run without export",
    "missing export",
    "truncated export",
    "manifest names missing export",
    "no pretrained model",
]


@pytest.mark.parametrize("case", MODEL_ERRORS)
def test_cli_model_error(case, broken, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    source = model_sources(tmp_path, broken)[case]
    code = main([*source, "--count", "2", "--out", str(out_dir / "out.png")])
    lines = error_lines(capsys.readouterr().err)
    assert code == 1
    assert len(lines) == 1
    assert list(out_dir.iterdir()) == []


def test_cli_no_pretrained_hint(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out.png")]) == 1
    line = error_lines(capsys.readouterr().err)[0]
    assert "gan-train --data PATH --preset small --out runs/NAME" in line


def test_cli_script_argument_error(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate.py"), "--count", "0", "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: --count 0 is out of range 1..64")
    assert len(completed.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_class_rows(export_dir, tmp_path, capsys):
    out = tmp_path / "rows.png"
    code = main(["--export", str(export_dir), "--class", "all", "--count", "3", "--seed", "5", "--size", "32", "--out", str(out)])
    assert code == 0
    with Image.open(out) as image:
        # 10 rows of 3 images of 32 px, with a 2 px gap between them.
        assert image.size == (3 * 32 + 2 * 2, 10 * 32 + 9 * 2)
        pixels = np.asarray(image.convert("RGB"))
    assert "10 rows (one per class) of 3 images" in capsys.readouterr().out
    assert not np.array_equal(pixels[:32, :32], pixels[34:66, :32])
