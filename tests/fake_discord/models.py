"""Users, roles, channels and guilds of the fake Discord, and their JSON payloads.

Field names and types follow Discord's API v10 objects, so discord.py 2.7 parses
the payloads as it parses Discord's own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

# Permission bits, as Discord numbers them.
PERMISSION_BITS = {
    "create_instant_invite": 1 << 0,
    "kick_members": 1 << 1,
    "ban_members": 1 << 2,
    "administrator": 1 << 3,
    "manage_channels": 1 << 4,
    "manage_guild": 1 << 5,
    "add_reactions": 1 << 6,
    "view_audit_log": 1 << 7,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "manage_messages": 1 << 13,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "mention_everyone": 1 << 17,
    "use_external_emojis": 1 << 18,
    "connect": 1 << 20,
    "speak": 1 << 21,
    "change_nickname": 1 << 26,
    "manage_roles": 1 << 28,
    "use_application_commands": 1 << 31,
    "create_public_threads": 1 << 35,
    "send_messages_in_threads": 1 << 38,
}

# Every permission bit Discord defined when discord.py 2.7 came out; Discord sends
# this value for administrators and guild owners.
ALL_PERMISSIONS = (1 << 51) - 1

EVERYONE_PERMISSIONS = sum(
    PERMISSION_BITS[name]
    for name in (
        "create_instant_invite",
        "add_reactions",
        "view_channel",
        "send_messages",
        "embed_links",
        "attach_files",
        "read_message_history",
        "use_external_emojis",
        "connect",
        "speak",
        "change_nickname",
        "use_application_commands",
        "create_public_threads",
        "send_messages_in_threads",
    )
)

# Channel types.
GUILD_TEXT = 0
DM = 1
GUILD_CATEGORY = 4


def to_permission_bits(value: int | str | Iterable[str] | Any) -> int:
    """Convert permissions to an int bitfield.

    Accepts an int, a decimal string, an object with an int `value` (such as
    `discord.Permissions`) or an iterable of names from `PERMISSION_BITS`.
    """
    if isinstance(value, bool):
        raise TypeError(f"permissions must be bits or names, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value)
    if isinstance(getattr(value, "value", None), int):
        return value.value

    bits = 0
    for name in value:
        try:
            bits |= PERMISSION_BITS[name]
        except KeyError:
            raise ValueError(f"Unknown permission name {name!r}. Known names: {', '.join(PERMISSION_BITS)}.") from None
    return bits


def iso_timestamp(moment: dt.datetime | None = None) -> str:
    """Format `moment` (default: now) the way Discord writes timestamps."""
    moment = moment or dt.datetime.now(dt.timezone.utc)
    return moment.isoformat(timespec="microseconds")


@dataclass
class FakeUser:
    """A Discord user, and the member it is in the fake guild."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    roles: list[int] = field(default_factory=list)  # role ids in the guild, without @everyone
    permissions: int | None = None  # guild permission bits; None computes them from the roles
    nick: str | None = None
    locale: str = "en-US"
    joined_at: str = field(default_factory=iso_timestamp)

    def user_payload(self) -> dict[str, Any]:
        payload = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload

    def member_payload(self, *, permissions: int | None = None, with_user: bool = True) -> dict[str, Any]:
        """Return the guild member object; `permissions` adds the field interactions carry."""
        payload: dict[str, Any] = {
            "roles": [str(role_id) for role_id in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        if with_user:
            payload["user"] = self.user_payload()
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    managed: bool = False
    mentionable: bool = False
    bot_id: int | None = None  # set for the role Discord manages for a bot

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            payload["tags"] = {"bot_id": str(self.bot_id)}
        return payload


@dataclass
class FakeChannel:
    id: int
    name: str | None
    type: int = GUILD_TEXT
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    recipients: list[FakeUser] = field(default_factory=list)  # DM channels only
    last_message_id: int | None = None

    def payload(self, *, permissions: int | None = None) -> dict[str, Any]:
        """Return the channel object; `permissions` adds the field interactions carry."""
        if self.type == DM:
            payload: dict[str, Any] = {
                "id": str(self.id),
                "type": DM,
                "last_message_id": str(self.last_message_id) if self.last_message_id else None,
                "flags": 0,
                "recipients": [user.user_payload() for user in self.recipients],
            }
        else:
            payload = {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id),
                "name": self.name,
                "position": self.position,
                "permission_overwrites": [],
                "parent_id": str(self.parent_id) if self.parent_id else None,
                "flags": 0,
            }
            if self.type == GUILD_TEXT:
                payload.update(
                    topic=self.topic,
                    nsfw=self.nsfw,
                    rate_limit_per_user=0,
                    last_message_id=str(self.last_message_id) if self.last_message_id else None,
                )
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeUser] = field(default_factory=dict)
    preferred_locale: str = "en-US"
    joined_at: str = field(default_factory=iso_timestamp)

    @property
    def everyone_role(self) -> FakeRole:
        # Discord gives @everyone the guild's own id.
        return self.roles[self.id]

    def text_channels(self) -> list[FakeChannel]:
        return [channel for channel in self.channels.values() if channel.type == GUILD_TEXT]

    def member_permissions(self, user: FakeUser) -> int:
        """Return the guild-level permission bits of `user`.

        NOTE: channel permission overwrites are not modelled, so the channel
        permissions in interactions equal the guild permissions.
        """
        if user.permissions is not None:
            return user.permissions
        if user.id == self.owner_id:
            return ALL_PERMISSIONS

        bits = self.everyone_role.permissions
        for role_id in user.roles:
            role = self.roles.get(role_id)
            if role is not None:
                bits |= role.permissions
        if bits & PERMISSION_BITS["administrator"]:
            return ALL_PERMISSIONS
        return bits

    def guild_payload(self) -> dict[str, Any]:
        """Return the guild object without the fields only GUILD_CREATE carries."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(next(iter(self.text_channels())).id) if self.text_channels() else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }

    def guild_create_payload(self, *, bot_user_id: int, include_all_members: bool) -> dict[str, Any]:
        """Return the GUILD_CREATE event data.

        Without the GUILD_MEMBERS intent Discord sends only the bot's own member,
        and `include_all_members` follows that intent.
        """
        members = [
            member.member_payload()
            for member in self.members.values()
            if include_all_members or member.id == bot_user_id
        ]
        payload = self.guild_payload()
        payload.update(
            joined_at=self.joined_at,
            large=False,
            unavailable=False,
            member_count=len(self.members),
            voice_states=[],
            members=members,
            channels=[channel.payload() for channel in self.channels.values()],
            threads=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            lazy=True,
        )
        return payload
