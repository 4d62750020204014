"""Reading a run directory's `status.json` and describing it for /train status.

The trainer rewrites `status.json` atomically at every tick. Its state stays
"running" until the trainer exits cleanly, so a trainer that was killed
leaves "running" behind. The age of `updated` and the process id show
whether it is still alive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

STATUS_FILE = "status.json"

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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
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
    if status.get("host") == hostname and isinstance(pid, int) and pid > 0 and not _process_exists(pid):
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
    except OSError:
        return False
    return True


def format_duration(seconds: float) -> str:
    """Format a duration in its two largest units: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
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
    liveness: Liveness,
    now: dt.datetime,
    served_step: int | None,
) -> str:
    """Format the status as the lines /train status shows."""
    lines = []

    # Headline: state, with the verdict on a silent trainer next to it.
    state = str(status.get("state", "unknown"))
    preset = status.get("preset")
    run_name = Path(str(status.get("run_dir", ""))).name or "?"
    headline = f"**Training run `{run_name}`**" + (f" (preset {preset})" if preset else "") + f": {state}"
    if liveness.dead:
        resume = f"`gan-train --out {status.get('run_dir') or 'RUN_DIR'} --resume`"
        headline += f", but it looks dead. {liveness.reason} Check the training process, and continue the run with {resume}."
    lines.append(headline)

    # Progress and speed.
    kimg, total = _number(status.get("kimg")), _number(status.get("total_kimg"))
    if kimg is not None and total:
        lines.append(f"Progress: {kimg:.1f} of {total:g} kimg ({100 * kimg / total:.1f} %), step {status.get('step', '?')}")
    elif kimg is not None:
        lines.append(f"Progress: {kimg:.1f} kimg, step {status.get('step', '?')}")
    speed = _number(status.get("img_per_sec"))
    eta = _number(status.get("eta_seconds"))
    if speed is not None and state == "running" and not liveness.dead:
        text = f"Speed: {speed:.1f} img/s"
        if eta is not None:
            text += f", about {format_duration(eta)} to go"
        lines.append(text)

    # Losses.
    losses = status.get("losses")
    if isinstance(losses, dict) and losses:
        parts = [f"{name.removeprefix('loss_').upper()} {value:.3f}" for name, value in losses.items() if _number(value) is not None]
        if parts:
            lines.append("Losses: " + ", ".join(parts))

    # Checkpoint, export and the model the bot serves.
    checkpoint = status.get("last_checkpoint")
    if isinstance(checkpoint, dict):
        lines.append(f"Last checkpoint: {_kimg_text(checkpoint)}{_ago(checkpoint.get('time'), now)}")
    else:
        lines.append("Last checkpoint: none yet")
    export = status.get("last_export")
    if isinstance(export, dict):
        lines.append(f"Last export: step {export.get('step', '?')}, {_kimg_text(export)}{_ago(export.get('time'), now)}")
    else:
        lines.append("Last export: none yet")
    lines.append(f"Served by the bot: step {served_step}" if served_step is not None else "Served by the bot: nothing")

    # Freshness and errors.
    if liveness.age_seconds is not None:
        lines.append(f"Trainer last wrote its status {format_duration(liveness.age_seconds)} ago.")
    if status.get("error"):
        lines.append(f"Error: {status['error']}")
    return "\n".join(lines)


def sample_path(status: dict, run_dir: Path) -> Path | None:
    """Return the newest sample grid named by the status, resolved against the run directory."""
    sample = status.get("last_sample")
    if not isinstance(sample, dict) or not isinstance(sample.get("path"), str):
        return None
    path = Path(sample["path"])
    return path if path.is_absolute() else Path(run_dir) / path


def loss_history(status: dict) -> list[dict]:
    """Return the status's loss history; render_loss_curve skips points without finite values."""
    history = status.get("loss_history")
    if not isinstance(history, list):
        return []
    return [point for point in history if isinstance(point, dict)]


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _kimg_text(entry: dict) -> str:
    kimg = _number(entry.get("kimg"))
    return f"{kimg:.1f} kimg" if kimg is not None else "? kimg"


def _ago(value, now: dt.datetime) -> str:
    moment = parse_time(value)
    if moment is None:
        return ""
    return f", {format_duration((now - moment).total_seconds())} ago"
