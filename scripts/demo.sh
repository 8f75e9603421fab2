#!/usr/bin/env bash
# The main job: a container from an image in a local registry, with `berth run`. Builds a busybox
# image from Debian's busybox-static, pushes it to a real registry on 127.0.0.1, pulls it into a
# fresh store, runs it with a 64 MiB memory limit and 20 pids, and shows its isolation from the
# inside; then a web server on the default bridge with a published port answering from the host,
# and `berth explain` of it. Run as root; leaves nothing behind (its networks use their own names:
# BERTH_NETWORK_PREFIX=bdemo, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/berth ] && [ -n "${BERTH_DEMO_NO_BUILD:-}" ] || cargo build --release -p berth
berth="$PWD/target/release/berth"
work=$(mktemp -d /var/tmp/berth-demo-XXXXXX)
B="$berth --root $work/store --runroot $work/run"
port=$((20000 + RANDOM % 20000))
reg=127.0.0.1:$port
web=$((port + 1))
export BERTH_NETWORK_PREFIX=bdemo
cleanup() {
    set +e
    $B rm -f demo >/dev/null 2>&1
    ip link del bdemo0 2>/dev/null
    nft delete table inet bdemo 2>/dev/null
    [ -n "${reg_pid:-}" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "== a registry (Debian's docker-registry) on $reg"
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -sf "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== a busybox image: import, push, and a fresh pull"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh ps cat echo hostname ls readlink basename sleep httpd ip; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
$berth --root "$work/build" import "$work/rootfs.tar" "$reg/busybox:demo" >/dev/null
$berth --root "$work/build" push -q "$reg/busybox:demo"
$B pull "$reg/busybox:demo"
$B images

echo "== berth run --memory 64m --pids-limit 20 (from inside the container)"
$B run --rm --memory 64m --pids-limit 20 --hostname demo "$reg/busybox:demo" sh -c '
echo "processes (the shell is PID $$):"; ps -o pid,comm
echo "hostname: $(hostname)"
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"'

echo "== a web server on the default bridge, published on port $web, answering the host"
$B run -d --name demo --memory 64m --pids-limit 20 -p "$web:80" "$reg/busybox:demo" \
    sh -c 'set -- $(ip -4 -o addr show eth0); mkdir -p /www
           echo "hello from container $(hostname), address $4" > /www/index.html
           exec httpd -f -p 80 -h /www' >/dev/null
$B port demo
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$web/" && break; sleep 0.1; done

echo "== berth explain (the detached container, from the host)"
$B explain demo
