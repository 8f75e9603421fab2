#!/usr/bin/env bash
# The runtime alone: run a busybox container with berth-runtime and show it is PID 1 in its
# own namespaces with a 64 MiB memory limit. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${BERTH_RUNTIME:-}" ] || cargo build --release -p berth-runtime
runtime="${BERTH_RUNTIME:-$PWD/target/release/berth-runtime}"
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
id="demo-$$"
cleanup() {
    "$runtime" --root "$work/state" delete -f "$id" >/dev/null 2>&1 || true
    rm -rf --one-file-system "$work"
    rmdir /sys/fs/cgroup/*/berth-demo 2>/dev/null || true
}
trap cleanup EXIT

BUNDLE_MEMORY_LIMIT=$((64 * 1024 * 1024)) BUNDLE_CGROUPS_PATH="/berth-demo/$id" \
    scripts/make-bundle.sh "$work/bundle" sh -c '
echo "== processes (the shell is PID $$)"; ps -o pid,comm
echo "== namespaces inside"; for ns in /proc/self/ns/*; do echo "$(basename $ns) $(readlink $ns)"; done
echo "== hostname: $(hostname)"
echo "== memory limit"
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then cat /sys/fs/cgroup/memory/memory.limit_in_bytes
else cat /sys/fs/cgroup/memory.max; fi' >/dev/null

echo "== namespaces of the host"
for ns in /proc/self/ns/*; do echo "$(basename "$ns") $(readlink "$ns")"; done
echo "== berth-runtime run $id"
"$runtime" --root "$work/state" run --bundle "$work/bundle" "$id"
