#!/usr/bin/env bash
# Build the local Debian 12 image with systemd as PID 1 that Molecule and the lab run (no registry here).
# Idempotent: does nothing when the image exists (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${FREQFEED_BASE_IMAGE:-localhost/freqfeed-debian-systemd:bookworm}"
export CONTAINERS_CONF="$PWD/molecule/containers.conf"

if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
  echo "base image $IMAGE exists"
  exit 0
fi
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOTFS="$(mktemp -d /tmp/freqfeed-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "building $IMAGE with debootstrap from $MIRROR (about two minutes)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,sudo,procps,iproute2 \
  bookworm "$ROOTFS" "$MIRROR" >/dev/null
cat > "$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
# No getty on a console nobody reads; containers start faster and quieter.
rm -f "$ROOTFS"/etc/systemd/system/getty.target.wants/* "$ROOTFS"/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service
echo "freqfeed" > "$ROOTFS/etc/hostname"
# Keep the package lists (the roles' apt cache_valid_time refreshes them once they are a day old).
chroot "$ROOTFS" apt-get update -q >/dev/null
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$IMAGE" >/dev/null
echo "built $IMAGE"
