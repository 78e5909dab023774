#!/usr/bin/env bash
# Wheels of every pinned dependency (requirements.lock) in .cache/wheels, built once on this machine, so that
# Molecule and lab containers (same Debian 12 / Python 3.11) install offline without compiling cryptofeed.
# Production hosts do not need it: the roles install from PyPI when freqfeed_install_wheelhouse is empty.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.cache/wheels
mkdir -p "$WHEELS"
if [ -f "$WHEELS/.lock" ] && cmp -s "$WHEELS/.lock" files/python/requirements.lock; then
  echo "wheelhouse $WHEELS is up to date"
  exit 0
fi
.venv/bin/pip wheel --quiet --wheel-dir "$WHEELS" -r files/python/requirements.lock
cp files/python/requirements.lock "$WHEELS/.lock"
echo "wheelhouse $WHEELS: $(ls "$WHEELS"/*.whl | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"
