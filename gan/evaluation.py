"""Evaluate an export against real CIFAR-10, with the real-data floor beside it.

The floor is the same distances between the real test split and the real
training split: no generator can be expected to come closer to the training
set than unseen real images do, so a result reads best next to it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from gan import metrics
from gan.data import Dataset, default_data_dir
from gan.exports import BEST, LATEST, Manifest, atomic_write_json, read_manifest, update_manifest_metrics

log = logging.getLogger(__name__)


class Evaluator:
    """Holds the feature network and the cached real-data statistics for repeated evaluations."""

    def __init__(self, network, train: Dataset, test: Dataset | None = None, cache_dir: Path | None = None):
        self.network = network
        self.train = train
        self.test = test
        self.cache_dir = Path(cache_dir) if cache_dir else default_data_dir() / "stats"
        self.reference = metrics.reference_statistics(network, train, self.cache_dir, metrics.dataset_digest(train))
        self._floor: dict | None = None

    @property
    def floor(self) -> dict:
        """Metrics of the real test split against the training split (computed once)."""
        if self._floor is None and self.test is not None:
            self._floor = metrics.score_images(self.network, self.test.images, self.test.labels, self.reference, len(self.train.class_names))
        return self._floor or {}

    def evaluate(self, manifest: Manifest, num_images: int = 10000, show_progress: bool = False) -> dict:
        """Generate `num_images` from the export and score them; the result includes the floor."""
        started = time.perf_counter()
        images, intended = metrics.generate_images(manifest, num_images)
        result = metrics.score_images(self.network, images, intended, self.reference, len(self.train.class_names))
        result.update(
            {
                "num_images": int(num_images),
                "feature_network": self.network.name,
                "step": manifest.step,
                "kimg": manifest.kimg,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        if self.test is not None:
            result["floor"] = {k: v for k, v in self.floor.items() if not k.startswith("class_match_per")}
        if show_progress:
            log.info("Evaluated %s in %.0f s", manifest.path, result["seconds"])
        return result


def record_metrics(exports_dir: Path, manifest: Manifest, result: dict, key: str = "fd_cifar") -> bool:
    """Add `result` to the manifest entries that name this export; update best.json when it improves `key`.

    Returns True when the export became the best one.
    """
    exports_dir = Path(exports_dir)
    summary = {k: v for k, v in result.items() if k != "class_match_per_class"}
    for name in (LATEST, BEST):
        path = exports_dir / name
        if path.is_file():
            try:
                update_manifest_metrics(path, manifest.path, summary)
            except Exception as error:  # a broken manifest must not stop training or evaluation
                log.warning("Could not add metrics to %s: %s", path, error)

    best_path = exports_dir / BEST
    best_value = None
    if best_path.is_file():
        try:
            best_value = read_manifest(best_path).metrics.get(key)
        except Exception as error:
            log.warning("Ignoring unreadable %s: %s", best_path, error)
    value = result.get(key)
    if value is None or (best_value is not None and best_value <= value):
        return False
    manifest.metrics = {**manifest.metrics, **summary}
    atomic_write_json(best_path, manifest.to_dict(exports_dir))
    log.info("New best export %s: %s %.3f (previous %s)", manifest.path.name, key, value, best_value)
    return True


def format_table(rows: dict[str, dict], columns: list[str]) -> str:
    """Format results as a plain-text table: one row per named result, one column per metric."""
    header = ["", *columns]
    lines = [header]
    for name, result in rows.items():
        line = [name]
        for column in columns:
            value = result.get(column)
            if value is None:
                line.append("-")
            elif isinstance(value, float):
                line.append(f"{value:.4g}")
            else:
                line.append(str(value))
        lines.append(line)
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)) for row in lines)


TABLE_COLUMNS = ["kimg", "fd_cifar", "kid_cifar", "kid_cifar_std", "class_match", "classifier_score"]


def per_class_lines(result: dict, class_names) -> list[str]:
    values = result.get("class_match_per_class")
    if not values:
        return []
    return [f"  {name:<12} {value:.3f}" for name, value in zip(class_names, values) if not np.isnan(value)]
