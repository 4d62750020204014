"""Persistent Re-roll and Variations buttons under each generation result.

A button's custom_id carries everything needed to act on it, for example
`gan:variations:3:4:7:123456789` (class index or "random", count, seed,
requester id), so presses keep working after a restart. The client registers
GenerationButton once at start-up, and discord.py rebuilds the button from
any custom_id that matches its template.

Anyone who can see a result may press its buttons unless
BOT_BUTTONS_REQUESTER_ONLY is set. Either way the presser's own limits and
cooldown apply, and the new grid is posted as a new message.
"""

from __future__ import annotations

import logging
import re

import discord

from bot.messages import ButtonSpec

log = logging.getLogger(__name__)

CUSTOM_ID_PATTERN = (
    r"gan:(?P<action>reroll|variations):(?P<class_index>random|\d{1,4}):"
    r"(?P<count>\d{1,4}):(?P<seed>\d{1,20}):(?P<owner>\d{1,20})"
)

BUTTON_STYLES = {"reroll": ("🎲", discord.ButtonStyle.primary), "variations": ("🔀", discord.ButtonStyle.secondary)}


def encode_custom_id(spec: ButtonSpec) -> str:
    """Return the custom_id of a button; at most 70 characters, under Discord's limit of 100."""
    class_index = "random" if spec.class_index is None else str(spec.class_index)
    return f"gan:{spec.action}:{class_index}:{spec.count}:{spec.seed}:{spec.owner_id}"


def decode_custom_id(match: re.Match) -> ButtonSpec:
    """Rebuild the ButtonSpec from a custom_id matched by CUSTOM_ID_PATTERN; values are checked later by the handler."""
    class_index = match["class_index"]
    return ButtonSpec(
        action=match["action"],
        class_index=None if class_index == "random" else int(class_index),
        count=int(match["count"]),
        seed=int(match["seed"]),
        owner_id=int(match["owner"]),
    )


class GenerationButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_PATTERN):
    """A Re-roll or Variations button that survives restarts (no timeout, state in the custom_id)."""

    def __init__(self, spec: ButtonSpec):
        emoji, style = BUTTON_STYLES[spec.action]
        button = discord.ui.Button(label=spec.label, emoji=emoji, style=style, custom_id=encode_custom_id(spec))
        super().__init__(button)
        self.spec = spec

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match, /):
        # discord.py only logs errors raised here and leaves the interaction
        # unanswered, so this does nothing that can fail: the template
        # guarantees the digits, and the handler checks the ranges.
        return cls(decode_custom_id(match))

    async def callback(self, interaction: discord.Interaction) -> None:
        # The client responds to every interaction exactly once, errors included,
        # because discord.py would only log an exception that escaped from here.
        await interaction.client.respond_to_button(interaction, self.spec)


def build_view(buttons: tuple[ButtonSpec, ...]) -> discord.ui.View | None:
    """Return a persistent view with one GenerationButton per spec, or None if there are none."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for spec in buttons:
        view.add_item(GenerationButton(spec))
    return view

