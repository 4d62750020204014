"""Message bodies: Discord's validation rules, attachments, and components.

The limits are Discord's documented API v10 limits for bot messages. The fake
rejects a body that breaks one with the status, code and error layout Discord
uses, so a bot that passes here does not fail on those rules in production.
"""

from __future__ import annotations

import mimetypes
import struct
from typing import Any, Iterator

from .records import UploadedFile

MAX_CONTENT_LENGTH = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL_CHARACTERS = 6000
MAX_EMBED_TITLE_LENGTH = 256
MAX_EMBED_DESCRIPTION_LENGTH = 4096
MAX_EMBED_FIELDS = 25
MAX_FILES = 10
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_CUSTOM_ID_LENGTH = 100
MAX_BUTTON_LABEL_LENGTH = 80
MAX_V2_COMPONENTS = 40

COMPONENTS_V2 = 1 << 15

# Component types.
ACTION_ROW = 1
BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
LABEL = 18
SELECT_TYPES = (STRING_SELECT, 5, 6, 7, 8)  # string, user, role, mentionable and channel selects


class DiscordError(Exception):
    """An error the fake returns as Discord does: an HTTP status and a JSON body."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def unknown(what: str, code: int) -> DiscordError:
    """Return Discord's 404 for a missing resource, such as ("Message", 10008)."""
    return DiscordError(404, code, f"Unknown {what}")


def form_error(field_path: str, error_code: str, message: str) -> DiscordError:
    """Return Discord's 400 Invalid Form Body, naming the field by its dotted path."""
    errors: dict[str, Any] = {"_errors": [{"code": error_code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


# Validation.


def validate_message(
    data: dict[str, Any],
    files: list[UploadedFile],
    *,
    size_limit: int,
    creating: bool,
    field_prefix: str = "",
) -> None:
    """Raise DiscordError if Discord would reject this message body.

    `creating` requires some content, as Discord does for new messages but not
    for edits. `field_prefix` is "data." for interaction callbacks.
    """
    content = data.get("content")
    if content is not None and len(content) > MAX_CONTENT_LENGTH:
        raise form_error(f"{field_prefix}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT_LENGTH} or fewer in length.")

    validate_embeds(data.get("embeds") or [], field_prefix)
    validate_components(data.get("components") or [], int(data.get("flags") or 0), field_prefix)

    if len(files) > MAX_FILES:
        raise form_error(f"{field_prefix}attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    for file in files:
        if len(file.data) > size_limit:
            raise DiscordError(413, 40005, "Request entity too large")

    has_anything = content or data.get("embeds") or data.get("components") or files or data.get("poll") or data.get("sticker_ids")
    if creating and not has_anything:
        raise DiscordError(400, 50006, "Cannot send an empty message")


def validate_embeds(embeds: list[dict[str, Any]], field_prefix: str) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise form_error(f"{field_prefix}embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")

    total = 0
    for index, embed in enumerate(embeds):
        title = embed.get("title") or ""
        description = embed.get("description") or ""
        fields = embed.get("fields") or []
        if len(title) > MAX_EMBED_TITLE_LENGTH:
            raise form_error(f"{field_prefix}embeds.{index}.title", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBED_TITLE_LENGTH} or fewer in length.")
        if len(description) > MAX_EMBED_DESCRIPTION_LENGTH:
            raise form_error(
                f"{field_prefix}embeds.{index}.description",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_EMBED_DESCRIPTION_LENGTH} or fewer in length.",
            )
        if len(fields) > MAX_EMBED_FIELDS:
            raise form_error(f"{field_prefix}embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBED_FIELDS} or fewer in length.")
        total += len(title) + len(description)
        total += sum(len(str(item.get("name", ""))) + len(str(item.get("value", ""))) for item in fields)
        total += len((embed.get("footer") or {}).get("text") or "") + len((embed.get("author") or {}).get("name") or "")

    if total > MAX_EMBED_TOTAL_CHARACTERS:
        raise form_error(f"{field_prefix}embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def validate_components(components: list[dict[str, Any]], flags: int, field_prefix: str) -> None:
    if flags & COMPONENTS_V2:
        count = sum(1 for _ in iter_components(components))
        if count > MAX_V2_COMPONENTS:
            raise form_error(f"{field_prefix}components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
    elif len(components) > MAX_ACTION_ROWS:
        raise form_error(f"{field_prefix}components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")

    for row_index, row in enumerate(components):
        if row.get("type") == ACTION_ROW:
            children = row.get("components") or []
            buttons = [child for child in children if child.get("type") == BUTTON]
            selects = [child for child in children if child.get("type") in SELECT_TYPES]
            if len(buttons) > MAX_ROW_BUTTONS or (selects and len(children) > 1):
                raise form_error(
                    f"{field_prefix}components.{row_index}.components",
                    "BASE_TYPE_MAX_LENGTH",
                    "An action row holds up to 5 buttons or a single select menu.",
                )

    for component in iter_components(components):
        custom_id = component.get("custom_id")
        if custom_id is not None and len(custom_id) > MAX_CUSTOM_ID_LENGTH:
            raise form_error(
                f"{field_prefix}components.custom_id",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_CUSTOM_ID_LENGTH} or fewer in length.",
            )
        label = component.get("label")
        if component.get("type") == BUTTON and label is not None and len(label) > MAX_BUTTON_LABEL_LENGTH:
            raise form_error(
                f"{field_prefix}components.label",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_BUTTON_LABEL_LENGTH} or fewer in length.",
            )


# Components.


def iter_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every component, depth first, through rows, sections, containers and labels."""
    for component in components:
        yield component
        yield from iter_components(component.get("components") or [])
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from iter_components([child])


def find_component(message: dict[str, Any], custom_id: str) -> dict[str, Any] | None:
    return next(
        (component for component in iter_components(message.get("components") or []) if component.get("custom_id") == custom_id),
        None,
    )


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [component["custom_id"] for component in iter_components(message.get("components") or []) if "custom_id" in component]


# Attachments.


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of PNG or GIF bytes, read from the header, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def attachment_payload(
    attachment_id: int,
    file: UploadedFile,
    *,
    url: str,
    description: str | None = None,
    ephemeral: bool = False,
) -> dict[str, Any]:
    """Return the attachment object Discord stores for an uploaded file."""
    payload: dict[str, Any] = {
        "id": str(attachment_id),
        "filename": file.filename,
        "size": len(file.data),
        "url": url,
        "proxy_url": url,
        "content_type": mimetypes.guess_type(file.filename)[0] or "application/octet-stream",
    }
    size = image_size(file.data)
    if size is not None:
        payload["width"], payload["height"] = size
    if description is not None:
        payload["description"] = description
    if ephemeral:
        payload["ephemeral"] = True
    return payload
