#!/usr/bin/env bash
# The GitHub Action's lab step (action.yml): runs scripts/action/lab.sh in a Debian container
# (IMAGE, default debian:trixie), or on the runner itself when IMAGE is `none`. Usage:
# container.sh IMAGE ACTION_DIR.
#
# Why a container: the lab needs QEMU 10 or newer (older QEMU corrupts guest state under TCG)
# and takes kernels and Go toolchains from the host's Debian archive (its apt sources), while
# ubuntu-latest has QEMU 8 and no Debian archive. In debian:trixie, scripts/install-host-deps.sh
# installs QEMU 10 from trixie's own archive. The runner's /dev/kvm goes in where it has one.
# Every directory is mounted at its own path (workspace, the action, RUNNER_TEMP, the binaries,
# the cache), so paths in outputs, in GITHUB_OUTPUT and in rsslab's files mean the same inside
# and out; what root wrote is given back to the runner's user.
set -euo pipefail
image="${1:?the container image, or none}"
action="${2:?the directory of the action}"

if [ "$image" = none ]; then
  "$action/scripts/install-host-deps.sh"
  exec "$action/scripts/action/lab.sh"
fi

# Each directory once: one inside another (the action inside the workspace for `uses: ./`) is
# already there.
mounted=()
for dir in "$GITHUB_WORKSPACE" "$RUNNER_TEMP" "$RSSLAB_CACHE_DIR" "$RSSLAB_BIN_DIR" "$action"; do
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  inside=no
  for other in "${mounted[@]}"; do
    case "$dir/" in "$other"/*) inside=yes ;; esac
  done
  [ "$inside" = yes ] || mounted+=("$dir")
done
volumes=()
for dir in "${mounted[@]}"; do volumes+=(--volume "$dir:$dir"); done
devices=()
[ -e /dev/kvm ] && devices=(--device /dev/kvm)

# shellcheck disable=SC2016 # expanded in the container
docker run --rm "${devices[@]}" "${volumes[@]}" \
  --workdir "$PWD" \
  --env ACTION="$action" --env HOST_IDS="$(id -u):$(id -g)" \
  --env DEBIAN_FRONTEND=noninteractive \
  --env RSSLAB_BIN_DIR --env RSSLAB_GUEST_BIN_DIR --env RSSLAB_CACHE_DIR --env RSSLAB_CATALOGUE \
  --env INPUT_SCENARIOS --env INPUT_KERNELS --env INPUT_ARGS --env INPUT_BASELINE --env INPUT_OUT \
  --env GITHUB_OUTPUT --env GITHUB_STEP_SUMMARY --env RSSLAB_LOG \
  "$image" bash -c '
    set -euo pipefail
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ca-certificates python3 >/dev/null
    "$ACTION/scripts/install-host-deps.sh"
    code=0
    "$ACTION/scripts/action/lab.sh" || code=$?
    chown -R "$HOST_IDS" "$INPUT_OUT" "$INPUT_OUT-baseline" "$RSSLAB_CACHE_DIR" 2>/dev/null || true
    exit "$code"'
