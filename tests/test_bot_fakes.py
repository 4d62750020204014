"""Stand-ins shared by the bot's unit tests: a generation service and a discord.py interaction.

The service follows the contract of gan.service.GenerationService without
TensorFlow. The interaction records what the bot sends, so tests can check
that each interaction gets exactly one response. This module contains no tests.
"""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace

import numpy as np

from bot.settings import Settings
from gan.config import CIFAR10_CLASSES
from gan.service import Generation, ModelUnavailable, ServedModel, _resolve_class


def served_model(step: int = 1200, dataset: str = "cifar10", metrics: dict | None = None) -> ServedModel:
    return ServedModel(
        path="/srv/runs/demo/exports/generator-000076",
        source="run",
        step=step,
        kimg=76.8,
        created="2025-01-02T03:04:05+00:00",
        class_names=CIFAR10_CLASSES,
        dataset=dataset,
        metrics={"fid": 31.25} if metrics is None else metrics,
        sha256="ab" * 32,
        preset="small",
        loaded_at=dt.datetime.now(dt.timezone.utc),
    )


class StandInService:
    """Generates seeded noise images; `gate` makes generate() wait until the test sets it."""

    def __init__(self, served: ServedModel | None = None, fail_with: BaseException | None = None):
        self.served = served if served is not None else served_model()
        self.fail_with = fail_with
        self.last_reload_error = None
        self.last_reload_error_at = None
        self.calls: list[dict] = []
        self.gate: threading.Event | None = None
        self.started = threading.Event()  # set when a generate() call begins

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.served.class_names if self.served is not None else ()

    def resolve_class(self, value):
        if self.served is None:
            raise ModelUnavailable("No model loaded.")
        return _resolve_class(self.served.class_names, value)

    def generate(self, class_name="random", count=4, seed=None, variation=0.0, variation_seed=None) -> Generation:
        self.started.set()
        self.calls.append(
            {"class_name": class_name, "count": count, "seed": seed, "variation": variation, "variation_seed": variation_seed}
        )
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        if self.served is None:
            raise ModelUnavailable("No model loaded.")
        rng = np.random.default_rng(seed)
        label = _resolve_class(self.served.class_names, class_name)
        labels = rng.integers(0, 10, size=count) if label is None else np.full(count, label)
        images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        return Generation(
            images=images,
            labels=tuple(int(x) for x in labels),
            class_names=tuple(self.served.class_names[int(x)] for x in labels),
            seed=seed,
            model=self.served,
            variation=variation,
            variation_seed=variation_seed,
        )


def settings(**changes) -> Settings:
    values = {"cooldown_seconds": 0.0, "queue_size": 4, "max_per_user": 1}
    values.update(changes)
    return Settings(**values)


# A discord.py interaction, reduced to what the bot touches.


class FakeResponse:
    def __init__(self, interaction: "FakeInteraction"):
        self.interaction = interaction
        self.done = False

    def is_done(self) -> bool:
        return self.done

    async def defer(self, *, thinking: bool = False, ephemeral: bool = False) -> None:
        assert not self.done, "deferred an interaction that was already answered"
        self.done = True
        self.interaction.sent.append(("defer", {"thinking": thinking, "ephemeral": ephemeral}))

    async def send_message(self, **arguments) -> None:
        assert not self.done, "sent a response to an interaction that was already answered"
        self.done = True
        self.interaction.sent.append(("send_message", arguments))


class FakeFollowup:
    def __init__(self, interaction: "FakeInteraction"):
        self.interaction = interaction

    async def send(self, **arguments) -> None:
        assert self.interaction.response.done, "followup before the interaction was deferred"
        self.interaction.sent.append(("followup", arguments))


class FakeInteraction:
    def __init__(self, user_id: int = 42, roles: tuple[int, ...] = (), manage_guild: bool = False, limit: int = 10 * 2**20):
        self.id = 9001
        self.user = SimpleNamespace(id=user_id, display_name=f"user{user_id}", roles=[SimpleNamespace(id=r) for r in roles])
        self.permissions = SimpleNamespace(manage_guild=manage_guild, administrator=False)
        self.filesize_limit = limit
        self.extras: dict = {}
        self.command = SimpleNamespace(qualified_name="generate")
        self.sent: list[tuple[str, dict]] = []
        self.response = FakeResponse(self)
        self.followup = FakeFollowup(self)

    def messages(self) -> list[tuple[str, dict]]:
        """What the user saw: responses and followups, without defers."""
        return [entry for entry in self.sent if entry[0] != "defer"]


__all__ = ["FakeInteraction", "StandInService", "served_model", "settings"]
