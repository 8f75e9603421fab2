#!/usr/bin/env bash
# Runs the whole test suite (as root: the runtime tests create real containers).
# BERTH_RUNTIME=/usr/sbin/runc scripts/test.sh proves the integration tests against runc.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test.sh: run as root (the runtime tests create namespaces, cgroups and mounts)" >&2
    exit 1
fi
cargo build --workspace
cargo test --workspace -- --test-threads=2
