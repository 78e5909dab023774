#!/usr/bin/env bash
# Build the local Debian images with systemd as PID 1 that Molecule and the lab run (no registry here):
# localhost/freqfeed-debian-systemd:<release>, one per release given (default: bookworm and trixie,
# Debian 12 and 13, the releases the roles are tested on).
#   scripts/build-base-image.sh [bookworm|trixie ...]
# Idempotent: does nothing for an image that exists (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."
REPOSITORY="${FREQFEED_BASE_IMAGE_REPOSITORY:-localhost/freqfeed-debian-systemd}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="$PWD/molecule/containers.conf"
[ "$#" -gt 0 ] || set -- bookworm trixie

build() {
  local release="$1" image="$REPOSITORY:$1" rootfs
  if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
    echo "base image $image exists"
    return
  fi
  if [ ! -e "/usr/share/debootstrap/scripts/$release" ]; then
    echo "build-base-image: this debootstrap does not know $release (no /usr/share/debootstrap/scripts/$release);" \
      "install a newer debootstrap" >&2
    exit 1
  fi
  rootfs="$(mktemp -d /tmp/freqfeed-rootfs.XXXXXX)"
  # shellcheck disable=SC2064 # expand now: the path of this release's root file system
  trap "rm -rf '$rootfs'" EXIT
  echo "building $image with debootstrap from $MIRROR (about two minutes)"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,sudo,procps,iproute2 \
    "$release" "$rootfs" "$MIRROR" >/dev/null
  # The same suites on both releases: the release, its updates and its security suite (<release>-security).
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $release main
deb $MIRROR $release-updates main
deb http://deb.debian.org/debian-security $release-security main
SOURCES
  # No getty on a console nobody reads; containers start faster and quieter.
  rm -f "$rootfs"/etc/systemd/system/getty.target.wants/* "$rootfs"/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service
  echo "freqfeed" > "$rootfs/etc/hostname"
  # Keep the package lists (the roles' apt cache_valid_time refreshes them once they are a day old).
  chroot "$rootfs" apt-get update -q >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "built $image ($(image_release "$image"))"
}

image_release() {
  podman run --rm "$1" sh -c '. /etc/os-release; echo "$PRETTY_NAME, $(python3 --version)"'
}

for release in "$@"; do
  case "$release" in
    bookworm|trixie) build "$release" ;;
    *) echo "build-base-image: unknown release '$release' (expected bookworm or trixie)" >&2; exit 2 ;;
  esac
done
