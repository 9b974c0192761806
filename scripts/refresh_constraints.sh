#!/usr/bin/env bash
# Regenerates constraints.txt: the exact versions the test suite passed with. Run it ON PURPOSE (a dependency
# upgrade you want), never as part of CI: README command 1, README command 2's venv and .ci/run install with
# `-c constraints.txt`, so a fresh install gets these versions, not whatever is newest that day.
#
#   bash scripts/refresh_constraints.sh            # fresh venv, newest versions allowed by pyproject.toml
#   then: bash .ci/run (with the new file) and ../shared/tools/check-portable, and commit constraints.txt
#
# pyproject.toml keeps only lower bounds, for people who install raynas as a library beside other packages.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python3 -m venv "$tmp/venv"
# shellcheck disable=SC1091
source "$tmp/venv/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q torch==2.13.0  # the CPU wheel; an unpinned torch pulls the CUDA wheels
pip install -q -e ".[test,bench]"
{
  echo "# Versions the test suite passed with (pip install -c constraints.txt ...)."
  echo "# Regenerated on purpose by scripts/refresh_constraints.sh, $(date -u +%Y-%m-%d), Python $(python -c 'import platform; print(platform.python_version())')."
  echo "# torch has no local label (+cpu), so the same pin also admits the CUDA build of that version."
  echo "# The pins hold for the Python they were made with (the marker); another Python resolves pyproject's lower bounds."
  pyver=$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  pip freeze --exclude-editable | grep -v '^#' | sed -E 's/^(torch==[^+]+)\+.*/\1/' | sort -f \
    | sed "s/\$/; python_version == \"$pyver\"/"
} > constraints.txt
rm -rf "$tmp"
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
