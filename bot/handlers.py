"""Command handlers shared by the Discord bot and the offline console.

Each handler takes a Request and returns a Reply. Everything cheap (option
validation, permission checks, admission to the generation queue) happens
before the handler calls `defer`, so every rejection can still be ephemeral.
Slow work (generation, rendering, reading files) runs off the event loop
after the defer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.limits import SHUTDOWN_MESSAGE, GenerationQueue, LimitExceeded
from bot.messages import Attachment, ButtonSpec, Defer, Reply, Request
from bot.settings import Settings
from bot.status import (
    START_TRAINING_HINT,
    StatusUnavailable,
    check_liveness,
    describe_status,
    display_path,
    format_duration,
    loss_history,
    read_status,
    sample_path,
)
from gan.images import render_grid, render_loss_curve
from gan.service import GenerationError, ModelUnavailable, generation_metadata

log = logging.getLogger(__name__)

MAX_COUNT = 16  # images per request; a 4 x 4 grid
DEFAULT_COUNT = 4
# Discord carries integer options as JSON numbers and limits them to +-2**53, so
# seeds stop there (the generation service itself takes up to 2**63 - 1). Seeds
# the bot draws come from the same range, so every seed it shows can be typed back.
MAX_SEED = 2**53 - 1
VARIATION_STRENGTH = 0.3  # scale of the noise added to the latent vectors by "Variations"
GRID_SIZES = (128, 96, 64, 32)  # pixels per image, tried in order until the PNG fits the upload limit
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UNCAPPED = 2**62  # bytes; turns off render_grid's own size limit
_INTEGER = re.compile(r"\+?\d+")
# Maximum length of a whole-number option's text, checked before int(), which
# raises ValueError for more than 4300 digits. Every valid count and seed is
# shorter, because MAX_SEED has 16 digits.
MAX_NUMBER_TEXT = 32
# Maximum length of the class option. Image-folder class names are folder names,
# at most 255 bytes on common file systems.
MAX_CLASS_TEXT = 256
SHOWN_TEXT = 40  # characters of an invalid option value quoted back in the error message
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_]+")

NO_MODEL_MESSAGE = "No model is loaded, so nothing can be generated. Ask the bot's operator to check its log."

# Option descriptions, shown by Discord and by the console's /help.
GENERATE_OPTIONS = {
    "class": "Class of every image, or random for a random class per image (default random)",
    "count": f"Number of images, 1 to {MAX_COUNT} (default {DEFAULT_COUNT})",
    "seed": f"Seed, 0 to {MAX_SEED}. The same seed and model give the same images (default: a new one)",
}


@dataclass(frozen=True)
class GenerationOptions:
    """Validated arguments of one generation."""

    class_index: int | None  # None for a random class per image
    count: int
    seed: int
    variation_seed: int | None = None  # set for "Variations": perturb the latent vectors of `seed`


def draw_seed() -> int:
    """Draw a seed from the range users can type back, 0 to MAX_SEED."""
    return secrets.randbelow(MAX_SEED + 1)


def parse_whole_number(value, name: str, low: int, high: int) -> int:
    """Return `value` (an int, or a string of digits from the console) if it lies in [low, high].

    Raises GenerationError naming the option, the value and the range.
    """
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value.strip()) <= MAX_NUMBER_TEXT and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise GenerationError(f"{name} must be a whole number from {low} to {high}, got {quote_value(value)}.")
    return number


def quote_value(value) -> str:
    """Quote an option value for an error message, shortening text longer than SHOWN_TEXT characters."""
    text = str(value)
    if len(text) <= SHOWN_TEXT:
        return repr(text)
    return f"{text[:SHOWN_TEXT] + '…'!r} ({len(text)} characters)"


class CommandHandlers:
    """The commands /generate, /model and /train status, and the Re-roll and Variations buttons."""

    def __init__(self, service, queue: GenerationQueue, settings: Settings):
        self.service = service
        self.queue = queue
        self.settings = settings
        self.closing = False  # set at shutdown: new requests get SHUTDOWN_MESSAGE

    async def handle(self, request: Request, defer: Defer) -> Reply:
        """Run the handler for `request.command`; unexpected errors propagate to the caller."""
        if self.closing:
            return Reply(SHUTDOWN_MESSAGE, ephemeral=True)
        handler = {
            "generate": self.generate,
            "reroll": self.press_button,
            "variations": self.press_button,
            "model": self.model,
            "train status": self.train_status,
        }[request.command]
        return await handler(request, defer)

    # /generate and the buttons.

    async def generate(self, request: Request, defer: Defer) -> Reply:
        if self.service.served is None:
            return Reply(NO_MODEL_MESSAGE, ephemeral=True)
        try:
            class_index = self._resolve_class(request.options.get("class", "random"))
            count = parse_whole_number(request.options.get("count", DEFAULT_COUNT), "count", 1, MAX_COUNT)
            seed = request.options.get("seed")
            seed = draw_seed() if seed is None else parse_whole_number(seed, "seed", 0, MAX_SEED)
        except GenerationError as error:
            return Reply(str(error), ephemeral=True)
        return await self._generate(request, GenerationOptions(class_index, count, seed), defer, heading="")

    async def press_button(self, request: Request, defer: Defer) -> Reply:
        """Re-roll (same class and count, new seed) or Variations (same seed, perturbed latent vectors)."""
        if self.service.served is None:
            return Reply(NO_MODEL_MESSAGE, ephemeral=True)
        options = request.options
        owner_id = options.get("owner")
        if self.settings.buttons_requester_only and owner_id is not None and owner_id != request.user_id:
            return Reply(
                "Only the person who asked for these images can use their buttons. Use /generate to make your own.",
                ephemeral=True,
            )
        try:
            class_index = self._resolve_class(options.get("class", "random"))
            count = parse_whole_number(options.get("count", DEFAULT_COUNT), "count", 1, MAX_COUNT)
            if request.command == "reroll":
                generation = GenerationOptions(class_index, count, draw_seed())
                heading = f"Re-roll for {request.user_name}: "
            else:
                seed = parse_whole_number(options.get("seed"), "seed", 0, MAX_SEED)
                generation = GenerationOptions(class_index, count, seed, variation_seed=draw_seed())
                heading = f"Variations for {request.user_name}: "
        except GenerationError as error:
            return Reply(f"This button no longer works: {error} Use /generate instead.", ephemeral=True)
        return await self._generate(request, generation, defer, heading)

    def _resolve_class(self, value) -> int | None:
        """Return the class index the service resolves `value` to, after rejecting overlong text."""
        if isinstance(value, str) and len(value.strip()) > MAX_CLASS_TEXT:
            raise GenerationError(
                f"class must be a class name or index of at most {MAX_CLASS_TEXT} characters, got {quote_value(value)}."
            )
        return self.service.resolve_class(value)

    async def _generate(self, request: Request, options: GenerationOptions, defer: Defer, heading: str) -> Reply:
        try:
            admission = self.queue.admit(request.user_id)
        except LimitExceeded as error:
            return Reply(str(error), ephemeral=True)

        # From here on the reply is public: the interaction is deferred with thinking=True.
        with admission:
            await defer(False)
            job = functools.partial(self._render_generation, options, heading, request.user_id, request.attachment_limit)
            future = admission.submit(job)
        log.debug(
            "Queued %s for user %s (interaction %s): %s", request.command, request.user_id, request.interaction_id, options
        )
        try:
            return await asyncio.wrap_future(future)
        except (GenerationError, ModelUnavailable) as error:
            log.warning(
                "Generation failed for user %s (interaction %s): %s", request.user_id, request.interaction_id, error
            )
            return Reply(str(error))

    def _render_generation(self, options: GenerationOptions, heading: str, owner_id: int, attachment_limit: int) -> Reply:
        """Generate and render one grid; runs on a generation worker thread."""
        generation = self.service.generate(
            class_name="random" if options.class_index is None else options.class_index,
            count=options.count,
            seed=options.seed,
            variation=VARIATION_STRENGTH if options.variation_seed is not None else 0.0,
            variation_seed=options.variation_seed,
        )
        text = heading + describe_generation(generation, options)
        buttons = (
            ButtonSpec("reroll", options.class_index, options.count, options.seed, owner_id),
            ButtonSpec("variations", options.class_index, options.count, options.seed, owner_id),
        )

        png = fit_grid(generation.images, generation_metadata(generation), attachment_limit)
        if png is None:
            text += (
                f"\nThe image grid is larger than this channel's upload limit ({attachment_limit // 1024} KiB)"
                " even at 32 px per image. Ask for fewer images."
            )
            return Reply(text, buttons=buttons)
        filename = grid_filename(options, generation.class_names)
        return Reply(text, files=(Attachment(filename, png),), buttons=buttons)

    # /model.

    async def model(self, request: Request, defer: Defer) -> Reply:
        served = self.service.served
        if served is None:
            return Reply("No model is being served. " + START_TRAINING_HINT, ephemeral=True)
        return Reply(describe_model(served, self.service, self.settings), ephemeral=True)

    # /train status.

    def is_admin(self, request: Request) -> bool:
        """Return whether the user has Manage Server, or a role or user id listed in BOT_ADMIN_ROLE_IDS / BOT_ADMIN_USER_IDS."""
        return (
            request.manage_guild
            or request.user_id in self.settings.admin_user_ids
            or bool(request.role_ids & self.settings.admin_role_ids)
        )

    async def train_status(self, request: Request, defer: Defer) -> Reply:
        if not self.is_admin(request):
            log.info("Refused /train status to user %s (interaction %s)", request.user_id, request.interaction_id)
            return Reply(
                "/train status is for server managers: it needs the Manage Server permission "
                "or an admin role or user id configured by the bot's operator.",
                ephemeral=True,
            )
        run_dir = self.settings.run_dir
        if run_dir is None:
            return Reply("The bot is not watching a training run (GAN_RUN_DIR is not set). " + START_TRAINING_HINT, ephemeral=True)

        await defer(True)
        return await asyncio.to_thread(self._render_status, run_dir, request.attachment_limit)

    def _render_status(self, run_dir: Path, attachment_limit: int) -> Reply:
        """Read status.json and its images and render the loss curve; runs on a worker thread."""
        try:
            status = read_status(run_dir)
        except StatusUnavailable as error:
            log.info("No training status to show: %s", error)
            return Reply(str(error), ephemeral=True)
        now = dt.datetime.now(dt.timezone.utc)
        liveness = check_liveness(status, now, self.settings.stale_seconds)
        served = self.service.served
        text = describe_status(status, run_dir, liveness, now, served.step if served is not None else None)
        files = []

        # The newest fixed-seed sample grid.
        sample = sample_path(status, run_dir)
        if sample is not None:
            shown = display_path(sample, run_dir)
            try:
                data = sample.read_bytes()
            except OSError:
                text += f"\nThe newest sample grid {shown} is missing."
            else:
                # Only PNGs go out, so a damaged status file cannot send some other file to Discord.
                if not data.startswith(PNG_SIGNATURE):
                    text += f"\nThe newest sample grid {shown} is not a PNG file."
                elif len(data) > attachment_limit:
                    text += f"\nThe newest sample grid {shown} is larger than this channel's upload limit."
                else:
                    files.append(Attachment(sample.name, data))

        # The loss curve, from the history the trainer keeps in the status.
        history = loss_history(status)
        if len(history) >= 2:
            curve = render_loss_curve(history)
            if len(curve) <= attachment_limit:
                files.append(Attachment("loss-curve.png", curve))
        return Reply(text, files=tuple(files), ephemeral=True)


# Formatting.


def fit_grid(images, metadata: dict[str, str], limit: int) -> bytes | None:
    """Render `images` at the largest of GRID_SIZES whose PNG is at most `limit` bytes; None if none fits."""
    for size in GRID_SIZES:
        # render_grid's own cap is for files in general; this checks the interaction's limit.
        png = render_grid(images, size=size, metadata=metadata, max_bytes=UNCAPPED)
        if len(png) <= limit:
            return png
    return None


def grid_filename(options: GenerationOptions, class_names: tuple[str, ...]) -> str:
    """Name the grid after its options, e.g. "cat-4x-seed7.png"; class names are reduced to safe characters."""
    name = "random" if options.class_index is None else _UNSAFE_FILENAME.sub("-", class_names[0]).strip("-")
    name = f"{name or 'class'}-{options.count}x-seed{options.seed}"
    if options.variation_seed is not None:
        name += f"-variation{options.variation_seed}"
    return name + ".png"


def describe_generation(generation, options: GenerationOptions) -> str:
    """Format one line naming the classes, the seed and the model step, e.g. "4 × **cat**, seed 7, model step 1200."."""
    names = generation.class_names
    if options.class_index is not None:
        classes = f"{len(names)} × **{names[0]}**"
    else:
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        listed = ", ".join(f"{n} × {name}" if n > 1 else name for name, n in counts.items())
        classes = f"{len(names)} random: {listed}"
    text = f"{classes}, seed {generation.seed}"
    if options.variation_seed is not None:
        text += f", variation seed {options.variation_seed} (strength {VARIATION_STRENGTH})"
    return text + f", model step {generation.model.step}."


def describe_model(served, service, settings: Settings) -> str:
    """Format the lines /model shows about the served export."""
    now = dt.datetime.now(dt.timezone.utc)
    if served.source == "run":
        # Exports live in RUN_DIR/exports/generator-KIMG.
        source = f"the {settings.manifest} export of training run `{Path(served.path).parent.parent.name}`"
    elif served.source == "export":
        source = f"the export `{Path(served.path).name}`"
    else:
        source = "the pretrained model shipped with the bot"

    # File and directory names only, not full paths, because /model is open to everyone.
    # NOTE: the service's reload error text may still name full paths.
    dataset = Path(served.dataset).name if served.dataset else ""
    lines = [
        f"**Serving** {source}: step {served.step} ({served.kimg:.1f} kimg), preset {served.preset}.",
        f"Exported: {served.created}",
        f"Trained on: {dataset or 'unknown'} ({len(served.class_names)} classes: {', '.join(served.class_names)})",
        describe_metrics(served.metrics),
    ]
    loaded = served.loaded_at
    lines.append(f"Loaded: {loaded.strftime('%Y-%m-%d %H:%M:%S')} UTC ({format_duration((now - loaded).total_seconds())} ago)")

    error = service.last_reload_error
    if error:
        at = service.last_reload_error_at
        when = f" ({format_duration((now - at).total_seconds())} ago)" if at is not None else ""
        lines.append(f"Last reload error{when}: {error}")
    else:
        lines.append("Last reload error: none")
    return "\n".join(lines)


def describe_metrics(metrics) -> str:
    """Format the manifest's metrics as one line, e.g. "Metrics (10000 images): fd_cifar 41.2 (real-data floor 3.1), …".

    Shows the metrics gan-evaluate writes and leaves out bookkeeping keys
    (seconds, step, kimg, feature_network) and values that are missing or
    not finite numbers. `floor` contains the same metrics for real test images.
    """
    metrics = metrics if isinstance(metrics, dict) else {}
    floor = metrics.get("floor") if isinstance(metrics.get("floor"), dict) else {}
    parts = []

    # From gan-evaluate's own classifier.
    distance, floor_distance = _metric(metrics, "fd_cifar"), _metric(floor, "fd_cifar")
    if distance is not None:
        text = f"fd_cifar {_format_metric(distance)}"
        if floor_distance is not None:
            text += f" (real-data floor {_format_metric(floor_distance)})"
        parts.append(text)
    parts += _with_std(metrics, "kid_cifar", "kid_cifar")
    class_match = _metric(metrics, "class_match")  # a fraction of the images
    if class_match is not None:
        parts.append(f"class match {100 * class_match:.1f}%")
    parts += _with_std(metrics, "classifier_score", "classifier score")

    # From Inception-v3, with gan-evaluate --inception.
    parts += _with_std(metrics, "fid", "fid")
    parts += _with_std(metrics, "kid", "kid")
    parts += _with_std(metrics, "inception_score", "inception score")

    if not parts:
        return "Metrics: not evaluated"
    count = _metric(metrics, "num_images")
    label = f"Metrics ({_format_metric(count)} images)" if count is not None else "Metrics"
    return f"{label}: {', '.join(parts)}"


def _metric(metrics: dict, key: str) -> float | None:
    """Return metrics[key] if it is a finite number, else None."""
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _with_std(metrics: dict, key: str, label: str) -> list[str]:
    """Format metrics[key] as ["label value ± std"] (the ± part when `key`_std is present), or [] if it is missing."""
    value = _metric(metrics, key)
    if value is None:
        return []
    text = f"{label} {_format_metric(value)}"
    std = _metric(metrics, f"{key}_std")
    if std is not None:
        text += f" ± {_format_metric(std)}"
    return [text]


def _format_metric(value: float) -> str:
    """Format a metric with three significant digits, or as a whole number from 100 to 1e9, which needs no exponent."""
    if 100 <= abs(value) < 1e9:
        return f"{value:.0f}"
    return f"{value:.3g}"
