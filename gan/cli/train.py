"""Train the class-conditional GAN and publish exports for the bot.

    gan-train --data ../data/cifar-10-python.tar.gz --preset small --out runs/cifar10
    gan-train --out runs/cifar10 --resume                 # continue after a stop
    gan-train --data my_pictures/ --preset tiny --out runs/mine --kimg 50
    gan-train --out runs/more --init-generator runs/cifar10/exports/generator-000500

Without --data the official CIFAR-10 archive is taken from GAN_DATA_DIR (default
~/.cache/cifar-gan-bot), downloaded there first if it is missing. Several GPUs
are used through MirroredStrategy, several workers through TF_CONFIG.
Ctrl-C or SIGTERM saves a checkpoint and an export, then exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
from pathlib import Path

from gan.config import PRESETS, TrainConfig

log = logging.getLogger("gan.train")

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-train", description="Train the CIFAR-10 GAN into a run directory.")
    parser.add_argument("--out", required=True, type=Path, help="run directory to create, or to continue with --resume")
    parser.add_argument("--data", help="cifar-10-python.tar.gz, an extracted cifar-10-batches-py/ folder, or a folder of class sub-folders (default: the GAN_DATA_DIR cache)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="model size (default: small; on --resume: the stored one)")
    parser.add_argument("--kimg", type=float, help="total training length in thousands of real images (default: 2000)")
    parser.add_argument("--batch", type=int, help="images per step over all replicas (default: 64)")
    parser.add_argument("--lr-g", type=float, help="generator learning rate (default: 1e-4)")
    parser.add_argument("--lr-d", type=float, help="discriminator learning rate (default: 4e-4)")
    parser.add_argument("--d-steps", type=int, help="discriminator updates per generator update (default: 1)")
    parser.add_argument("--ema-kimg", type=float, help="half-life of the EMA generator in kimg (default: 10)")
    parser.add_argument("--diffaugment", help="DiffAugment policy, comma-separated from color,translation,cutout; '' for none")
    parser.add_argument("--seed", type=int, help="random seed of the run (default: 0)")
    parser.add_argument("--tick-kimg", type=float, help="kimg between log lines and status updates (default: 1)")
    parser.add_argument("--snapshot-kimg", type=float, help="kimg between checkpoints, exports and sample grids (default: 10)")
    parser.add_argument("--eval-kimg", type=float, help="evaluate the newest export every N kimg with the shipped classifier and keep exports/best.json (default: off)")
    parser.add_argument("--eval-images", type=int, help="generated images per evaluation (default: 5000)")
    parser.add_argument("--init-generator", type=Path, metavar="EXPORT", help="new run only: start from this export directory (e.g. an older run's exports/generator-000500) instead of random weights; G, the EMA generator and, when the export carries them (training/), D continue from it")
    parser.add_argument("--g-warmup-kimg", type=float, help="kimg at the start during which only D trains, so a new D catches up with a warm-started G (default: 20 with an --init-generator export that lacks D, else 0)")
    parser.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto", help="float16 compute: auto turns it on when a GPU is present")
    parser.add_argument("--cpu-replicas", type=int, default=0, help="split the CPU into N logical devices and train with MirroredStrategy across them (for testing the multi-replica path)")
    parser.add_argument("--max-steps", type=int, help="stop (with a checkpoint and an export) after this many steps of this invocation; with --resume they count from the restored step")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def _check_positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("kimg", "batch", "lr_g", "lr_d", "d_steps", "ema_kimg", "tick_kimg", "snapshot_kimg", "max_steps", "eval_kimg", "eval_images"):
        value = getattr(args, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            parser.error(f"--{name.replace('_', '-')} must be a positive finite number, got {value}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    if args.g_warmup_kimg is not None and not (args.g_warmup_kimg >= 0 and math.isfinite(args.g_warmup_kimg)):
        parser.error(f"--g-warmup-kimg must be 0 or a positive finite number, got {args.g_warmup_kimg}")
    if args.init_generator is not None and args.resume:
        parser.error("--init-generator starts a new run; a resumed run takes its generator from its checkpoint. Drop one of the two.")
    if args.cpu_replicas < 0:
        parser.error(f"--cpu-replicas must be 0 or more, got {args.cpu_replicas}")


def make_config(args: argparse.Namespace, data_source: str, class_names, stored: TrainConfig | None) -> TrainConfig:
    """Combine the stored config (on --resume) or the defaults with the options given."""
    if stored is None:
        base = TrainConfig(model=PRESETS[args.preset or "small"], data=data_source, class_names=tuple(class_names))
    else:
        base = stored
        if args.preset is not None:
            base = dataclasses.replace(base, model=dataclasses.replace(PRESETS[args.preset], num_classes=stored.model.num_classes))
        if args.data is not None:
            base = dataclasses.replace(base, data=data_source)
    overrides = {
        "total_kimg": args.kimg,
        "batch_size": args.batch,
        "lr_g": args.lr_g,
        "lr_d": args.lr_d,
        "d_steps": args.d_steps,
        "ema_kimg": args.ema_kimg,
        "diffaugment": args.diffaugment,
        "seed": args.seed,
        "tick_kimg": args.tick_kimg,
        "snapshot_kimg": args.snapshot_kimg,
        "eval_kimg": args.eval_kimg,
        "eval_images": args.eval_images,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.init_generator is not None:
        from gan.exports import has_training_weights

        # Without the earlier run's D, a new D trains alone first, so it catches up with G.
        warmup = 0.0 if has_training_weights(args.init_generator) else 20.0
        # A trained generator needs no EMA ramp-up, which exists for fast-moving random weights.
        overrides.update(init_generator=str(args.init_generator.resolve()), ema_rampup=0.0, g_warmup_kimg=warmup)
    if args.g_warmup_kimg is not None:
        overrides["g_warmup_kimg"] = args.g_warmup_kimg
    if stored is None:
        overrides["class_names"] = tuple(class_names)
        if (PRESETS[args.preset or "small"]).num_classes != len(class_names):
            overrides["model"] = dataclasses.replace(PRESETS[args.preset or "small"], num_classes=len(class_names))
    return dataclasses.replace(base, **overrides)


def _split_cpu(replicas: int) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_positive(parser, args)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow"):  # SavedModel writing logs every traced function at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)

    # Initialize devices before TensorFlow creates its context.
    from gan.device import configure_devices

    if args.cpu_replicas > 1:
        _split_cpu(args.cpu_replicas)
    device = configure_devices()
    log.info("Training on %s", device)

    from gan.augment import parse_policy
    from gan.data import DataError, load_dataset
    from gan.training import Trainer, TrainingError, load_run_config

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    # Load the stored configuration when resuming.
    stored = None
    if args.resume:
        try:
            stored = load_run_config(args.out)
        except TrainingError as error:
            return fail(str(error))
    if args.diffaugment is not None:
        try:
            parse_policy(args.diffaugment)
        except ValueError as error:
            return fail(str(error))

    # Load training set.
    data_spec = args.data
    if data_spec is None and stored is not None:
        data_spec = stored.data
    try:
        dataset = load_dataset(data_spec)
    except DataError as error:
        return fail(str(error))

    config = make_config(args, dataset.source, dataset.class_names, stored)
    mixed = args.mixed_precision == "on" or (args.mixed_precision == "auto" and device.startswith("/GPU"))
    config = dataclasses.replace(config, mixed_precision=mixed)

    # Construct networks and resume.
    try:
        trainer = Trainer(config, args.out, dataset)
        trainer.prepare_run_dir(resume=args.resume)
    except TrainingError as error:
        return fail(str(error))

    # Train.
    try:
        trainer.train(max_steps=args.max_steps)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Aborted without saving; the last checkpoint is kept.", file=sys.stderr)
        return 130
    except Exception as error:  # the trainer already marked the run failed and logged the traceback
        print(f"error: training failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
