"""Measure an export's image quality with the project's CIFAR-10 classifier.

    gan-evaluate --run runs/cifar10 --data ../data/cifar-10-python.tar.gz
    gan-evaluate --export runs/cifar10/exports/generator-000120 --num-images 5000 --json out.json

Prints fd_cifar, kid_cifar, class match and classifier score beside the
real-data floor (test split against training split), writes them as JSON and,
with --run, adds them to the manifest entry of that export. With --inception
PATH (a Keras Inception-v3 model file) it also reports the standard FID and
Inception Score.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gan.classifier import SHIPPED_CLASSIFIER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-evaluate", description="Measure an export's image quality.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory: evaluate the export its manifest names")
    source.add_argument("--export", type=Path, help="an export directory")
    parser.add_argument("--manifest", choices=("latest", "best"), default="latest", help="which manifest of --run to follow")
    parser.add_argument("--num-images", type=int, default=10000, help="generated images to score (default: 10000)")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: the GAN_DATA_DIR cache)")
    parser.add_argument("--classifier", type=Path, default=SHIPPED_CLASSIFIER, help="classifier folder (default: the shipped one)")
    parser.add_argument("--inception", type=Path, help="Keras Inception-v3 model file for the standard FID and IS")
    parser.add_argument("--json", type=Path, help="where to write the result (default: RUN/metrics/EXPORT.json, or ./metrics-EXPORT.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_images < 2:
        parser.error(f"--num-images must be at least 2, got {args.num_images}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from gan.data import DataError, load_dataset
    from gan.device import configure_devices
    from gan.evaluation import TABLE_COLUMNS, Evaluator, format_table, per_class_lines, record_metrics
    from gan.exports import LATEST, ExportError, atomic_write_json, read_export_info, read_manifest
    from gan.metrics import ClassifierNetwork, InceptionNetwork

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 1

    # Check the cheap things before TensorFlow starts (several seconds).
    if args.run is not None and not args.run.is_dir():
        return fail(f"run directory not found: {args.run}")
    if args.export is not None and not args.export.is_dir():
        return fail(f"export directory not found: {args.export}")
    configure_devices()

    # Find the export.
    try:
        if args.run is not None:
            if not args.run.is_dir():
                return fail(f"run directory not found: {args.run}")
            manifest_path = args.run / "exports" / f"{args.manifest}.json"
            if args.manifest == "best" and not manifest_path.is_file():
                manifest_path = args.run / "exports" / LATEST
            manifest = read_manifest(manifest_path)
        else:
            manifest = read_export_info(args.export)
    except ExportError as error:
        return fail(str(error))
    if not manifest.path.is_dir():
        return fail(f"the manifest names a missing export: {manifest.path}")

    # Load the feature network and the real data.
    try:
        network = ClassifierNetwork(args.classifier)
    except FileNotFoundError as error:
        return fail(str(error))
    except (OSError, ValueError, KeyError) as error:
        return fail(f"cannot load the classifier from {args.classifier}: {error}. Train it again with gan-train-classifier.")
    inception_network = None
    if args.inception is not None:
        try:
            inception_network = InceptionNetwork(args.inception)
        except (OSError, ValueError) as error:
            return fail(f"cannot load Inception-v3 from {args.inception}: {error}")
    try:
        train = load_dataset(args.data, "train")
        test = load_dataset(args.data, "test")
    except DataError as error:
        return fail(str(error))

    # Score.
    evaluator = Evaluator(network, train, test)
    result = evaluator.evaluate(manifest, args.num_images, show_progress=True)
    result["classifier_test_accuracy"] = network.info.get("test_accuracy")
    if inception_network is not None:
        inception = Evaluator(inception_network, train, test)
        standard = inception.evaluate(manifest, args.num_images)
        result["fid"] = standard["fd_inception"]
        result["kid"] = standard["kid_inception"]
        result["inception_score"] = standard["inception_score"]

    # Report and record.
    print(format_table({"generated": result, "real test split (floor)": {**result.get("floor", {}), "kimg": None}}, TABLE_COLUMNS))
    print("class match per class:")
    print("\n".join(per_class_lines(result, manifest.class_names)))
    json_path = args.json
    if json_path is None:
        json_path = (args.run / "metrics" if args.run else Path.cwd()) / f"metrics-{manifest.path.name}.json"
    if args.run is not None:
        record_metrics(args.run / "exports", manifest, result)
    try:
        atomic_write_json(json_path, {"export": str(manifest.path), **result})
    except OSError as error:
        return fail(f"cannot write {json_path}: {error.strerror or error}. Pass a writable --json PATH.")
    print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
