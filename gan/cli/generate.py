"""Generate an image grid (PNG) or a latent walk (GIF) from an export.

    gan-generate --run runs/small --class cat --count 16 --seed 42 --out cats.png
    gan-generate --export runs/small/exports/generator-000070 --out random.png
    gan-generate --run runs/small --seed 1 --walk-to-seed 2 --frames 24 --out walk.gif
    gan-generate --run runs/small --class cat --walk-to-class dog --out cat-to-dog.gif

Without --run or --export it serves the run directory in GAN_RUN_DIR, or else
the pretrained export shipped in the package. It prints the seed and the
export used, so any output can be generated again. Invalid input prints one
"error: ..." line on stderr and exits with 2 (invalid arguments) or 1 (found
while loading or generating). No output file is written then.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from gan import images as rendering
from gan.exports import atomic_write_bytes
from gan.service import (
    MAX_FRAMES,
    MAX_VARIATION,
    MIN_FRAMES,
    GenerationError,
    GenerationService,
    ModelUnavailable,
    generation_metadata,
)

log = logging.getLogger(__name__)

DEFAULT_COUNT = 16
DEFAULT_FRAMES = 16
SUFFIXES = (".png", ".gif")


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that reports errors as one "error: ..." line and exits with 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="gan-generate",
        description="Generate a grid of images (PNG) or a latent walk (GIF) with a trained generator.",
    )

    # Where the export comes from.
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--run",
        metavar="DIR",
        help="run directory whose manifest names the export (default: GAN_RUN_DIR, else the shipped model)",
    )
    source.add_argument("--export", metavar="PATH", help="export directory to serve directly")
    parser.add_argument(
        "--manifest",
        choices=("latest", "best"),
        default="latest",
        help="manifest of the run directory to follow, where best falls back to latest (default: latest)",
    )

    # What to generate.
    parser.add_argument(
        "--class",
        dest="class_name",
        default="random",
        metavar="NAME",
        help="class name, class index, 'random' for a random class per image, or 'all' for one row per class "
        "with --count images each, sharing their latent vectors across rows (default: random)",
    )
    parser.add_argument("--count", type=int, help=f"images in the grid, 1..64 (default: {DEFAULT_COUNT})")
    parser.add_argument("--seed", type=int, help="seed of the latent vectors and random classes, 0 to 2**63-1 (default: drawn below 2**53); Discord's /generate takes seeds up to 2**53-1 only")
    parser.add_argument(
        "--variation",
        type=float,
        default=0.0,
        help=f"scale of the noise added to the latent vectors, 0..{MAX_VARIATION:g} (default: 0)",
    )
    parser.add_argument("--variation-seed", type=int, help="seed of that noise (default: drawn)")

    # How to render it.
    parser.add_argument(
        "--size",
        type=int,
        default=128,
        help=f"px per image after upscaling, {rendering.MIN_SIZE}..{rendering.MAX_SIZE} (default: 128)",
    )
    parser.add_argument("--resample", choices=tuple(rendering.RESAMPLING), default="nearest", help="upscaling filter (default: nearest, which keeps the pixels sharp)")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file: .png for a grid, .gif for a walk")

    # Walks instead of grids.
    walk = parser.add_mutually_exclusive_group()
    walk.add_argument("--walk-to-seed", type=int, metavar="N", help="walk from --seed to this seed (GIF)")
    walk.add_argument("--walk-to-class", metavar="NAME", help="walk from --class to this class at one seed (GIF)")
    parser.add_argument("--frames", type=int, help=f"frames of a walk, {MIN_FRAMES}..{MAX_FRAMES} (default: 16)")
    parser.add_argument(
        "--frame-ms",
        type=int,
        default=100,
        help=f"duration of each walk frame in ms, {rendering.MIN_FRAME_MS}..{rendering.MAX_FRAME_MS} (default: 100)",
    )

    parser.add_argument("--gpu-memory-mb", type=int, help="cap on GPU memory in MiB (default: memory growth)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log loading and device details to stderr")
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject invalid arguments that need no model to detect, before TensorFlow starts."""

    def check_range(option: str, value, low, high) -> None:
        if value is not None and not low <= value <= high:
            parser.error(f"{option} {value} is out of range {low}..{high}")

    check_range("--count", args.count, 1, GenerationService.MAX_COUNT)
    check_range("--seed", args.seed, 0, GenerationService.MAX_SEED)
    check_range("--walk-to-seed", args.walk_to_seed, 0, GenerationService.MAX_SEED)
    check_range("--variation-seed", args.variation_seed, 0, GenerationService.MAX_SEED)
    check_range("--variation", args.variation, 0.0, MAX_VARIATION)
    check_range("--size", args.size, rendering.MIN_SIZE, rendering.MAX_SIZE)
    check_range("--frames", args.frames, MIN_FRAMES, MAX_FRAMES)
    check_range("--frame-ms", args.frame_ms, rendering.MIN_FRAME_MS, rendering.MAX_FRAME_MS)

    # The output suffix chooses between a grid and a walk.
    out = Path(args.out)
    suffix = out.suffix.lower()
    walking = args.walk_to_seed is not None or args.walk_to_class is not None
    if suffix not in SUFFIXES:
        parser.error(f"--out {args.out} has an unsupported suffix {suffix or '(none)'!r}. Use .png or .gif")
    if suffix == ".gif" and not walking:
        parser.error(f"--out {args.out} is a GIF, which needs a walk. Add --walk-to-seed N or --walk-to-class NAME")
    if suffix == ".png" and walking:
        parser.error(f"a walk is written as a GIF, but --out {args.out} is a PNG. Use a .gif file")
    if walking and args.count is not None:
        parser.error("--count applies to grids. Set the length of a walk with --frames")
    if not walking and args.frames is not None:
        parser.error("--frames applies to walks. Add --walk-to-seed N or --walk-to-class NAME")
    if walking and args.variation:
        parser.error("--variation applies to grids, not walks")
    if out.is_dir():
        parser.error(f"--out {args.out} is a directory. Give a file name")
    if not out.parent.is_dir():
        parser.error(f"--out {args.out}: directory {out.parent} not found. Create it first")


def main(argv: list[str] | None = None) -> int:
    """Run gan-generate with `argv` (default: sys.argv[1:]) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_arguments(parser, args)
    except SystemExit as exit_request:  # argparse exits for --help and for invalid arguments
        return exit_request.code if isinstance(exit_request.code, int) else 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Hide TensorFlow's C++ INFO and WARNING logs. TF 2.21 still prints a few lines while importing.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    run_dir = args.run
    if run_dir is None and args.export is None:
        run_dir = os.environ.get("GAN_RUN_DIR") or None
    service = GenerationService(
        run_dir=run_dir,
        export_path=args.export,
        manifest=args.manifest,
        gpu_memory_mb=args.gpu_memory_mb,
    )
    try:
        data, summary = _generate(service, args)

        # Write the file only now that everything succeeded, through a temporary file and rename.
        atomic_write_bytes(Path(args.out), data)
    except GenerationError as error:  # an invalid option that only the loaded model can check
        hint = " --class also takes 'all' for one row per class." if str(error).startswith("Unknown class") else ""
        print(f"error: {error}{hint}", file=sys.stderr)
        return 2
    except (ModelUnavailable, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        service.close()

    for line in summary:
        print(line)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


def _generate(service: GenerationService, args: argparse.Namespace) -> tuple[bytes, list[str]]:
    """Load the model, generate and render, and return the file bytes and the lines to print."""
    service.start()
    served = service.served
    seed = args.seed if args.seed is not None else secrets.randbelow(GenerationService.MAX_DRAWN_SEED + 1)

    if args.walk_to_seed is not None or args.walk_to_class is not None:
        generation = service.walk(
            seed_a=seed,
            seed_b=args.walk_to_seed,
            class_a=args.class_name,
            class_b=args.walk_to_class,
            frames=args.frames or DEFAULT_FRAMES,
        )
        data = rendering.render_gif(
            generation.images,
            size=args.size,
            resample=args.resample,
            duration_ms=args.frame_ms,
            metadata=generation_metadata(generation),
        )
        target = f"seed {args.walk_to_seed}" if args.walk_to_seed is not None else f"class {generation.class_names[-1]}"
        description = f"walk of {len(generation.images)} frames from {generation.class_names[0]} at seed {seed} to {target}"
    elif args.class_name.strip().lower() == "all":
        generation, data = _generate_class_rows(service, args, seed)
        description = f"{len(service.class_names)} rows (one per class) of {args.count or DEFAULT_COUNT} images"
    else:
        generation = service.generate(
            class_name=args.class_name,
            count=args.count or DEFAULT_COUNT,
            seed=seed,
            variation=args.variation,
            variation_seed=args.variation_seed,
        )
        data = rendering.render_grid(
            generation.images,
            size=args.size,
            resample=args.resample,
            metadata=generation_metadata(generation),
        )
        rows, columns = rendering.grid_shape(len(generation.images))
        description = f"{rows}x{columns} grid of {len(generation.images)} images: {', '.join(generation.class_names)}"

    summary = [
        f"seed: {generation.seed}",
        f"export: {served.path} (step {served.step}, {served.kimg:g} kimg, source {served.source})",
        description,
    ]
    if generation.variation > 0:
        summary.insert(1, f"variation: {generation.variation:g} (variation seed {generation.variation_seed})")
    return data, summary


def _generate_class_rows(service: GenerationService, args: argparse.Namespace, seed: int):
    """Generate one row per class from the same seed, so each column shows one latent vector in every class."""
    import dataclasses

    import numpy as np

    per_class = args.count or DEFAULT_COUNT
    rows = [service.generate(class_name=index, count=per_class, seed=seed) for index in range(len(service.class_names))]
    generation = dataclasses.replace(
        rows[0],
        images=np.concatenate([row.images for row in rows]),
        labels=tuple(label for row in rows for label in row.labels),
        class_names=tuple(name for row in rows for name in row.class_names),
    )
    data = rendering.render_grid(
        generation.images,
        size=args.size,
        resample=args.resample,
        columns=per_class,
        metadata=generation_metadata(generation),
    )
    return generation, data


if __name__ == "__main__":
    sys.exit(main())
