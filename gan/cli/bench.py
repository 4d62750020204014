"""Measure how fast the product is, in one go on one machine, and write the numbers as JSON.

    gan-bench --json docs/bench.json            # full run (tens of minutes on 2 CPU cores)
    gan-bench --quick --json /tmp/bench.json    # tiny settings, to check that it runs

Sections:
- machine: CPU model, cores, TensorFlow version, device;
- matmul: GFLOP/s of a large float32 matrix multiply on the training device;
- training: img/s of each preset's train step, its estimated GFLOP/s and the
  ratio to the matmul figure, and the peak resident memory of a training process;
- generation: p50 and p95 of generate + render for 1, 16 and 64 images;
- reload: time from a new manifest to the first request served by the new export;
- bot: interaction sent -> follow-up with the file received, through the fake
  Discord of the test suite, and the bot process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("gan.bench")

REPO_ROOT = Path(__file__).resolve().parents[2]


# Machine.


def machine_info() -> dict:
    import tensorflow as tf

    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "device": "GPU" if gpus else "CPU",
        "gpus": [g.name for g in gpus],
    }


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of a size x size float32 matrix multiply, best of `repeats`."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    multiply = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    multiply(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


# Training.


def forward_flops(model_fn, input_specs) -> float:
    """Float operations of one forward pass, counted by TensorFlow's graph profiler."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    concrete = tf.function(model_fn).get_concrete_function(*input_specs)
    options = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return float(model_analyzer.profile(concrete.graph, options=options).total_float_ops)


def train_step_flops(trainer) -> float:
    """Estimated float operations of one train step (d_steps = 1), per the usual backward = 2x forward rule.

    D step: G forward on B, D forward and backward on 2B. G step: G forward and
    backward on B, D forward and backward on B. So 4 G_f + 9 D_f per batch of B.
    """
    import tensorflow as tf

    config = trainer.config
    batch = config.batch_size
    latent = tf.TensorSpec([batch, config.model.latent_dim], tf.float32)
    labels = tf.TensorSpec([batch], tf.int32)
    images = tf.TensorSpec([batch, 32, 32, 3], tf.float32)
    g_flops = forward_flops(lambda z, y: trainer.generator((z, y), training=False), [latent, labels])
    d_flops = forward_flops(lambda x, y: trainer.discriminator((x, y), training=False), [images, labels])
    return config.d_steps * (g_flops + 6 * d_flops) + 3 * g_flops + 3 * d_flops


def _time_per_call(function, repeats: int) -> float:
    """Milliseconds per call of `function`, after one untimed call (which traces it)."""
    import tensorflow as tf

    def call():
        result = function()
        # Wait for the values, so asynchronous execution does not hide the time.
        for value in tf.nest.flatten(result):
            if isinstance(value, tf.Tensor):
                value.numpy()

    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats * 1000.0


def measure_phases(trainer, iterator, repeats: int) -> list[dict]:
    """Time the parts of one train step separately, to show where the step's time goes.

    The top-level parts (input, D step, G step, EMA update) add up to about one
    step. The detail rows break the D step into its passes. Only measured with
    one replica (the default strategy).
    """
    import tensorflow as tf

    if trainer.replicas != 1:
        return [{"phase": f"not measured: {trainer.replicas} replicas", "ms": 0.0, "kind": "total", "share": 0.0}]
    config = trainer.config
    parts = trainer.step_parts
    batch = config.batch_size
    images, labels = next(iterator)
    images = tf.cast(images, tf.float32)
    latent = tf.random.normal([batch, config.model.latent_dim])
    both_images = tf.concat([images, images], axis=0)
    both_labels = tf.concat([labels, labels], axis=0)
    generator, discriminator = trainer.generator, trainer.discriminator

    def d_forward_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(discriminator((both_images, both_labels), training=True))
        return tape.gradient(loss, discriminator.trainable_variables)

    timings = [
        ("input pipeline (next batch)", lambda: next(iterator), "part"),
        ("D step", tf.function(lambda: parts["d_step"](images, labels, 0)), "part"),
        ("G step", tf.function(parts["g_step"]), "part"),
        ("EMA update", tf.function(parts["update_ema"]), "part"),
        ("G forward, batch B", tf.function(lambda: generator((latent, labels), training=True)), "detail"),
        ("DiffAugment, batch 2B", tf.function(lambda: parts["augment"](both_images, 3)), "detail"),
        ("D forward, batch 2B", tf.function(lambda: discriminator((both_images, both_labels), training=True)), "detail"),
        ("D forward + backward, batch 2B", tf.function(d_forward_backward), "detail"),
    ]
    rows = [{"phase": name, "ms": round(_time_per_call(function, repeats), 2), "kind": kind} for name, function, kind in timings]
    step_ms = _time_per_call(lambda: trainer.run_steps(iterator, 1), repeats)
    rows.append({"phase": "whole train step", "ms": round(step_ms, 2), "kind": "total"})
    for row in rows:
        row["share"] = round(row["ms"] / step_ms, 3)
    return rows


def measure_training(preset: str, steps: int, batch: int, phases: bool = False) -> dict:
    """Time `steps` train steps of `preset` on synthetic data in this process."""
    from gan.config import CIFAR10_CLASSES, PRESETS, TrainConfig
    from gan.data import Dataset
    from gan.training import Trainer

    rng = np.random.default_rng(0)
    dataset = Dataset(rng.integers(0, 256, (2048, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 2048).astype(np.int32), CIFAR10_CLASSES, "synthetic")
    config = TrainConfig(model=PRESETS[preset], data="synthetic", batch_size=batch)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, Path(run_dir), dataset)
        iterator = trainer.make_iterator()
        trainer.run_steps(iterator, 2)  # trace and warm up
        start = time.perf_counter()
        trainer.run_steps(iterator, steps)
        elapsed = time.perf_counter() - start
        flops = train_step_flops(trainer)
        phase_rows = measure_phases(trainer, iterator, max(3, steps // 2)) if phases else None
    img_per_sec = steps * batch * config.d_steps / elapsed
    row = {
        "preset": preset,
        "batch": batch,
        "steps": steps,
        "img_per_sec": round(img_per_sec, 2),
        "gflop_per_step": round(flops / 1e9, 3),
        "gflops": round(flops * steps / elapsed / 1e9, 2),
    }
    if phase_rows is not None:
        row["phases"] = phase_rows
    return row


def measure_training_subprocess(preset: str, steps: int, batch: int, phases: bool = False) -> dict:
    """Run `measure_training` in a fresh process, to read that process's peak resident memory."""
    command = [sys.executable, "-m", "gan.cli.bench", "--train-worker", preset, "--steps", str(steps), "--batch", str(batch)]
    if phases:
        command.append("--phases-worker")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"training benchmark of {preset} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb(pid: str | int = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB, on Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# Generation and reload.


def _percentiles(samples: list[float]) -> dict:
    values = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2), "n": len(samples)}


def benchmark_export(preset: str, out_dir: Path) -> Path:
    """Write an export of `preset` with fresh weights, since speed does not depend on the weights' values."""
    from gan.config import CIFAR10_CLASSES, PRESETS
    from gan.exports import write_export
    from gan.models import build_generator

    config = PRESETS[preset]
    return write_export(build_generator(config), config, CIFAR10_CLASSES, out_dir / "exports", step=1, kimg=0.1).path


def measure_generation(export_dir: Path, counts=(1, 16, 64), repeats: int = 30) -> list[dict]:
    from gan.images import render_grid
    from gan.service import GenerationService

    service = GenerationService(export_path=export_dir)
    service.start()
    results = []
    try:
        for count in counts:
            for seed in range(3):  # warm up each batch size
                render_grid(service.generate("random", count, seed).images)
            samples = []
            for seed in range(repeats):
                start = time.perf_counter()
                generation = service.generate("random", count, seed)
                render_grid(generation.images)
                samples.append(time.perf_counter() - start)
            results.append({"count": count, **_percentiles(samples)})
    finally:
        service.close()
    return results


def measure_reload(preset: str, repeats: int = 3, poll_interval: float = 0.5) -> dict:
    """Seconds from a new manifest to the first request served by the new export."""
    from gan.config import CIFAR10_CLASSES, PRESETS
    from gan.exports import write_export
    from gan.models import build_generator
    from gan.service import GenerationService

    config = PRESETS[preset]
    generator = build_generator(config)
    samples = []
    with tempfile.TemporaryDirectory() as run_dir:
        exports = Path(run_dir) / "exports"
        write_export(generator, config, CIFAR10_CLASSES, exports, step=1, kimg=0.1)
        service = GenerationService(run_dir=run_dir, poll_interval=poll_interval)
        service.start()
        try:
            for index in range(repeats):
                step = 100 + index
                manifest = write_export(generator, config, CIFAR10_CLASSES, exports, step=step, kimg=float(step))
                published = time.perf_counter()  # write_export returns right after replacing the manifest
                deadline = published + 60
                while time.perf_counter() < deadline:
                    if service.generate("random", 1, 0).model.step == manifest.step:
                        samples.append(time.perf_counter() - published)
                        break
                    time.sleep(0.01)
        finally:
            service.close()
    return {"poll_interval_s": poll_interval, **_percentiles(samples)}


# Report.


def format_report(report: dict) -> str:
    lines = []
    machine = report["machine"]
    lines.append(f"machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, TensorFlow {machine['tensorflow']}, {machine['device']}")
    lines.append(f"matmul {report['matmul_size']}x{report['matmul_size']} float32: {report['matmul_gflops']:.1f} GFLOP/s")
    lines.append("")
    lines.append(f"{'preset':>8} {'batch':>6} {'img/s':>9} {'GFLOP/step':>11} {'GFLOP/s':>9} {'of matmul':>10} {'peak RSS MiB':>13}")
    for row in report["training"]:
        lines.append(f"{row['preset']:>8} {row['batch']:>6} {row['img_per_sec']:>9.1f} {row['gflop_per_step']:>11.2f} {row['gflops']:>9.1f} {row['utilization']:>9.0%} {row.get('peak_rss_mb') or 0:>13.0f}")
    for row in report["training"]:
        if row.get("phases"):
            lines.append("")
            lines.append(f"where one {row['preset']} train step's time goes (batch {row['batch']}):")
            for phase in row["phases"]:
                indent = "    " if phase["kind"] == "detail" else "  "
                lines.append(f"{indent}{phase['phase']:<{34 - len(indent)}} {phase['ms']:>9.1f} ms {phase['share']:>6.0%}")
    lines.append("")
    lines.append(f"generate + render ({report['generation_preset']}):")
    for row in report["generation"]:
        lines.append(f"  {row['count']:>3} images: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")
    reload = report["reload"]
    lines.append(f"hot reload (poll every {reload['poll_interval_s']} s): p50 {reload['p50_ms']:.0f} ms, p95 {reload['p95_ms']:.0f} ms")
    if report.get("bot"):
        lines.append("bot end to end (interaction -> follow-up with file):")
        for row in report["bot"]["bot_e2e"]:
            lines.append(f"  {row['count']:>3} images, {row['users']} users: p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms (n={row['n']})")
        lines.append(f"  bot peak RSS: {report['bot'].get('bot_peak_rss_mb')} MiB")
    elif report.get("bot_skipped"):
        lines.append(f"bot end to end: skipped ({report['bot_skipped']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gan-bench", description="Measure training, generation, reload and bot speed.")
    parser.add_argument("--json", type=Path, default=Path("bench.json"), help="where to write the results (default: bench.json)")
    parser.add_argument("--quick", action="store_true", help="tiny preset and few repeats: checks that the benchmark runs")
    parser.add_argument("--presets", default="tiny,small,base,dense", help="presets for the training section")
    parser.add_argument("--steps", type=int, default=20, help="timed train steps per preset")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the training section")
    parser.add_argument("--generation-preset", default="small", help="preset of the export used for generation and reload")
    parser.add_argument("--export", type=Path, help="measure generation on this export instead of a fresh one")
    parser.add_argument("--no-bot", action="store_true", help="skip the bot end-to-end section")
    parser.add_argument("--phases-preset", default="small", help="preset whose train step is timed part by part (default: small; '' for none)")
    parser.add_argument("--train-worker", help=argparse.SUPPRESS)
    parser.add_argument("--phases-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    if args.train_worker:
        row = measure_training(args.train_worker, args.steps, args.batch, phases=args.phases_worker)
        row["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(row))
        return 0

    from gan.config import PRESETS

    presets = ["tiny"] if args.quick else [p.strip() for p in args.presets.split(",") if p.strip()]
    phases_preset = "tiny" if args.quick else args.phases_preset.strip()
    unknown = [p for p in presets + [args.generation_preset] + ([phases_preset] if phases_preset else []) if p not in PRESETS]
    if unknown:
        parser.error(f"unknown preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    if phases_preset and phases_preset not in presets:
        parser.error(f"--phases-preset {phases_preset} is not among --presets {','.join(presets)}; add it there or pass --phases-preset ''")
    if args.export is not None and not (args.export / "export.json").is_file():
        parser.error(f"--export {args.export} is not an export directory (export.json not found)")
    if args.json.is_dir():
        parser.error(f"--json {args.json} is a directory; give a file path")
    steps = 3 if args.quick else args.steps
    batch = 8 if args.quick else args.batch
    generation_preset = "tiny" if args.quick else args.generation_preset
    repeats = 3 if args.quick else 30

    report: dict = {"machine": machine_info(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report["matmul_size"] = 512 if args.quick else 2048
    report["matmul_gflops"] = round(matmul_gflops(report["matmul_size"]), 1)

    report["training"] = []
    for preset in presets:
        row = measure_training_subprocess(preset, steps, batch, phases=preset == phases_preset)
        row["utilization"] = round(row["gflops"] / report["matmul_gflops"], 3)
        report["training"].append(row)
        print(f"trained {preset}: {row['img_per_sec']} img/s", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="gan-bench-"))
    try:
        export = args.export or benchmark_export(generation_preset, workdir)
        report["generation_preset"] = "given export" if args.export else generation_preset
        report["generation"] = measure_generation(export, repeats=repeats)
        report["reload"] = measure_reload(generation_preset, repeats=2 if args.quick else 5)
        if args.no_bot:
            report["bot_skipped"] = "--no-bot"
        else:
            try:
                sys.path.insert(0, str(REPO_ROOT))
                from tests.fake_discord.bench import measure_bot_latency
            except ImportError as error:
                report["bot_skipped"] = f"the fake Discord of the test suite is not importable: {error}"
            else:
                if args.quick:
                    report["bot"] = measure_bot_latency(export, counts=(4,), users=(1,), requests_per_user=2)
                else:
                    report["bot"] = measure_bot_latency(export)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(format_report(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    from gan.exports import atomic_write_json

    atomic_write_json(args.json, report)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
