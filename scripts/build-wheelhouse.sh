#!/usr/bin/env bash
# Wheels of every pinned dependency (requirements.lock) for each Debian release's Python, in
# .cache/wheels/<python tag>/ (bookworm: cp311, trixie: cp313), built once per lock file on this machine,
# so that Molecule and lab containers install offline (and nothing is downloaded twice).
# The roles pick the directory matching the host's /usr/bin/python3.
#   scripts/build-wheelhouse.sh [bookworm|trixie ...]     (default: both)
# A release whose Python is this machine's is built here with .venv's pip; another release's is built
# inside its base image (scripts/build-base-image.sh), with its Python, headers and compiler.
# Production hosts do not need it: the roles install from PyPI when freqfeed_install_wheelhouse is empty.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELHOUSE=.cache/wheels
LOCK=files/python/requirements.lock
REPOSITORY="${FREQFEED_BASE_IMAGE_REPOSITORY:-localhost/freqfeed-debian-systemd}"
export CONTAINERS_CONF="$PWD/molecule/containers.conf"
[ "$#" -gt 0 ] || set -- bookworm trixie

here_tag="$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"

# A wheelhouse from before the per-release layout held the bookworm wheels at the top: drop them.
rm -f "$WHEELHOUSE"/*.whl "$WHEELHOUSE/.lock"

build() {
  local release="$1" tag="$2" dir="$WHEELHOUSE/$2"
  if [ -f "$dir/.lock" ] && cmp -s "$dir/.lock" "$LOCK"; then
    echo "wheelhouse $dir ($release) is up to date"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ "$tag" = "$here_tag" ]; then
    echo "building the $release wheelhouse $dir with this machine's Python"
    .venv/bin/pip wheel --quiet --wheel-dir "$dir" -r "$LOCK"
  else
    local image="$REPOSITORY:$release"
    scripts/build-base-image.sh "$release"
    echo "building the $release wheelhouse $dir in $image (its Python, headers and gcc; a few minutes, once per lock)"
    # Host network and the host's CA bundle: this machine reaches PyPI through a TLS-inspecting proxy.
    podman run --rm --network=host \
      -v "$PWD/$dir:/wheels" -v "$PWD/$LOCK:/requirements.lock:ro" \
      -v /etc/ssl/certs/ca-certificates.crt:/host-ca-bundle.crt:ro \
      "$image" sh -euc '
        export DEBIAN_FRONTEND=noninteractive PIP_CERT=/host-ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1
        apt-get update -q >/dev/null
        apt-get install -q -y --no-install-recommends python3-venv python3-dev gcc g++ >/dev/null
        python3 -m venv /tmp/venv
        /tmp/venv/bin/pip wheel --quiet --wheel-dir /wheels -r /requirements.lock'
  fi
  local built
  built="$(.venv/bin/python - "$dir" "$tag" <<'CHECK'
import sys
from pathlib import Path
# Every wheel must install on the release's Python: pure (py3-none) or for its tag (e.g. cp313).
directory, tag = Path(sys.argv[1]), sys.argv[2]
wheels = sorted(directory.glob("*.whl"))
wrong = [w.name for w in wheels if w.name.split("-")[-3] not in (tag, "py3", "py2.py3")]
if wrong:
    sys.exit(f"build-wheelhouse: wheels in {directory} not for {tag}: {', '.join(wrong)}")
print(len(wheels))
CHECK
)"
  cp "$LOCK" "$dir/.lock"
  echo "wheelhouse $dir ($release): $built wheels, $(du -sh "$dir" | cut -f1)"
}

for release in "$@"; do
  case "$release" in
    bookworm) build bookworm cp311 ;;
    trixie) build trixie cp313 ;;
    *) echo "build-wheelhouse: unknown release '$release' (expected bookworm or trixie)" >&2; exit 2 ;;
  esac
done
