"""A fake Discord (REST API and gateway) on 127.0.0.1 that a real discord.py client talks to.

See README.md in this folder for how to drive it.
"""

from .models import ALL_PERMISSIONS, EVERYONE_PERMISSIONS, PERMISSION_BITS, FakeChannel, FakeGuild, FakeRole, FakeUser
from .patching import ExternalRequestBlocked, patch_discord_py, running_client
from .records import (
    EPHEMERAL,
    LOADING,
    GatewayConnection,
    Heartbeat,
    InteractionRecord,
    RequestRecord,
    ResponseRecord,
    UploadedFile,
)
from .server import FakeDiscord

__all__ = [
    "ALL_PERMISSIONS",
    "EPHEMERAL",
    "EVERYONE_PERMISSIONS",
    "LOADING",
    "PERMISSION_BITS",
    "ExternalRequestBlocked",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "Heartbeat",
    "InteractionRecord",
    "RequestRecord",
    "ResponseRecord",
    "UploadedFile",
    "patch_discord_py",
    "running_client",
]
