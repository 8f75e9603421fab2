#!/usr/bin/env bash
# Networks, in one run:
#  1. `run --rm busybox true` on the default bridge: berth against podman (netavark) and docker,
#     with berth's `--network none` run beside it for what the network costs;
#  2. TCP throughput host -> container with iperf3: through a published port on 127.0.0.1 against
#     the container's own address (the host's iperf3, run inside from the host's read-only /usr);
#  3. MANY containers on one user network: start time per batch of 20 (linear growth means a flat
#     per-container time), then every name resolved from sampled containers;
#  4. leak counts after everything is removed (veths, nft elements, leases, resolvers).
#
#   bench/network.sh          # RUNS=30 MANY=200 SAMPLES=10 by default
#   BERTH_BASELINE=/path/to/older/berth bench/network.sh   # also times an older build
# Needs (as root): busybox-static podman docker.io iperf3 hyperfine nftables. The host's iptables
# rules are saved first and restored at the end (dockerd and podman add theirs).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS=${RUNS:-30}
MANY=${MANY:-200}
SAMPLES=${SAMPLES:-10}
WORK=$(mktemp -d /var/tmp/berth-net-bench.XXXXXX)
bench_network bnb
iptables-save >"$WORK/iptables.v4" 2>/dev/null || true
ip6tables-save >"$WORK/iptables.v6" 2>/dev/null || true

cleanup() {
    set +e
    [ -x "${BERTH:-}" ] && $BERTH $BR rm -f $($BERTH $BR ps -aq 2>/dev/null) >/dev/null 2>&1
    [ -x "${BERTH:-}" ] && $BERTH $BR network prune -f >/dev/null 2>&1
    [ -n "${BERTH_BASELINE:-}" ] && $BERTH_BASELINE $BR0 rm -f $($BERTH_BASELINE $BR0 ps -aq 2>/dev/null) >/dev/null 2>&1
    bench_network_cleanup
    [ -n "${DOCKERD_PID:-}" ] && kill "$DOCKERD_PID" && wait "$DOCKERD_PID" 2>/dev/null
    ip link del docker0 2>/dev/null
    podman $PR system reset -f >/dev/null 2>&1
    ip link del podman0 2>/dev/null
    [ -s "$WORK/iptables.v4" ] && iptables-restore <"$WORK/iptables.v4"
    [ -s "$WORK/iptables.v6" ] && ip6tables-restore <"$WORK/iptables.v6"
    grep -F " $WORK" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

cargo build --release -p berth -q
BERTH=$PWD/target/release/berth
BR="--root $WORK/berth --runroot $WORK/run/berth"
BR0="--root $WORK/berth0 --runroot $WORK/run/berth0"
PR="--root $WORK/podman --runroot $WORK/run/podman --runtime runc --storage-driver overlay --cgroup-manager cgroupfs --events-backend none"

echo "== a busybox image, the same in all three"
busybox_tar "$WORK/rootfs" "$WORK/rootfs.tar" sh true sleep cat echo nslookup wget seq
$BERTH $BR import "$WORK/rootfs.tar" busybox:latest >/dev/null
[ -n "${BERTH_BASELINE:-}" ] && $BERTH_BASELINE $BR0 import "$WORK/rootfs.tar" busybox:latest >/dev/null
$BERTH $BR save -o "$WORK/busybox.tar" busybox:latest
podman $PR load -q -i "$WORK/busybox.tar" >/dev/null

DOCKER=""
if command -v dockerd >/dev/null; then
    # Its own bridge and iptables rules, as a default dockerd has them (saved rules come back at
    # the end).
    dockerd --data-root "$WORK/docker" --exec-root "$WORK/run/docker" --pidfile "$WORK/dockerd.pid" \
        -H "unix://$WORK/docker.sock" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 100); do docker -H "unix://$WORK/docker.sock" info >/dev/null 2>&1 && break; sleep 0.2; done
    docker -H "unix://$WORK/docker.sock" load -q -i "$WORK/busybox.tar" >/dev/null
    DOCKER="docker -H unix://$WORK/docker.sock"
    # dockerd's FORWARD policy is DROP: let berth's bridges through, as the README says.
    for dir in -i -o; do iptables -I DOCKER-USER "$dir" bnb0 -j ACCEPT; done
fi

echo "== run --rm busybox true on the default bridge"
$BERTH $BR run --rm busybox true # makes the default network (once per host)
cmds=(-n berth-bridge "$BERTH $BR run --rm busybox true"
      -n berth-none "$BERTH $BR run --rm --network none busybox true"
      -n podman-bridge "podman $PR run --rm busybox true")
[ -n "${BERTH_BASELINE:-}" ] && cmds+=(-n berth-baseline-none "$BERTH_BASELINE $BR0 run --rm --network none busybox true")
[ -n "$DOCKER" ] && cmds+=(-n docker-bridge "$DOCKER run --rm busybox true")
hyperfine -N --warmup 3 --runs "$RUNS" "${cmds[@]}"

echo "== TCP throughput host -> container (iperf3, 5 s each)"
if command -v iperf3 >/dev/null; then
    port=$((20000 + RANDOM % 20000))
    libs=(-v /usr:/usr:ro -v /usr/lib:/lib:ro)
    [ -d /usr/lib64 ] && libs+=(-v /usr/lib64:/lib64:ro)
    # iperf3 keeps its buffer in a file under /tmp, which the busybox image lacks.
    $BERTH $BR run -d --name perf --tmpfs /tmp -p "$port:5201" "${libs[@]}" busybox /usr/bin/iperf3 -s >/dev/null
    ip=$($BERTH $BR inspect -f '{{.NetworkSettings.IPAddress}}' perf)
    # Ready when its port accepts a connection (a throw-away iperf3 test could leave the
    # one-test-at-a-time server busy); every transfer is bounded in time.
    for _ in $(seq 50); do timeout 1 bash -c "echo > /dev/tcp/$ip/5201" 2>/dev/null && break; sleep 0.1; done
    gbps() {
        timeout 30 iperf3 -c "$1" -p "$2" -t 5 -J | jq '.end.sum_received.bits_per_second / 1e9'
    }
    direct=$(gbps "$ip" 5201)
    published=$(gbps 127.0.0.1 "$port")
    printf '   to %s:5201 (the container): %.2f Gbit/s\n' "$ip" "$direct"
    printf '   to 127.0.0.1:%s (published): %.2f Gbit/s = %.0f%% of direct\n' "$port" "$published" \
        "$(echo "100 * $published / $direct" | bc -l)"
    $BERTH $BR rm -f perf >/dev/null
else
    echo "   (iperf3 not installed: apt-get install iperf3)"
fi

echo "== $MANY containers on one user network"
$BERTH $BR network create many >/dev/null
batch_start=$(date +%s%N)
for i in $(seq "$MANY"); do
    $BERTH $BR run -d --network many --name "m$i" busybox sleep 3600 >/dev/null
    if [ $((i % 20)) -eq 0 ]; then
        now=$(date +%s%N)
        printf '   containers %3d-%3d: %.1f ms each\n' $((i - 19)) "$i" "$(echo "($now - $batch_start) / 20 / 1000000" | bc -l)"
        batch_start=$now
    fi
done
echo "   resolving all $MANY names from $SAMPLES sampled containers"
misses=0
for k in $(seq "$SAMPLES"); do
    c=m$(( (k * 7919) % MANY + 1 ))
    m=$($BERTH $BR exec "$c" sh -c "n=0; for i in \$(seq $MANY); do nslookup m\$i >/dev/null 2>&1 || n=\$((n+1)); done; echo \$n")
    misses=$((misses + m))
done
echo "   unresolved: $misses of $((MANY * SAMPLES)) lookups"
rss=$(for p in $(pgrep -f "__dns $WORK"); do awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup"; done | paste -sd+ | bc)
echo "   resolver RSS: ${rss:-0} KiB"
rm_start=$(date +%s.%N)
$BERTH $BR rm -f $($BERTH $BR ps -aq) >/dev/null
echo "   rm -f of all $MANY took $(echo "$(date +%s.%N) - $rm_start" | bc) s"
$BERTH $BR network rm many >/dev/null

echo "== what is left (expected: nothing but the default network's bridge)"
echo "   links: $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^bnb' | tr '\n' ' ')"
echo "   published-port elements: $(nft -j list table inet bnb | jq '[.nftables[] | select(.map) | .map.elem // [] | length] | add')"
echo "   leases: $(find "$WORK/run/berth/networks" -path '*/leases/*' ! -name '.*' -type f | wc -l)   endpoints: $(find "$WORK/run/berth/networks" -path '*/endpoints/*' -type f | wc -l)   resolvers: $(pgrep -fc "__dns $WORK" || true)"
