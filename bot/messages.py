"""The request and reply objects that command handlers take and return.

Handlers know nothing of Discord or the terminal: the Discord layer
(`bot.commands`, `bot.views`) and the console (`bot.console`) each build a
Request from what the user did and turn the Reply into a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

# Discord's default attachment limit for servers without boosts (discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES in 2.7).
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024  # bytes

# Called by a handler once the request is valid and admitted, before slow work.
# The argument is True when the reply that follows will be ephemeral.
Defer = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    """One command or button press from one user."""

    command: str  # "generate", "reroll", "variations", "model" or "train status"
    user_id: int
    user_name: str
    options: Mapping[str, Any] = field(default_factory=dict)  # raw values: ints from Discord, strings from the console
    role_ids: frozenset[int] = frozenset()
    manage_guild: bool = False  # the user has Manage Server (or Administrator) where the command ran
    interaction_id: int | None = None  # None outside Discord
    attachment_limit: int = DEFAULT_ATTACHMENT_LIMIT  # largest file, bytes, the reply may carry


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes


@dataclass(frozen=True)
class ButtonSpec:
    """A button under a generation result, with everything needed to act on it later.

    Discord carries these fields in the button's custom_id, so a press still
    works after a restart.
    """

    action: str  # "reroll" (same class and count, new seed) or "variations" (same seed, perturbed latent vectors)
    class_index: int | None  # None for random classes
    count: int
    seed: int  # the result's seed; "reroll" ignores it
    owner_id: int  # user who requested the result

    @property
    def label(self) -> str:
        return "Re-roll" if self.action == "reroll" else "Variations"

    def request_options(self) -> dict[str, Any]:
        """Return the options a press hands to the handlers, shaped like /generate's."""
        return {
            "class": "random" if self.class_index is None else self.class_index,
            "count": self.count,
            "seed": self.seed,
            "owner": self.owner_id,
        }


@dataclass(frozen=True)
class Reply:
    """The message shown to the user: text, optional files and buttons."""

    text: str
    files: tuple[Attachment, ...] = ()
    ephemeral: bool = False  # visible to the requester only on Discord; printed as usual in the console
    buttons: tuple[ButtonSpec, ...] = ()
