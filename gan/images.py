"""Rendering of generated images: upscaled grids as PNG, walks as GIF, loss curves.

Everything here takes uint8 arrays of shape [N, H, W, 3] (the generation
service returns [N, 32, 32, 3]) and returns encoded file bytes, ready to attach
to a Discord message or write to disk. Only Pillow is used.

Output sizes stay well below Discord's 10 MiB attachment limit. Measured worst
case, 64 images of uniform random noise at 256 px per image (Pillow 13.0, zlib
level 6): grid PNG 0.31 MiB with "nearest" and 7.4 MiB with
"lanczos", walk GIF 1.0 MiB ("nearest") and 2.5 MiB ("lanczos"). Generated
images are smoother than noise and encode smaller. `render_grid` still
re-encodes with "nearest" when a PNG would exceed `MAX_PNG_BYTES`.
"""

from __future__ import annotations

import io
import logging
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

log = logging.getLogger(__name__)

MIN_SIZE = 32  # smallest allowed px per image: the generator's own resolution
MAX_SIZE = 256  # largest allowed px per image
MAX_GAP = 16  # px between grid cells
MAX_PNG_BYTES = 8 * 2**20  # 2 MiB under Discord's 10 MiB attachment limit
BACKGROUND = (24, 24, 24)  # dark gray between grid cells
RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
MIN_FRAME_MS = 20  # browsers replace shorter GIF frame durations with 100 ms
MAX_FRAME_MS = 10_000

# Loss curve colors: matplotlib's "tab10" blue and orange.
CHART_BACKGROUND = (255, 255, 255)
CHART_GRID = (228, 228, 228)
CHART_AXES = (90, 90, 90)
CHART_TEXT = (30, 30, 30)
LOSS_COLORS = {"loss_d": (31, 119, 180), "loss_g": (255, 127, 14)}
LOSS_LABELS = {"loss_d": "D loss", "loss_g": "G loss"}


# Grids.


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map generator output in [-1, 1] to uint8 pixels."""
    return np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """Return the (rows, columns) of a grid for `count` images.

    Without `columns` the grid is near-square: ceil(sqrt(count)) columns and
    as many rows as needed, so 4 -> 2x2, 10 -> 3x4 (two empty cells), 16 -> 4x4
    and 64 -> 8x8. `columns` larger than `count` is reduced to `count`.
    """
    if count < 1:
        raise ValueError(f"A grid needs at least 1 image, got {count}.")
    if columns is None:
        columns = math.ceil(math.sqrt(count))
    elif columns < 1:
        raise ValueError(f"Grid columns must be at least 1, got {columns}.")
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    return rows, columns


def render_grid(
    images: np.ndarray,
    size: int = 128,
    resample: str = "nearest",
    gap: int = 2,
    columns: int | None = None,
    metadata: dict[str, str] | None = None,
    *,
    max_bytes: int = MAX_PNG_BYTES,
) -> bytes:
    """Upscale `images` to `size` px each, tile them in a grid and encode it as PNG.

    Cells are `gap` px apart on a dark background, with no border around the
    grid, so the PNG is columns * size + (columns - 1) * gap px wide and
    likewise high. `metadata` goes into tEXt chunks (iTXt for text that
    Latin-1 cannot encode). If the PNG is larger than `max_bytes` with
    "lanczos", it is rendered again with "nearest", and the metadata key
    "resample" records that. Raises ValueError for invalid arguments, or if even
    "nearest" exceeds `max_bytes`.
    """
    images = _check_images(images, "images")
    _check_size(size)
    _check_resample(resample)
    if not 0 <= gap <= MAX_GAP:
        raise ValueError(f"Gap {gap} px is out of range 0..{MAX_GAP}.")
    rows, columns = grid_shape(len(images), columns)

    canvas = _tile(images, rows, columns, size, resample, gap)
    data = _encode_png(canvas, metadata)
    if len(data) <= max_bytes:
        return data

    # Lanczos output of noisy images compresses badly, and nearest-neighbor
    # upscaling repeats pixels, which PNG filters compress well.
    if resample != "nearest":
        log.warning(
            "Grid PNG with %s resampling is %d bytes, over %d; rendering it with nearest instead",
            resample,
            len(data),
            max_bytes,
        )
        canvas = _tile(images, rows, columns, size, "nearest", gap)
        metadata = {**(metadata or {}), "resample": f"nearest ({resample} exceeded {max_bytes} bytes)"}
        data = _encode_png(canvas, metadata)
    if len(data) > max_bytes:
        raise ValueError(
            f"The grid PNG is {len(data)} bytes, over the limit of {max_bytes}. "
            "Request fewer images or a smaller size."
        )
    return data


def _tile(images: np.ndarray, rows: int, columns: int, size: int, resample: str, gap: int) -> Image.Image:
    width = columns * size + (columns - 1) * gap
    height = rows * size + (rows - 1) * gap
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas.paste(_upscale(image, size, resample), (column * (size + gap), row * (size + gap)))
    return canvas


def _upscale(image: np.ndarray, size: int, resample: str) -> Image.Image:
    return Image.fromarray(image, "RGB").resize((size, size), RESAMPLING[resample])


def _encode_png(image: Image.Image, metadata: dict[str, str] | None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(str(key), str(value))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


# Walks.


def render_gif(
    frames: np.ndarray,
    size: int = 128,
    resample: str = "nearest",
    duration_ms: int = 100,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """Upscale `frames` to `size` px each and encode them as a looping GIF.

    Each frame gets its own 256-color palette (Pillow's fast octree
    quantizer, no dithering). `metadata` goes into the GIF comment as one
    "key: value" line per item. Pillow merges identical consecutive frames
    into one longer frame, so a walk whose frames do not change decodes to
    fewer frames with the same total duration.
    """
    frames = _check_images(frames, "frames")
    _check_size(size)
    _check_resample(resample)
    if not MIN_FRAME_MS <= duration_ms <= MAX_FRAME_MS:
        raise ValueError(f"Frame duration {duration_ms} ms is out of range {MIN_FRAME_MS}..{MAX_FRAME_MS}.")

    # Median cut, Pillow's default quantizer, took about 0.25 s per 256 px
    # Lanczos frame in a measurement with Pillow 13.0, the octree quantizer under 5 ms.
    palette_frames = [
        _upscale(frame, size, resample).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        for frame in frames
    ]
    comment = "\n".join(f"{key}: {value}" for key, value in (metadata or {}).items())
    buffer = io.BytesIO()
    palette_frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=palette_frames[1:],
        duration=int(duration_ms),
        loop=0,  # repeat forever
        comment=comment.encode("utf-8"),
    )
    return buffer.getvalue()


# Loss curves.


def render_loss_curve(history: list[dict], width: int = 640, height: int = 320) -> bytes:
    """Draw the D and G losses against kimg as a PNG line chart of `width` x `height` px.

    `history` items look like {"kimg": 1.0, "loss_d": 1.2, "loss_g": 0.4}.
    Items without a finite kimg are skipped, and so is a missing or non-finite
    loss. With fewer than two usable items the PNG, still `width` x `height`
    px, shows only the text "no data yet".
    """
    if not 160 <= width <= 4096 or not 100 <= height <= 4096:
        raise ValueError(f"Chart size {width}x{height} px is out of range 160x100..4096x4096.")
    series = _loss_series(history)
    image = Image.new("RGB", (width, height), CHART_BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _chart_font(12)

    if max((len(points) for points in series.values()), default=0) < 2:
        draw.text((width / 2, height / 2), "no data yet", fill=CHART_TEXT, font=_chart_font(16), anchor="mm")
        return _encode_png(image, {"Software": "gan.images"})

    # Plot area, leaving room for tick labels on the left and below, and the legend above.
    left, right, top, bottom = 58, width - 16, 30, height - 42
    kimgs = [kimg for points in series.values() for kimg, _ in points]
    losses = [loss for points in series.values() for _, loss in points]
    x_low, x_high = _padded_range(min(kimgs), max(kimgs), 0.0)
    y_low, y_high = _padded_range(min(losses), max(losses), 0.05)

    def to_pixel(kimg: float, loss: float) -> tuple[float, float]:
        x = left + (kimg - x_low) / (x_high - x_low) * (right - left)
        y = bottom - (loss - y_low) / (y_high - y_low) * (bottom - top)
        return x, y

    # Grid lines and tick labels.
    for tick, label in _nice_ticks(x_low, x_high):
        x, _ = to_pixel(tick, y_low)
        draw.line([(x, top), (x, bottom)], fill=CHART_GRID)
        draw.text((x, bottom + 5), label, fill=CHART_TEXT, font=font, anchor="mt")
    for tick, label in _nice_ticks(y_low, y_high):
        _, y = to_pixel(x_low, tick)
        draw.line([(left, y), (right, y)], fill=CHART_GRID)
        draw.text((left - 6, y), label, fill=CHART_TEXT, font=font, anchor="rm")

    # Axes and their labels.
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=CHART_AXES, width=1)
    draw.text(((left + right) / 2, height - 6), "kimg", fill=CHART_TEXT, font=font, anchor="md")
    draw.text((left, top - 8), "loss", fill=CHART_TEXT, font=font, anchor="md")

    # Loss lines, then the legend in the top right corner.
    for key, points in series.items():
        if len(points) >= 2:
            draw.line([to_pixel(kimg, loss) for kimg, loss in points], fill=LOSS_COLORS[key], width=2)
    legend_x = right
    for key in reversed(list(series)):
        label_width = draw.textlength(LOSS_LABELS[key], font=font)
        draw.text((legend_x, top - 8), LOSS_LABELS[key], fill=CHART_TEXT, font=font, anchor="rm")
        legend_x -= label_width + 6
        draw.line([(legend_x - 18, top - 8), (legend_x, top - 8)], fill=LOSS_COLORS[key], width=3)
        legend_x -= 32

    return _encode_png(image, {"Software": "gan.images"})


def _loss_series(history: list[dict]) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {key: [] for key in LOSS_COLORS}
    for item in history or []:
        if not isinstance(item, dict):
            continue
        kimg = _finite(item.get("kimg"))
        if kimg is None:
            continue
        for key, points in series.items():
            loss = _finite(item.get(key))
            if loss is not None:
                points.append((kimg, loss))
    for points in series.values():
        points.sort()
    return series


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _padded_range(low: float, high: float, padding: float) -> tuple[float, float]:
    if high - low < 1e-12:
        return low - 0.5, high + 0.5
    margin = (high - low) * padding
    return low - margin, high + margin


def _nice_ticks(low: float, high: float, target: int = 5) -> list[tuple[float, str]]:
    """Return about `target` ticks at multiples of 1, 2 or 5 x 10^k within [low, high], with labels."""
    raw_step = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    decimals = max(0, -math.floor(math.log10(step)))
    ticks = []
    value = math.ceil(low / step) * step
    while value <= high + step * 1e-9:
        ticks.append((value, f"{value:.{decimals}f}"))
        value += step
    return ticks


def _chart_font(size: int):
    # Pillow draws its built-in font at any size only when FreeType is present.
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):
        return ImageFont.load_default()


# Argument checks.


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"{name} must have shape [N, H, H, 3], got {list(images.shape)}.")
    if images.shape[0] < 1:
        raise ValueError(f"{name} is empty. Render at least one image.")
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {images.dtype}.")
    return images


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"Size {size!r} px is out of range {MIN_SIZE}..{MAX_SIZE}.")


def _check_resample(resample: str) -> None:
    if resample not in RESAMPLING:
        raise ValueError(f"Unknown resampling {resample!r}. Use one of: {', '.join(RESAMPLING)}.")
