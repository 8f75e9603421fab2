#!/usr/bin/env bash
# A pod sandbox and one container, started to running through containerd's CRI: berth-runtime's
# handler against runc's on one containerd (Debian's 1.6, its runc v2 shim), taking turns, then
# a traced pass that shows which part of a pod start is the runtime's and which is containerd's,
# the shim's, CNI's and the client's, and berth-runtime's own steps in a container create.
# The node (registry, images, containerd, CNI) is crates/berth-cri-tests' test node.
#
#   bench/cri.sh            # ROUNDS=20 pods per handler by default
# Env: BERTH_RUNTIME (default: a static release build), ROUNDS.
# Needs (as root): containerd runc docker-registry busybox-static protobuf-compiler
# containernetworking-plugins (what .ci/run installs).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-20}
# A static binary, as berth-runtime ships (bench/runtime.sh builds the same one).
host=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "${BERTH_RUNTIME:-}" ]; then
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
        cargo build --quiet --release -p berth-runtime --target "$host"
fi
berth=${BERTH_RUNTIME:-$PWD/target/$host/release/berth-runtime}
# The CRI client is a debug build (the same one `cargo test` makes): its share is in the last
# column and is the same for both handlers.
cargo build --quiet -p berth-cri-tests --example cri_bench
target=${CARGO_TARGET_DIR:-$PWD/target}
echo "containerd: $(containerd --version | awk '{print $3}'), runc: $(runc --version | head -1 | awk '{print $3}'), berth-runtime: $berth"
# containerd's own log lines go to its log file under the node's directory; only results here.
exec "$target/debug/examples/cri_bench" "$rounds" "$berth"
