#!/usr/bin/env python
"""Copy a run's export into gan/pretrained/, the model served when nothing else is configured.

    scripts/ship_pretrained.py --run runs/cifar10 --manifest best
    scripts/ship_pretrained.py --export runs/cifar10/exports/generator-000230 --metrics metrics.json

Replaces any export shipped before and writes gan/pretrained/latest.json with the
same fields (and metrics) as the run's manifest, its path made relative.
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import json  # noqa: E402

from gan.exports import LATEST, ExportError, atomic_write_json, hash_export, read_export_info, read_manifest  # noqa: E402

PRETRAINED = ROOT / "gan" / "pretrained"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory")
    source.add_argument("--export", type=Path, help="export directory")
    parser.add_argument("--manifest", choices=("latest", "best"), default="best", help="which manifest's export of --run to ship")
    parser.add_argument("--metrics", type=Path, help="gan-evaluate JSON of the export, recorded in the shipped manifest")
    args = parser.parse_args()

    try:
        if args.run is not None:
            manifest = read_manifest(args.run / "exports" / f"{args.manifest}.json")
        else:
            manifest = read_export_info(args.export)
            manifest.sha256 = hash_export(manifest.path)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.metrics is not None:
        result = json.loads(args.metrics.read_text())
        manifest.metrics = {k: v for k, v in result.items() if k not in ("class_match_per_class", "export")}
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
    info = json.loads((target / "export.json").read_text())
    info["dataset"] = manifest.dataset
    atomic_write_json(target / "export.json", info)
    manifest.sha256 = hash_export(target)
    atomic_write_json(PRETRAINED / LATEST, manifest.to_dict(PRETRAINED))
    print(f"shipped {target} (step {manifest.step}, {manifest.kimg:g} kimg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
