#!/usr/bin/env bash
# `run --rm --network none busybox true`: berth against podman (--runtime runc) and docker, in one
# run; `--userns=auto` against the host's ids (berth and podman); an ordinary user's rootless run
# (berth and podman, as a user the script makes and removes); then 1,000 `run --rm` cycles ten at
# a time (failures and leaks counted) and 200 detached `sleep` containers held at once with the
# monitors' total RSS.
#
#   bench/run.sh              # RUNS=30 CYCLES=1000 DETACHED=200 by default
#   BERTH_BASELINE=/path/to/older/berth bench/run.sh   # also times an older build in the same run
# Needs (as root): busybox-static podman runc docker.io hyperfine. State lives on a tmpfs-free
# journaled ext4 loop mount, like the image benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_network brb
RUNS=${RUNS:-30}
CYCLES=${CYCLES:-1000}
DETACHED=${DETACHED:-200}
WORK=$(mktemp -d /var/tmp/berth-run-bench.XXXXXX)
MNT=$WORK/mnt
# Remapped roots (--userns=auto) and the rootless user must walk down to their stores.
chmod 0755 "$WORK"

# Read before anything can add it: the cleanup removes berth's range only if the host had none.
HAD_BERTH_RANGE=$(grep -q '^berth:' /etc/subuid /etc/subgid 2>/dev/null && echo 1 || true)

cleanup() {
    set +e
    [ -x "${BERTH:-}" ] && $BERTH $BR rm -f $($BERTH $BR ps -aq 2>/dev/null) >/dev/null 2>&1
    [ -n "${BERTH_BASELINE:-}" ] && $BERTH_BASELINE $BR0 rm -f $($BERTH_BASELINE $BR0 ps -aq 2>/dev/null) >/dev/null 2>&1
    [ -n "${DOCKERD_PID:-}" ] && kill "$DOCKERD_PID" && wait "$DOCKERD_PID" 2>/dev/null
    podman $PR system reset -f >/dev/null 2>&1
    [ -n "${ADDED_CONTAINERS:-}" ] && sed -i '/^containers:2147483648:1073741824$/d' /etc/subuid /etc/subgid
    # berth adds its own range on its first --userns=auto; a host that had none gets none back.
    [ -z "${HAD_BERTH_RANGE:-}" ] && sed -i '/^berth:/d' /etc/subuid /etc/subgid
    if [ -n "${BUSER:-}" ]; then
        pkill -KILL -u "$BUSER" 2>/dev/null; sleep 0.2
        userdel "$BUSER" 2>/dev/null
    fi
    grep -F " $MNT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    umount "$MNT" 2>/dev/null
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
chmod 0755 "$MNT"
BR="--root $MNT/berth --runroot $WORK/run/berth"
BR0="--root $MNT/berth0 --runroot $WORK/run/berth0"
PR="--root $MNT/podman --runroot $WORK/run/podman --runtime runc --storage-driver overlay --cgroup-manager cgroupfs --events-backend none"

echo "== a busybox image, the same in all three"
busybox_tar "$WORK/rootfs" "$WORK/rootfs.tar" sh true sleep cat echo ls
$BERTH $BR import "$WORK/rootfs.tar" busybox:latest >/dev/null
[ -n "${BERTH_BASELINE:-}" ] && $BERTH_BASELINE $BR0 import "$WORK/rootfs.tar" busybox:latest >/dev/null
$BERTH $BR save -o "$WORK/busybox.tar" busybox:latest
podman $PR load -q -i "$WORK/busybox.tar" >/dev/null

DOCKER=""
if command -v dockerd >/dev/null; then
    dockerd --data-root "$MNT/docker" --exec-root "$WORK/run/docker" --pidfile "$WORK/dockerd.pid" \
        -H "unix://$WORK/docker.sock" --bridge none --iptables=false >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 100); do docker -H "unix://$WORK/docker.sock" info >/dev/null 2>&1 && break; sleep 0.2; done
    docker -H "unix://$WORK/docker.sock" load -q -i "$WORK/busybox.tar" >/dev/null
    DOCKER="docker -H unix://$WORK/docker.sock"
fi

echo "== run --rm --network none busybox true"
cmds=(-n berth "$BERTH $BR run --rm --network none busybox true"
      -n podman "podman $PR run --rm --network none busybox true")
[ -n "${BERTH_BASELINE:-}" ] && cmds+=(-n berth-baseline "$BERTH_BASELINE $BR0 run --rm --network none busybox true")
[ -n "$DOCKER" ] && cmds+=(-n docker "$DOCKER run --rm --network none busybox true")
hyperfine -N --warmup 3 --runs "$RUNS" "${cmds[@]}"

echo "== --userns=auto: a fresh id range per container, against the host's ids (root)"
# podman's --userns=auto takes its ranges from the "containers" lines (added for the run if
# missing, above berth's own range, and removed after).
for f in /etc/subuid /etc/subgid; do
    grep -q '^containers:' "$f" || { echo "containers:2147483648:1073741824" >>"$f"; ADDED_CONTAINERS=1; }
done
hyperfine -N --warmup 3 --runs "$RUNS" \
    -n berth-host "$BERTH $BR run --rm --network none busybox true" \
    -n berth-auto "$BERTH $BR run --rm --network none --userns=auto busybox true" \
    -n podman-auto "podman $PR run --rm --network none --userns=auto busybox true"

echo "== rootless: an ordinary user's run --rm --network none busybox true"
# A user of the benchmark's own (useradd gives them a subordinate range in /etc/subuid and
# /etc/subgid; userdel takes it back), their stores on the same ext4. Both commands start
# through the same setpriv wrapper, timed alone too.
BUSER=berthbench$$
useradd -M -U -s /usr/sbin/nologin "$BUSER"
UHOME=$MNT/home-$BUSER
mkdir -p "$UHOME/run" && chmod 0700 "$UHOME/run" && chown -R "$BUSER:$BUSER" "$UHOME"
cp "$WORK/rootfs.tar" "$WORK/busybox.tar" "$UHOME/" && chown "$BUSER:$BUSER" "$UHOME"/*.tar
AS_USER="setpriv --reuid=$BUSER --regid=$BUSER --init-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$UHOME XDG_DATA_HOME=$UHOME/data XDG_RUNTIME_DIR=$UHOME/run XDG_CONFIG_HOME=$UHOME/config"
PRU="--runtime runc --storage-driver overlay --cgroup-manager cgroupfs --events-backend none"
$AS_USER "$BERTH" import "$UHOME/rootfs.tar" busybox:latest >/dev/null
$AS_USER podman $PRU load -q -i "$UHOME/busybox.tar" >/dev/null
hyperfine -N --warmup 3 --runs "$RUNS" \
    -n setpriv-alone "$AS_USER true" \
    -n berth-root "$BERTH $BR run --rm --network none busybox true" \
    -n berth-rootless "$AS_USER $BERTH run --rm --network none busybox true" \
    -n podman-rootless "$AS_USER podman $PRU run --rm --network none busybox true"
$AS_USER podman $PRU system reset -f >/dev/null 2>&1 || true

echo "== $CYCLES run --rm cycles, ten in parallel"
cgroups_before=$(find /sys/fs/cgroup/*/ -maxdepth 1 -type d -name 'berth*' 2>/dev/null | wc -l)
fails=$(seq "$CYCLES" | xargs -P 10 -I{} sh -c "$BERTH $BR run --rm --network none busybox true >/dev/null 2>&1 || echo fail" | wc -l)
left=$($BERTH $BR ps -aq | wc -l)
mounts=$(grep -c "$MNT/berth/containers" /proc/self/mountinfo || true)
cgroups=$(( $(find /sys/fs/cgroup/*/ -maxdepth 1 -type d -name 'berth*' 2>/dev/null | wc -l) - cgroups_before ))
snaps=$(find "$MNT/berth/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
echo "   failures: $fails   containers left: $left   mounts left: $mounts   cgroups left: $cgroups   snapshots left: $snaps"

echo "== $DETACHED detached sleep containers"
start=$(date +%s.%N)
for i in $(seq "$DETACHED"); do $BERTH $BR run -d --network none busybox sleep 600 >/dev/null; done
end=$(date +%s.%N)
# Each detached container has a monitor (its parent, the copy loop) and a keeper (a subreaper
# above it that takes over if the monitor is killed): both are counted.
rss_of() {
    local rss=0 pss=0 n=0 r s
    for p in $(pgrep -x "$1" || true); do
        r=$(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup"); rss=$((rss + r))
        s=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup"); pss=$((pss + s))
        n=$((n + 1))
    done
    echo "$n $rss $pss"
}
read -r n rss pss < <(rss_of berth-monitor)
read -r kn krss kpss < <(rss_of berth-keeper)
echo "   started $DETACHED in $(echo "$end - $start" | bc) s"
echo "   monitors: $n, total RSS $((rss / 1024)) MiB ($((rss / (n > 0 ? n : 1))) KiB each), PSS $((pss / 1024)) MiB"
echo "   keepers:  $kn, total RSS $((krss / 1024)) MiB ($((krss / (kn > 0 ? kn : 1))) KiB each), PSS $((kpss / 1024)) MiB"
echo "   per container: $(((rss + krss) / (n > 0 ? n : 1))) KiB RSS, $(((pss + kpss) / (n > 0 ? n : 1))) KiB PSS"
rm_start=$(date +%s.%N)
$BERTH $BR rm -f $($BERTH $BR ps -aq) >/dev/null
rm_end=$(date +%s.%N)
echo "   rm -f of all $DETACHED took $(echo "$rm_end - $rm_start" | bc) s"
live_monitors=$(ps -eo stat=,comm= | awk '($2 == "berth-monitor" || $2 == "berth-keeper") && $1 !~ /Z/' | wc -l)
echo "   after rm -f: containers $($BERTH $BR ps -aq | wc -l), live monitors $live_monitors (exited ones may wait for pid 1 to reap them), mounts $(grep -c "$MNT/berth/containers" /proc/self/mountinfo || true)"
