"""Tests of grid, GIF and loss curve rendering with real Pillow encoding and decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gan.images import MAX_PNG_BYTES, MAX_SIZE, grid_shape, render_gif, render_grid, render_loss_curve

DISCORD_LIMIT = 10 * 2**20  # bytes per attachment


def noise_images(count: int, seed: int = 0) -> np.ndarray:
    """Uniform random pixels, the hardest case for PNG and GIF compression."""
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# Grid layout.


@pytest.mark.parametrize(
    "count, expected",
    [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (10, (3, 4)), (16, (4, 4)), (17, (4, 5)), (64, (8, 8))],
)
def test_grid_shape_near_square(count, expected):
    assert grid_shape(count) == expected


@pytest.mark.parametrize("count, columns, expected", [(10, 5, (2, 5)), (4, 1, (4, 1)), (3, 8, (1, 3))])
def test_grid_shape_columns(count, columns, expected):
    assert grid_shape(count, columns) == expected


@pytest.mark.parametrize("count, columns", [(0, None), (4, 0)])
def test_grid_shape_invalid(count, columns):
    with pytest.raises(ValueError):
        grid_shape(count, columns)


# PNG grids.


def test_grid_png_size_and_metadata():
    data = render_grid(noise_images(16), size=64, metadata={"seed": "42", "classes": "cat"})
    image = open_image(data)
    assert image.format == "PNG"
    assert image.size == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2)
    assert image.text["seed"] == "42"
    assert image.text["classes"] == "cat"


def test_grid_single_image_has_no_border():
    image = open_image(render_grid(noise_images(1), size=128))
    assert image.size == (128, 128)


def test_grid_nearest_upscale_keeps_pixels():
    images = noise_images(1)
    image = np.asarray(open_image(render_grid(images, size=64, resample="nearest")))
    assert np.array_equal(image[::2, ::2], images[0])


def test_grid_gap_is_dark():
    image = np.asarray(open_image(render_grid(np.full((2, 32, 32, 3), 255, np.uint8), size=32, gap=4)))
    assert image.shape == (32, 68, 3)
    assert image[:, 32:36].max() < 64


def test_grid_empty_cells_filled():
    image = open_image(render_grid(noise_images(3), size=32))
    assert image.size == (66, 66)


def test_grid_lanczos_size():
    image = open_image(render_grid(noise_images(4), size=100, resample="lanczos"))
    assert image.size == (202, 202)


def test_grid_non_latin1_metadata():
    image = open_image(render_grid(noise_images(1), size=32, metadata={"prompt": "chat \u732b"}))
    assert image.text["prompt"] == "chat \u732b"


@pytest.mark.parametrize("size", [31, MAX_SIZE + 1, 64.0])
def test_grid_size_out_of_range(size):
    with pytest.raises(ValueError, match="out of range"):
        render_grid(noise_images(1), size=size)


def test_grid_unknown_resample():
    with pytest.raises(ValueError, match="Unknown resampling 'bicubic'"):
        render_grid(noise_images(1), resample="bicubic")


@pytest.mark.parametrize(
    "images",
    [np.zeros((0, 32, 32, 3), np.uint8), np.zeros((2, 32, 32), np.uint8), np.zeros((2, 32, 32, 3), np.float32)],
)
def test_grid_invalid_images(images):
    with pytest.raises(ValueError):
        render_grid(images)


def test_grid_worst_case_below_discord_limit():
    # 64 noise images at the largest size: 7.4 MiB with lanczos, 0.3 MiB with nearest (Pillow 13.0).
    images = noise_images(64)
    for resample in ("nearest", "lanczos"):
        data = render_grid(images, size=MAX_SIZE, resample=resample, metadata={"seed": "1"})
        assert len(data) < MAX_PNG_BYTES < DISCORD_LIMIT, resample
        assert open_image(data).size == (8 * 256 + 7 * 2, 8 * 256 + 7 * 2)


def test_grid_over_budget_uses_nearest():
    data = render_grid(noise_images(4), size=128, resample="lanczos", max_bytes=120_000)
    image = open_image(data)
    assert len(data) <= 120_000
    assert image.size == (258, 258)
    assert image.text["resample"].startswith("nearest")


def test_grid_over_budget_even_nearest():
    with pytest.raises(ValueError, match="over the limit"):
        render_grid(noise_images(4), size=128, max_bytes=1000)


# GIF walks.


def test_gif_frames_size_and_comment():
    data = render_gif(noise_images(5), size=64, duration_ms=80, metadata={"seed": "7", "classes": "cat"})
    image = open_image(data)
    assert image.format == "GIF"
    assert image.n_frames == 5
    assert image.size == (64, 64)
    assert image.info["loop"] == 0
    assert image.info["duration"] == 80
    assert b"seed: 7" in image.info["comment"]


def test_gif_lanczos_frames():
    image = open_image(render_gif(noise_images(3), size=96, resample="lanczos"))
    assert image.n_frames == 3
    assert image.size == (96, 96)


def test_gif_worst_case_below_discord_limit():
    # 64 noise frames at the largest size: 2.5 MiB with lanczos, 1.0 MiB with nearest (Pillow 13.0).
    data = render_gif(noise_images(64), size=MAX_SIZE, resample="lanczos")
    assert len(data) < DISCORD_LIMIT


@pytest.mark.parametrize("duration_ms", [0, 19, 10_001])
def test_gif_duration_out_of_range(duration_ms):
    with pytest.raises(ValueError, match="out of range"):
        render_gif(noise_images(2), duration_ms=duration_ms)


def test_gif_size_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        render_gif(noise_images(2), size=512)


# Loss curves.


def loss_history(points: int) -> list[dict]:
    return [{"kimg": 0.5 * i, "loss_d": 1.4 - 0.01 * i, "loss_g": 0.6 + 0.02 * i} for i in range(points)]


def test_loss_curve_png_size():
    image = open_image(render_loss_curve(loss_history(50), width=640, height=320))
    assert image.format == "PNG"
    assert image.size == (640, 320)


def test_loss_curve_draws_both_losses():
    pixels = np.asarray(open_image(render_loss_curve(loss_history(50))).convert("RGB")).reshape(-1, 3)
    colors = {tuple(pixel) for pixel in pixels}
    assert (31, 119, 180) in colors  # D loss line
    assert (255, 127, 14) in colors  # G loss line


@pytest.mark.parametrize("history", [[], [{"kimg": 1.0, "loss_d": 1.0, "loss_g": 0.5}], None])
def test_loss_curve_no_data(history):
    image = open_image(render_loss_curve(history, width=320, height=160))
    assert image.size == (320, 160)
    colors = {tuple(pixel) for pixel in np.asarray(image.convert("RGB")).reshape(-1, 3)}
    assert (31, 119, 180) not in colors


def test_loss_curve_skips_invalid_points():
    history = loss_history(10) + [
        {"kimg": 6.0, "loss_d": float("nan"), "loss_g": float("inf")},
        {"kimg": None, "loss_d": 1.0},
        {"loss_d": 1.0},
        "not a dict",
    ]
    image = open_image(render_loss_curve(history))
    assert image.size == (640, 320)


def test_loss_curve_constant_losses():
    history = [{"kimg": float(i), "loss_d": 1.0, "loss_g": 1.0} for i in range(5)]
    assert open_image(render_loss_curve(history)).size == (640, 320)


def test_loss_curve_size_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        render_loss_curve(loss_history(5), width=10, height=10)
