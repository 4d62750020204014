"""Train the CIFAR-10 classifier that the quality metrics use as their feature network.

    gan-train-classifier --data ../data/cifar-10-python.tar.gz --out gan/pretrained/classifier

Trains on the training split only and records the test-split accuracy in
classifier.json beside the weights.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gan.classifier import SHIPPED_CLASSIFIER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gan-train-classifier", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: the GAN_DATA_DIR cache)")
    parser.add_argument("--out", type=Path, default=SHIPPED_CLASSIFIER, help=f"output folder (default: {SHIPPED_CLASSIFIER})")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training split (default: 12)")
    parser.add_argument("--batch", type=int, default=256, help="images per step (default: 256)")
    parser.add_argument("--width", type=int, default=32, help="channels of the first layer (default: 32)")
    args = parser.parse_args(argv)
    if args.epochs <= 0 or args.batch <= 0 or args.width <= 0:
        parser.error("--epochs, --batch and --width must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from gan.classifier import train_classifier
    from gan.data import DataError, load_dataset

    try:
        train = load_dataset(args.data, "train")
        test = load_dataset(args.data, "test")
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    info = train_classifier(train, test, args.out, epochs=args.epochs, batch_size=args.batch, width=args.width)
    print(f"test accuracy {info['test_accuracy']:.4f} after {info['epochs']} epochs ({info['train_seconds']:.0f} s); saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
