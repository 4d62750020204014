"""Application commands: validating a sync payload, and the options of an invocation.

A Discord user can only invoke a registered command and the client UI enforces
its schema (required options, choices, ranges, lengths). The fake does the same
by default: `build_command_data` builds the interaction's `data` from the
synced schema and raises ValueError for input a real user could not send.
"""

from __future__ import annotations

from typing import Any, Callable

from .messages import DiscordError, form_error

# Application command types.
CHAT_INPUT = 1
USER = 2
MESSAGE = 3

# Option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER_OPTION = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11
SNOWFLAKE_TYPES = (USER_OPTION, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT)

MAX_CHAT_INPUT_COMMANDS = 100
MAX_CONTEXT_MENU_COMMANDS = 5
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_NAME_LENGTH = 32
MAX_DESCRIPTION_LENGTH = 100
# Integers beyond +-2**53 lose precision in JavaScript, so Discord rejects them.
MAX_SAFE_INTEGER = 2**53

# Returns the snowflake to put in the option's value and the entries to merge into `resolved`.
Resolver = Callable[[int, Any], "tuple[str, dict[str, dict[str, Any]]]"]


# Sync payload validation.


def validate_command_list(commands: list[dict[str, Any]]) -> None:
    """Raise DiscordError(400) where Discord would reject a bulk overwrite."""
    if not isinstance(commands, list):
        raise DiscordError(400, 50035, "Invalid Form Body", {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be an array."}]})

    limits = {CHAT_INPUT: MAX_CHAT_INPUT_COMMANDS, USER: MAX_CONTEXT_MENU_COMMANDS, MESSAGE: MAX_CONTEXT_MENU_COMMANDS}
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        command_type = int(command.get("type", CHAT_INPUT))
        key = (command_type, command.get("name", ""))
        if key in seen:
            raise form_error(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Application command names must be unique: {key[1]!r}")
        seen.add(key)
        validate_command(command, command_type, f"{index}")

    for command_type, limit in limits.items():
        count = sum(1 for command_type_seen, _ in seen if command_type_seen == command_type)
        if count > limit:
            raise DiscordError(400, 30032, f"Maximum number of application commands reached ({limit})")


def validate_command(command: dict[str, Any], command_type: int, path: str) -> None:
    name = command.get("name") or ""
    validate_name(name, f"{path}.name", lowercase=command_type == CHAT_INPUT)

    description = command.get("description") or ""
    if command_type == CHAT_INPUT and not 1 <= len(description) <= MAX_DESCRIPTION_LENGTH:
        raise form_error(f"{path}.description", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_DESCRIPTION_LENGTH} in length.")
    if command_type != CHAT_INPUT and description:
        raise form_error(f"{path}.description", "APPLICATION_COMMAND_INVALID_DESCRIPTION", "Context menu commands cannot have a description.")

    validate_options(command.get("options") or [], f"{path}.options", level="command")


def validate_name(name: str, path: str, *, lowercase: bool) -> None:
    allowed = all(character.isalnum() or character in "-_'" for character in name)
    if not 1 <= len(name) <= MAX_NAME_LENGTH or (lowercase and not allowed):
        raise form_error(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    if lowercase and name != name.lower():
        raise form_error(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name must be lowercase: {name!r}")


def validate_options(options: list[dict[str, Any]], path: str, *, level: str) -> None:
    """Validate the options of a command, a subcommand group or a subcommand.

    `level` is "command", "group" or "subcommand": groups only sit in commands,
    and subcommands only in commands and groups.
    """
    if len(options) > MAX_OPTIONS:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")

    nested = [option for option in options if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if nested and len(nested) != len(options):
        raise form_error(path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Subcommands cannot be mixed with other options.")

    names: set[str] = set()
    optional_seen = False
    for index, option in enumerate(options):
        option_path = f"{path}.{index}"
        option_type = option.get("type")
        name = option.get("name") or ""
        validate_name(name, f"{option_path}.name", lowercase=True)
        if name in names:
            raise form_error(f"{option_path}.name", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", f"Option names must be unique: {name!r}")
        names.add(name)

        description = option.get("description") or ""
        if not 1 <= len(description) <= MAX_DESCRIPTION_LENGTH:
            raise form_error(f"{option_path}.description", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_DESCRIPTION_LENGTH} in length.")

        if option_type == SUB_COMMAND_GROUP:
            if level != "command":
                raise form_error(option_path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Subcommand groups may only sit at the top level of a command.")
            validate_options(option.get("options") or [], f"{option_path}.options", level="group")
            continue
        if option_type == SUB_COMMAND:
            if level == "subcommand":
                raise form_error(option_path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Subcommands cannot contain subcommands.")
            validate_options(option.get("options") or [], f"{option_path}.options", level="subcommand")
            continue
        if level == "group":
            raise form_error(option_path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "A subcommand group may only contain subcommands.")

        if option.get("required"):
            if optional_seen:
                raise form_error(option_path, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "Required options must be placed before non-required options")
        else:
            optional_seen = True

        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            raise form_error(f"{option_path}.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
        if choices and option.get("autocomplete"):
            raise form_error(option_path, "APPLICATION_COMMAND_OPTION_CHOICES_AUTOCOMPLETE", "Autocomplete cannot be set with choices.")


def stored_command(
    payload: dict[str, Any],
    *,
    command_id: int,
    version: int,
    application_id: int,
    guild_id: int | None,
) -> dict[str, Any]:
    """Return the command object Discord stores and returns for a registered command."""
    # Discord accepts the permission bits as a number or a string and returns a string.
    permissions = payload.get("default_member_permissions")
    command: dict[str, Any] = {
        "id": str(command_id),
        "application_id": str(application_id),
        "version": str(version),
        "default_member_permissions": None if permissions is None else str(permissions),
        "type": int(payload.get("type", CHAT_INPUT)),
        "name": payload["name"],
        "name_localizations": payload.get("name_localizations"),
        "description": payload.get("description", ""),
        "description_localizations": payload.get("description_localizations"),
        "dm_permission": payload.get("dm_permission", True),
        "contexts": payload.get("contexts"),
        "integration_types": payload.get("integration_types", [0]),
        "nsfw": payload.get("nsfw", False),
    }
    if payload.get("options"):
        command["options"] = payload["options"]
    if guild_id is not None:
        command["guild_id"] = str(guild_id)
    return command


# Invocation.


def build_command_data(
    command: dict[str, Any],
    subcommand_path: list[str],
    values: dict[str, Any],
    resolve: Resolver,
    *,
    validate: bool = True,
    focused: str | None = None,
) -> dict[str, Any]:
    """Return the `data` of an INTERACTION_CREATE that invokes `command`.

    `subcommand_path` names the group and subcommand, for example ["status"]
    for `/train status`. `values` maps option names to Python values; users,
    roles, channels and attachments go through `resolve`. `focused` names the
    option an autocomplete interaction is for.
    """
    command_name = " ".join([command["name"], *subcommand_path])
    schema_options = command.get("options") or []
    resolved: dict[str, dict[str, Any]] = {}

    # Walk down to the subcommand the path names.
    chain: list[dict[str, Any]] = []
    for name in subcommand_path:
        option = next(
            (candidate for candidate in schema_options if candidate.get("name") == name and candidate.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)),
            None,
        )
        if option is None:
            known = [candidate["name"] for candidate in schema_options if candidate.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise ValueError(f"/{command['name']} has no subcommand or group {name!r} on path {subcommand_path}. Known: {known}.")
        chain.append(option)
        schema_options = option.get("options") or []

    if any(option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for option in schema_options):
        known = [option["name"] for option in schema_options]
        raise ValueError(f"/{command_name} needs a subcommand or group, one of {known}; pass subcommand=...")

    leaf_options = build_option_values(command_name, schema_options, values, resolve, resolved, validate=validate, focused=focused)

    # Nest the values inside the subcommand and group options.
    options = leaf_options
    for option in reversed(chain):
        options = [{"type": option["type"], "name": option["name"], "options": options}]

    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", CHAT_INPUT),
        "options": options,
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    if resolved:
        data["resolved"] = resolved
    return data


def build_option_values(
    command_name: str,
    schema_options: list[dict[str, Any]],
    values: dict[str, Any],
    resolve: Resolver,
    resolved: dict[str, dict[str, Any]],
    *,
    validate: bool,
    focused: str | None,
) -> list[dict[str, Any]]:
    by_name = {option["name"]: option for option in schema_options}
    unknown = [name for name in values if name not in by_name]
    if unknown:
        raise ValueError(f"/{command_name} has no option(s) {unknown}. Options: {list(by_name)}.")

    if validate and focused is None:
        missing = [option["name"] for option in schema_options if option.get("required") and option["name"] not in values]
        if missing:
            raise ValueError(f"/{command_name} requires option(s) {missing}; Discord does not let a user send it without them.")

    # Discord sends options in the order the user filled them in; schema order is a stable choice.
    options = []
    for option in schema_options:
        name = option["name"]
        if name not in values:
            continue
        value = values[name]
        option_type = option["type"]

        if name == focused:
            options.append({"type": option_type, "name": name, "value": str(value), "focused": True})
            continue
        if option_type in SNOWFLAKE_TYPES:
            snowflake, entries = resolve(option_type, value)
            for kind, items in entries.items():
                resolved.setdefault(kind, {}).update(items)
            options.append({"type": option_type, "name": name, "value": snowflake})
            continue

        if validate:
            value = checked_value(command_name, option, value)
        options.append({"type": option_type, "name": name, "value": value})
    return options


def checked_value(command_name: str, option: dict[str, Any], value: Any) -> Any:
    """Return `value` as Discord would send it, or raise ValueError if a user could not enter it."""
    name = option["name"]
    option_type = option["type"]
    where = f"/{command_name} option {name!r}"

    if option_type == STRING:
        if not isinstance(value, str):
            raise ValueError(f"{where} is a string option, got {value!r}.")
        if "min_length" in option and len(value) < option["min_length"]:
            raise ValueError(f"{where} needs at least {option['min_length']} characters, got {value!r}.")
        if "max_length" in option and len(value) > option["max_length"]:
            raise ValueError(f"{where} takes at most {option['max_length']} characters, got {len(value)}.")
    elif option_type == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} is an integer option, got {value!r}.")
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{where} must be within +-2**53, got {value}.")
    elif option_type == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} is a number option, got {value!r}.")
    elif option_type == BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"{where} is a boolean option, got {value!r}.")

    if option_type in (INTEGER, NUMBER):
        if "min_value" in option and value < option["min_value"]:
            raise ValueError(f"{where} must be at least {option['min_value']}, got {value}.")
        if "max_value" in option and value > option["max_value"]:
            raise ValueError(f"{where} must be at most {option['max_value']}, got {value}.")

    choices = option.get("choices") or []
    if choices and value not in [choice["value"] for choice in choices]:
        raise ValueError(f"{where} must be one of the choices {[choice['value'] for choice in choices]}, got {value!r}.")
    return value
