#!/usr/bin/env bash
# Install everything into .venv and start the bot. Without DISCORD_TOKEN (in the
# environment or .env) it opens the offline console on the shipped model.
# Relative paths in arguments, .env and console-output/ refer to the current
# directory, as with `gan-bot`.
set -euo pipefail
# readlink -f follows a symlink to this script, e.g. one placed in ~/bin.
repo="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
"$repo/scripts/setup.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$repo/.venv/bin/python" -m bot "$@"
