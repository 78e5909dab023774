#!/usr/bin/env bash
# Install everything freqfeed's development, tests and local lab need on a fresh Debian 12 machine.
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  influxdb            # the real InfluxDB 1.x the tests, benchmarks and lab run against
  prometheus prometheus-node-exporter  # promtool (make lint's rule tests), the metrics test's real Prometheus
  podman runc         # Molecule and lab containers (runc: crun fails on hybrid cgroups)
  debootstrap         # builds the local Debian base image (no registry here)
  python3-venv python3-dev gcc make  # the venvs, and a compiler for any dependency without a wheel
  ca-certificates curl util-linux procps
  wrk                 # the gateway benchmarks' load generator (C: the bots' latency without a Python client's)
)
FREQTRADE_VERSION="${FREQTRADE_VERSION:-2026.9}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts influxd as a system service on install; freqfeed never uses it (tests start their own).
if systemctl is-active --quiet influxdb 2>/dev/null; then as_root systemctl disable --now influxdb || true; fi
# Debian starts both on install; the tests start their own Prometheus on a free port when they need one.
for unit in prometheus prometheus-node-exporter; do
  if systemctl is-active --quiet "$unit" 2>/dev/null; then as_root systemctl disable --now "$unit" || true; fi
done

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.freqfeed-installed
inputs=(files/python/pyproject.toml files/python/requirements.lock requirements-dev.txt)
if [ ! -f "$stamp" ] || [ -n "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -c files/python/requirements.lock -r files/python/requirements.lock -r requirements-dev.txt
  .venv/bin/pip install -q --no-deps -e files/python
  touch "$stamp"
fi

# freqtrade in a venv of its own: the tests load freqfeed's files with freqtrade's own loader.
FT_VENV=.cache/freqtrade-venv
if [ ! -x "$FT_VENV/bin/freqtrade" ] || ! "$FT_VENV/bin/python" -c "import freqtrade,sys; sys.exit(freqtrade.__version__ != '$FREQTRADE_VERSION')" 2>/dev/null; then
  echo "setup: installing freqtrade $FREQTRADE_VERSION into $FT_VENV"
  rm -rf "$FT_VENV"
  "$PY" -m venv "$FT_VENV"
  "$FT_VENV/bin/pip" install -q "freqtrade==$FREQTRADE_VERSION"
fi
echo "setup: done"
