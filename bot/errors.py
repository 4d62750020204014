"""The reply and log record for unexpected errors.

The user gets a short apology with an error id. The log gets the same id with
the interaction id, user id, command and traceback, so the operator can find
the one from the other.
"""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger(__name__)


def log_unexpected(error: BaseException, command: str, user_id: int | None, interaction_id: int | None) -> str:
    """Log `error` with a new error id and return the apology to show the user."""
    error_id = secrets.token_hex(4)
    log.error(
        "Unexpected error %s in command %r (interaction %s, user %s)",
        error_id,
        command,
        interaction_id,
        user_id,
        exc_info=(type(error), error, error.__traceback__),
    )
    return f"Sorry, something went wrong on the bot's side (error id {error_id}). The bot's operator can find it in the log."
