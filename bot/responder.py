"""Translation between discord.py interactions and the handlers' Request and Reply.

Every response to an interaction goes through `send_reply`. It uses
`response.send_message` while the interaction has no response and
`followup.send` once it was deferred. It then marks the interaction as
responded to, so the error handler never sends a second response.
"""

from __future__ import annotations

import io
import logging

import discord
from discord import app_commands

from bot.errors import log_unexpected
from bot.messages import Reply, Request
from bot.views import build_view

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000  # characters in one Discord message
RESPONDED = "gan_responded"  # key in Interaction.extras, set once the final reply went out


def request_from_interaction(interaction: discord.Interaction, command: str, options: dict) -> Request:
    """Build the handlers' Request: who asked, with which roles and permissions, and the options."""
    user = interaction.user

    # Member.roles resolves ids through the cached guild, which the guilds intent keeps filled.
    roles = frozenset(role.id for role in getattr(user, "roles", ()))
    permissions = interaction.permissions
    return Request(
        command=command,
        user_id=user.id,
        user_name=user.display_name,
        options=options,
        role_ids=roles,
        manage_guild=permissions.manage_guild or permissions.administrator,
        interaction_id=interaction.id,
        attachment_limit=interaction.filesize_limit,
    )


async def send_reply(interaction: discord.Interaction, reply: Reply) -> None:
    """Send `reply` as the response to `interaction` or, once deferred, as its followup."""
    text = reply.text
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
    arguments = {
        "content": text,
        "ephemeral": reply.ephemeral,
        # Texts may contain user names; none of them may ping anyone.
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    if reply.files:
        arguments["files"] = [discord.File(io.BytesIO(file.data), filename=file.filename) for file in reply.files]
    view = build_view(reply.buttons)
    if view is not None:
        arguments["view"] = view

    if interaction.response.is_done():
        await interaction.followup.send(**arguments)
    else:
        await interaction.response.send_message(**arguments)
    interaction.extras[RESPONDED] = True


async def report_error(interaction: discord.Interaction, error: Exception, command: str) -> None:
    """Log an error that escaped a handler and tell the user, unless the interaction already has its response."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original

    # Errors discord.py raises before the handler runs: a stale command list or an option it could not convert.
    if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
        log.warning("Interaction %s used an outdated command %r: %s", interaction.id, command, error)
        text = "This command changed since Discord loaded the command list. Try again in a minute."
    elif isinstance(error, app_commands.TransformerError):
        log.warning("Interaction %s had an invalid option for %r: %s", interaction.id, command, error)
        text = f"Invalid option: {error}"
    else:
        text = log_unexpected(error, command, interaction.user.id, interaction.id)

    if interaction.extras.get(RESPONDED):
        return
    try:
        await send_reply(interaction, Reply(text, ephemeral=True))
    except discord.HTTPException as send_error:
        # Most likely the interaction expired (15 minutes after a defer, 3 s before).
        log.warning("Could not send the error message for interaction %s: %s", interaction.id, send_error)
