#!/usr/bin/env bash
# `molecule test` for every scenario (molecule/*/molecule.yml), with what they need built first:
# the local systemd base image and the dependency wheelhouse. Also checks that the InfluxDB secret the
# scenarios deploy never appears in Ansible's output. Log: .cache/molecule/test.log
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export CONTAINERS_CONF="$PWD/molecule/containers.conf"
# Per-playbook wall time in the output ("Playbook run took ..."): converge and idempotence timings.
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.timer
scripts/build-base-image.sh
scripts/build-wheelhouse.sh
mkdir -p .cache/molecule
log=.cache/molecule/test.log
status=0
molecule test --all 2>&1 | tee "$log" || status=$?
secret=.cache/molecule/influxdb-password
if [ -s "$secret" ] && grep -qF -- "$(cat "$secret")" "$log"; then
  echo "molecule-test: the InfluxDB secret appears in the Ansible output ($log)" >&2
  exit 1
fi
exit "$status"
