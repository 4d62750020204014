"""Reading a run directory's `status.json` and describing it for /train status.

The trainer rewrites `status.json` atomically at every tick. Its state stays
"running" until the trainer exits cleanly, so a trainer that was killed
leaves "running" behind. The age of `updated` and the process id show
whether it is still alive.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

STATUS_FILE = "status.json"
UNKNOWN = "unknown"  # shown in place of a number that is not finite

# The trainer's loss names and how /train status shows them; other names are shown as written.
LOSS_LABELS = {"loss_d": "D loss", "loss_g": "G loss", "real_score": "D(real)", "fake_score": "D(fake)"}
# Loss history values larger than this in magnitude are left out of the loss curve. They come
# from a diverged or damaged run, and gan.images.render_loss_curve overflows near 1e308.
MAX_CHART_VALUE = 1e9
# Numbers at least this large in magnitude are shown in scientific notation, not as long digit strings.
SCIENTIFIC_FROM = 1e9
MAX_DURATION_DAYS = 99999  # format_duration shows longer durations as "more than 99999 d"

START_TRAINING_HINT = (
    "Start a run with `gan-train --data PATH --preset small --out runs/NAME`, "
    "then set GAN_RUN_DIR=runs/NAME and restart the bot."
)


class StatusUnavailable(Exception):
    """The run directory or its status.json is missing or unreadable. The message explains what to do."""


@dataclass(frozen=True)
class Liveness:
    """Whether the trainer that wrote a status still looks alive."""

    dead: bool
    reason: str  # one sentence for the user; empty when nothing looks wrong
    age_seconds: float | None  # since the trainer last wrote the status; None if `updated` is missing


def read_status(run_dir: Path) -> dict:
    """Return the parsed `status.json` of `run_dir`, or raise StatusUnavailable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StatusUnavailable(f"The run directory {run_dir} does not exist. {START_TRAINING_HINT}")
    path = run_dir / STATUS_FILE
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise StatusUnavailable(
            f"{path} does not exist yet: no trainer has written to this run directory. {START_TRAINING_HINT}"
        ) from None
    # ValueError covers JSONDecodeError and integers of more than 4300 digits;
    # RecursionError comes from deeply nested arrays or objects.
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise StatusUnavailable(f"{path} is unreadable ({error}). Check the trainer's log.") from None
    if not isinstance(status, dict):
        raise StatusUnavailable(f"{path} is not a JSON object. Check the trainer's log.")
    return status


def parse_time(value) -> dt.datetime | None:
    """Parse an ISO 8601 time from the status; a time without a zone is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


def check_liveness(status: dict, now: dt.datetime, stale_seconds: float, hostname: str | None = None) -> Liveness:
    """Decide whether a trainer whose state is "running" has died without saying so."""
    updated = parse_time(status.get("updated"))
    age = (now - updated).total_seconds() if updated is not None else None
    if status.get("state") != "running":
        return Liveness(False, "", age)

    hostname = hostname or socket.gethostname()
    pid = status.get("pid")
    if status.get("host") == hostname and isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and not _process_exists(pid):
        return Liveness(True, f"The trainer process {pid} is no longer running on {hostname}.", age)

    if age is None:
        return Liveness(True, "The status has no valid `updated` time.", None)
    if age > stale_seconds:
        return Liveness(
            True,
            f"The trainer has not written its status for {format_duration(age)} "
            f"(more than BOT_STALE_SECONDS={stale_seconds:g}).",
            age,
        )
    return Liveness(False, "", age)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    except (OSError, OverflowError):
        return False  # OverflowError: larger than any process id (pid_t) can be
    return True


def format_duration(seconds: float) -> str:
    """Format a duration in its two largest units: "45 s", "12 min", "3 h 5 min", "2 d 4 h".

    A value that is not a finite number gives "unknown", and one over
    MAX_DURATION_DAYS days gives "more than 99999 d".
    """
    if not _is_finite(seconds):
        return UNKNOWN
    if seconds > MAX_DURATION_DAYS * 86400:
        return f"more than {MAX_DURATION_DAYS} d"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def describe_status(
    status: dict,
    run_dir: Path,
    liveness: Liveness,
    now: dt.datetime,
    served_step: int | None,
) -> str:
    """Format the status of the run in `run_dir` as the lines /train status shows."""
    lines = []

    # Headline: state, with the verdict on a silent trainer next to it. The run is
    # named after `run_dir`, not the status's run_dir, which is stale after a move.
    state = str(status.get("state", "unknown"))
    preset = status.get("preset")
    run_name = Path(os.path.abspath(run_dir)).name or "?"
    headline = f"**Training run `{run_name}`**" + (f" (preset {preset})" if preset else "") + f": {state}"
    if liveness.dead:
        resume = f"`gan-train --out {run_dir} --resume`"
        headline += f", but it looks dead. {liveness.reason} Check the training process, and continue the run with {resume}."
    lines.append(headline)

    # Progress and speed.
    progress = _progress_text(status)
    if progress:
        lines.append(progress)
    speed = _number(status.get("img_per_sec"))
    eta = _number(status.get("eta_seconds"))
    if speed is not None and state == "running" and not liveness.dead:
        text = f"Speed: {_format_number(speed)} img/s"
        if eta is not None:
            text += f", about {format_duration(eta)} to go" if _is_finite(eta) else ", time to go unknown"
        lines.append(text)

    # Losses.
    losses = status.get("losses")
    if isinstance(losses, dict) and losses:
        # Known losses in a fixed order (status.json stores its keys sorted), then any others.
        names = [name for name in LOSS_LABELS if name in losses] + [name for name in losses if name not in LOSS_LABELS]
        parts = [
            f"{loss_label(name)} {_format_number(losses[name], decimals=3)}"
            for name in names
            if _number(losses[name]) is not None
        ]
        if parts:
            lines.append("Losses: " + ", ".join(parts))

    # Checkpoint, export and the model the bot serves.
    checkpoint = status.get("last_checkpoint")
    if isinstance(checkpoint, dict):
        lines.append(f"Last checkpoint: {_kimg_text(checkpoint)}{_ago(checkpoint.get('time'), now)}{_path_text(checkpoint, run_dir)}")
    else:
        lines.append("Last checkpoint: none yet")
    export = status.get("last_export")
    if isinstance(export, dict):
        lines.append(
            f"Last export: step {_step_text(export.get('step'))}, {_kimg_text(export)}{_ago(export.get('time'), now)}"
            f"{_path_text(export, run_dir)}"
        )
    else:
        lines.append("Last export: none yet")
    lines.append(f"Served by the bot: step {served_step}" if served_step is not None else "Served by the bot: nothing")

    # Freshness and errors.
    if liveness.age_seconds is not None:
        lines.append(f"Trainer last wrote its status {format_duration(liveness.age_seconds)} ago.")
    if status.get("error"):
        lines.append(f"Error: {status['error']}")
    return "\n".join(lines)


def run_path(value, run_dir: Path) -> Path | None:
    """Resolve a path from status.json to a path on this machine; None if `value` is not a non-empty string.

    Trainers write paths relative to the run directory, so a relative path is
    resolved against `run_dir`. Older trainers wrote absolute paths, which
    are kept as they are.
    """
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(run_dir) / path


def display_path(path: Path, run_dir: Path) -> str:
    """Name `path` relative to `run_dir` ("samples/fakes000070.png"), or by its file name if it lies outside."""
    # Compare without following symlinks first, then with them, because older trainers
    # wrote some paths with symlinks resolved.
    for base, target in (
        (Path(os.path.abspath(run_dir)), Path(os.path.abspath(path))),
        (Path(run_dir).resolve(), Path(path).resolve()),
    ):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    return Path(path).name


def sample_path(status: dict, run_dir: Path) -> Path | None:
    """Return the newest sample grid named by the status (see `run_path`), or None."""
    sample = status.get("last_sample")
    if not isinstance(sample, dict):
        return None
    return run_path(sample.get("path"), run_dir)


def loss_history(status: dict) -> list[dict]:
    """Return the points of the status's loss history that render_loss_curve can plot.

    A point keeps its kimg and the values that are finite and at most
    MAX_CHART_VALUE in magnitude. Points left without kimg or without any
    value are dropped.
    """
    history = status.get("loss_history")
    if not isinstance(history, list):
        return []
    points = []
    for point in history:
        if not isinstance(point, dict) or _plottable(point.get("kimg")) is None:
            continue
        kept = {key: _plottable(value) for key, value in point.items()}
        kept = {key: value for key, value in kept.items() if value is not None}
        if len(kept) > 1:
            points.append(kept)
    return points


def loss_label(name: str) -> str:
    """Return how /train status names a loss of status.json, e.g. "D loss" for "loss_d"."""
    return LOSS_LABELS.get(name, name.replace("_", " "))


def _number(value) -> float | None:
    """Return `value` as a float if it is a JSON number (inf and NaN included), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        return math.inf if value > 0 else -math.inf


def _is_finite(value) -> bool:
    number = _number(value)
    return number is not None and math.isfinite(number)


def _plottable(value) -> float | None:
    number = _number(value)
    if number is None or not math.isfinite(number) or abs(number) > MAX_CHART_VALUE:
        return None
    return number


def _format_number(value: float, decimals: int = 1) -> str:
    """Format a number with `decimals` decimals, "unknown" if it is not finite, and huge ones as 1.23e+15."""
    if not math.isfinite(value):
        return UNKNOWN
    if abs(value) >= SCIENTIFIC_FROM:
        return f"{value:.3g}"
    return f"{value:.{decimals}f}"


def _progress_text(status: dict) -> str:
    """Format the progress line, e.g. "Progress: 76.8 of 2000 kimg (3.8 %), step 1200"; empty without kimg."""
    kimg, total = _number(status.get("kimg")), _number(status.get("total_kimg"))
    if kimg is None:
        return ""
    if total is None or total == 0:
        amount = f"{_format_number(kimg)} kimg"
    elif not math.isfinite(total):
        amount = f"{_format_number(kimg)} of {UNKNOWN} kimg"
    elif not math.isfinite(kimg):
        amount = f"{UNKNOWN} of {total:g} kimg"
    else:
        # The last step may pass the total by part of a batch; the run is then complete, not past 100 %.
        percent = 100.0 if kimg >= total else 100 * kimg / total
        amount = f"{_format_number(kimg)} of {total:g} kimg ({_format_number(percent)} %)"
    return f"Progress: {amount}, step {_step_text(status.get('step'))}"


def _step_text(value) -> str:
    step = _number(value)
    if step is None:
        return "?"
    if isinstance(value, int) and abs(step) < SCIENTIFIC_FROM:
        return str(value)
    return _format_number(step, decimals=0)


def _kimg_text(entry: dict) -> str:
    kimg = _number(entry.get("kimg"))
    return f"{_format_number(kimg)} kimg" if kimg is not None else "? kimg"


def _path_text(entry: dict, run_dir: Path) -> str:
    path = run_path(entry.get("path"), run_dir)
    return f" (`{display_path(path, run_dir)}`)" if path is not None else ""


def _ago(value, now: dt.datetime) -> str:
    moment = parse_time(value)
    if moment is None:
        return ""
    return f", {format_duration((now - moment).total_seconds())} ago"
