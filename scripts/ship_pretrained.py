#!/usr/bin/env python
"""Copy a run's export into gan/pretrained/, the model served when nothing else is configured.

    scripts/ship_pretrained.py --run runs/cifar10 --manifest best

Replaces any export shipped before and writes gan/pretrained/latest.json with the
same fields (and metrics) as the run's manifest, its path made relative.
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan.exports import LATEST, ExportError, atomic_write_json, hash_export, read_manifest  # noqa: E402

PRETRAINED = ROOT / "gan" / "pretrained"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--manifest", choices=("latest", "best"), default="best", help="which manifest's export to ship")
    args = parser.parse_args()

    try:
        manifest = read_manifest(args.run / "exports" / f"{args.manifest}.json")
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if hash_export(manifest.path) != manifest.sha256:
        print(f"error: {manifest.path} does not match its manifest's sha256; not shipping it", file=sys.stderr)
        return 1

    # Replace the previous export, then name the new one in the manifest.
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    for old in PRETRAINED.glob("generator-*"):
        shutil.rmtree(old)
    target = PRETRAINED / manifest.path.name
    shutil.copytree(manifest.path, target)
    manifest.path = target
    manifest.dataset = Path(manifest.dataset).name or manifest.dataset  # no path of the training machine
    atomic_write_json(PRETRAINED / LATEST, manifest.to_dict(PRETRAINED))
    print(f"shipped {target} (step {manifest.step}, {manifest.kimg:g} kimg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
