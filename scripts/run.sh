#!/usr/bin/env bash
# Install everything into .venv and start the bot. Without DISCORD_TOKEN (in the
# environment or .env) it opens the offline console on the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m bot "$@"
