#!/usr/bin/env bash
# Install everything into .venv and run the whole test suite on the CPU.
# Extra arguments go to pytest, for example: scripts/test.sh -k data -x
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
./scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests; treating that as a failure." >&2
    exit 1
fi
exit "$status"
