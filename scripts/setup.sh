#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test extras into it.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# Keep pip's and setuptools' chatter in a log, and show it only when installing fails.
log="$PWD/.venv/install.log"
echo "Installing the project into .venv (output in $log)..." >&2
if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "Installing into .venv failed; the output above (also in $log) says why." >&2
    exit 1
fi
