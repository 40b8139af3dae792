#!/usr/bin/env bash
# Run the whole test suite: lint, type check, unit tests and the lab integration tests
# against real daemons. As root the lab tests must run (SWITCHBOARD_REQUIRE_LAB=1: a lab
# that cannot deploy fails them); as another user they are skipped with the reason.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -k parser).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/install.sh
  export SWITCHBOARD_REQUIRE_LAB="${SWITCHBOARD_REQUIRE_LAB:-1}"
elif [ ! -x .venv/bin/python ]; then
  echo "test.sh: no .venv yet: run scripts/install.sh as root first" >&2
  exit 1
fi

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
