#!/usr/bin/env bash
# The Docker Engine API through each service's socket, driven by the same docker CLI
# (/usr/local/bin/docker, 28.2): berth serve, dockerd (Debian's docker.io) and
# `podman system service`, in one hyperfine run per figure:
#   - `docker run --rm busybox true` (target through berth: <= 30 ms median; dockerd ~200 ms)
#   - `docker ps` with 100 containers (target: <= 20 ms)
#   - idle RSS of each service (target for berth serve: <= 10 MiB; dockerd ~40 MiB)
#
#   bench/api.sh            # RUNS=30 CONTAINERS=100 by default
# Needs (as root): busybox-static podman docker.io hyperfine, and the docker CLI in
# /usr/local/bin (the one apt's docker.io brings is never used). State lives on a journaled ext4
# loop mount; every service listens on a socket in the bench's own directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_network bab
RUNS=${RUNS:-30}
CONTAINERS=${CONTAINERS:-100}
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
WORK=$(mktemp -d /var/tmp/berth-api-bench.XXXXXX)
MNT=$WORK/mnt
export DOCKER_CONFIG=$WORK/docker-cli
mkdir -p "$DOCKER_CONFIG"

cleanup() {
    set +e
    # Each service removes its own containers first (dockerd's would outlive it in their shims).
    for s in berth dockerd podman; do
        [ -S "$WORK/$s.sock" ] || continue
        ids=$($DOCKER_CLI -H "unix://$WORK/$s.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && $DOCKER_CLI -H "unix://$WORK/$s.sock" rm -f $ids >/dev/null 2>&1
    done
    for s in berth dockerd podman; do
        pidf=$WORK/$s.pid
        [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null && wait "$(cat "$pidf")" 2>/dev/null
    done
    [ -x "${BERTH:-}" ] && $BERTH $BR rm -f $($BERTH $BR ps -aq 2>/dev/null) >/dev/null 2>&1
    podman $PR rm -fa >/dev/null 2>&1
    podman $PR system reset -f >/dev/null 2>&1
    # dockerd stopped mid-removal leaves shims (their socket is under $WORK) and netns mounts.
    shims=$(pgrep -f "containerd-shim-runc-v2 .*-address $WORK/")
    [ -n "$shims" ] && kill $shims 2>/dev/null
    grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    umount "$MNT" 2>/dev/null
    rmdir /sys/fs/cgroup/*/berth-bench-docker 2>/dev/null
    rm -rf "$WORK"
    bench_network_cleanup
}
trap cleanup EXIT

cargo build --release -p berth -q
BERTH=$PWD/target/release/berth
truncate -s 4G "$WORK/disk.img"
mkfs.ext4 -q -F "$WORK/disk.img"
mkdir -p "$MNT"
mount -o loop "$WORK/disk.img" "$MNT"
BR="--root $MNT/berth --runroot $WORK/run/berth"
PR="--root $MNT/podman --runroot $WORK/run/podman --runtime runc --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"

echo "== a busybox image, the same in all three"
busybox_tar "$WORK/rootfs" "$WORK/rootfs.tar" sh true sleep
$BERTH $BR import "$WORK/rootfs.tar" busybox:latest >/dev/null
$BERTH $BR save -o "$WORK/busybox.tar" busybox:latest

wait_for() { # SOCKET NAME
    for _ in $(seq 150); do $DOCKER_CLI -H "unix://$1" version >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "$2 did not answer on $1" >&2
    return 1
}

echo "== the services"
$BERTH $BR serve -H "unix://$WORK/berth.sock" >"$WORK/berth.log" 2>&1 &
echo $! >"$WORK/berth.pid"
wait_for "$WORK/berth.sock" "berth serve"
SOCKS=(berth "$WORK/berth.sock")
if command -v dockerd >/dev/null; then
    dockerd --data-root "$MNT/docker" --exec-root "$WORK/run/docker" --pidfile "$WORK/dockerd.pid.d" \
        -H "unix://$WORK/docker.sock" --bridge none --iptables=false --cgroup-parent berth-bench-docker >"$WORK/dockerd.log" 2>&1 &
    echo $! >"$WORK/dockerd.pid"
    if wait_for "$WORK/docker.sock" dockerd; then
        $DOCKER_CLI -H "unix://$WORK/docker.sock" load -q -i "$WORK/busybox.tar" >/dev/null
        SOCKS+=(dockerd "$WORK/docker.sock")
    fi
else
    echo "   (dockerd missing: apt-get install docker.io; its docker CLI is not used)"
fi
if command -v podman >/dev/null; then
    podman $PR system service --time 0 "unix://$WORK/podman.sock" >"$WORK/podman.log" 2>&1 &
    echo $! >"$WORK/podman.pid"
    if wait_for "$WORK/podman.sock" "podman system service"; then
        $DOCKER_CLI -H "unix://$WORK/podman.sock" load -q -i "$WORK/busybox.tar" >/dev/null
        SOCKS+=(podman "$WORK/podman.sock")
    fi
fi

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# The targets are medians: hyperfine's JSON has them.
medians() { jq -r '.results[] | "   median \(.command): \(.median * 1000 | floor) ms"' "$1"; }

echo "== idle RSS of each service (after one request)"
for ((i = 0; i < ${#SOCKS[@]}; i += 2)); do
    name=${SOCKS[i]}
    $DOCKER_CLI -H "unix://${SOCKS[i+1]}" ps >/dev/null
    sleep 6   # idle worker threads end after 5 s
    printf "   %-8s %6s KiB\n" "$name" "$(rss_kib "$(cat "$WORK/$name.pid")")"
done
# berth serve's keeper spawner is a process of its own (its child): counted apart, RSS and PSS.
spawner=$(pgrep -P "$(cat "$WORK/berth.pid")" -x berth-spawner || true)
[ -n "$spawner" ] && printf "   %-8s %6s KiB (PSS %s KiB)\n" "+spawner" "$(rss_kib "$spawner")" \
    "$(awk '/^Pss:/ {print $2}' "/proc/$spawner/smaps_rollup")"

echo "== docker run --rm --network none busybox true"
cmds=()
for ((i = 0; i < ${#SOCKS[@]}; i += 2)); do
    cmds+=(-n "${SOCKS[i]}" "$DOCKER_CLI -H unix://${SOCKS[i+1]} run --rm --network none busybox true")
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/run.json" "${cmds[@]}"
medians "$WORK/run.json"

echo "== docker ps with $CONTAINERS containers"
cmds=()
for ((i = 0; i < ${#SOCKS[@]}; i += 2)); do
    sock=${SOCKS[i+1]}
    for n in $(seq "$CONTAINERS"); do
        $DOCKER_CLI -H "unix://$sock" run -d --network none busybox sleep 600 >/dev/null
    done
    cmds+=(-n "${SOCKS[i]}" "$DOCKER_CLI -H unix://$sock ps")
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/ps.json" "${cmds[@]}"
medians "$WORK/ps.json"

echo "== idle RSS of berth serve with $CONTAINERS containers"
sleep 6
printf "   berth    %6s KiB\n" "$(rss_kib "$(cat "$WORK/berth.pid")")"
