#!/bin/sh
# PID 1 of the cgroup v2 lane's guest (scripts/v2-lane.sh builds the initramfs and boots it).
# Stage 1 copies the initramfs into a tmpfs and switch_roots into it: an initramfs root cannot be
# pivot_root'ed, and every container runtime pivots. Stage 2 mounts a pure cgroup v2 hierarchy,
# runs each test binary in /lane/tests with its output on the second serial port, writes the exit
# status to the third, and powers off. It must never exit: PID 1 exiting panics the kernel.
# Busybox's applets, then Debian's binaries (the CRI node's containerd, shim, runc, registry).
export PATH=/bin:/usr/bin:/usr/sbin

if [ "$1" != stage2 ]; then
    mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 lane-root /newroot
    for entry in /*; do
        case "$entry" in /newroot | /dev | /proc | /sys) continue ;; esac
        cp -a "$entry" /newroot/
    done
    mkdir -p /newroot/dev /newroot/proc /newroot/sys
    mount --move /dev /newroot/dev
    exec switch_root /newroot /init stage2
fi

fail() {
    echo "v2-lane guest: $*"
    echo "v2-lane guest: $*" >/dev/ttyS1
    echo 1 >/dev/ttyS2
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# What udev would make: the stdio links (nft reads /dev/stdin).
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts -o ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
# What systemd mounts on a v2 host.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
    fail "cannot mount cgroup2"
hostname v2-lane
ip link set lo up

# virtio (the swap disk) and loop (the I/O tests' scratch devices), in dependency order.
while read -r module; do
    insmod "/lib/modules/$module.ko" || fail "insmod $module"
done </lib/modules/order
if [ -b /dev/vda ]; then
    mkswap /dev/vda >/dev/null && swapon /dev/vda || fail "no swap on /dev/vda"
else
    fail "no /dev/vda (the swap disk)"
fi

[ -f /sys/fs/cgroup/cgroup.controllers ] || fail "/sys/fs/cgroup is not cgroup2"
echo "v2-lane guest: kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)" >/dev/ttyS1

# Held open for the whole run: its last close waits for the UART to drain.
exec 3>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo
export BERTH_RUNTIME=/lane/berth-runtime BERTH_V2_LANE=1 HOME=/root
cd /tmp
failed=""
for test in /lane/tests/*; do
    name=${test##*/}
    echo "=== $name" >&3
    start=$(cut -d' ' -f1 /proc/uptime)
    # A Kubernetes node runs without swap (the kubelet's default): containerd, in the root cgroup
    # here, sees no swap controller then and leaves memory.swap.max alone, and a container over its
    # memory limit would swap instead of being OOM-killed.
    [ "$name" != cri ] || swapoff /dev/vda
    # shellcheck disable=SC2046 # the arguments are words: a filter, --nocapture
    "$test" $(cat "/lane/args/$name" 2>/dev/null) --test-threads=2 >&3 2>&1 || failed="$failed $name"
    [ "$name" != cri ] || swapon /dev/vda
    echo "=== $name took $start..$(cut -d' ' -f1 /proc/uptime) s of guest uptime" >&3
done
# The engine on cgroup v2: `berth run` of an imported busybox image with limits (no network:
# the guest has no nft for the default bridge).
engine_check() {
    B="/lane/berth --root /tmp/berth --runroot /run/berth"
    mkdir -p /tmp/img/bin /tmp/img/etc
    cp /bin/busybox /tmp/img/bin/
    for a in sh cat echo tail sleep httpd wget ip; do ln -s busybox "/tmp/img/bin/$a"; done
    mkdir -p /tmp/img/www && echo "from the container" >/tmp/img/www/index.html
    echo 'root:x:0:0:root:/root:/bin/sh' >/tmp/img/etc/passwd
    tar -C /tmp/img -cf /tmp/img.tar . && $B import /tmp/img.tar busybox >/dev/null || return 1
    mem=$($B run --rm --network none --memory 64m busybox cat /sys/fs/cgroup/memory.max)
    echo "berth run --memory 64m: memory.max inside = $mem"
    [ "$mem" = 67108864 ] || return 1
    pids=$($B run --rm --network none --pids-limit 20 busybox cat /sys/fs/cgroup/pids.max)
    echo "berth run --pids-limit 20: pids.max inside = $pids"
    [ "$pids" = 20 ] || return 1
    $B run --rm --network none --pids-limit 5 busybox sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait' 2>/tmp/fork.err
    echo "berth run --pids-limit 5 with 8 children: $(grep -c "can't fork" /tmp/fork.err) forks refused"
    grep -q "can't fork" /tmp/fork.err || return 1
    code=0
    $B run --name oom --network none --memory 16m --memory-swap 16m busybox sh -c 'tail /dev/zero' || code=$?
    oom=$($B inspect --format '{{.State.OOMKilled}}' oom)
    echo "berth run --memory 16m of a growing process: exit $code, OOMKilled $oom"
    $B rm oom >/dev/null
    [ "$code" = 137 ] && [ "$oom" = true ] || return 1
    left=$(ls -d /sys/fs/cgroup/berth* 2>/dev/null | wc -l)
    echo "berth cgroups left under /sys/fs/cgroup: $left"
    [ "$left" = 0 ] || return 1
    network_check
}
# The default bridge on cgroup v2: a published port answers the guest, and a container reaches a
# server on the guest's side of the bridge.
network_check() {
    B="/lane/berth --root /tmp/berth --runroot /run/berth"
    $B run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /www >/dev/null || return 1
    got=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        got=$(wget -qO- http://127.0.0.1:8080/ 2>/dev/null) && break
        sleep 0.5
    done
    echo "berth run -p 8080:80: the guest's wget of 127.0.0.1:8080 got: $got"
    [ "$got" = "from the container" ] || return 1
    gw=$($B inspect --format '{{.NetworkSettings.Gateway}}' web)
    mkdir -p /tmp/hostwww && echo "from the guest" >/tmp/hostwww/index.html
    httpd -p "$gw:8081" -h /tmp/hostwww
    got=$($B run --rm busybox sh -c "wget -qO- http://$gw:8081/; exit \$?")
    echo "a container's wget of the guest's side ($gw:8081) got: $got"
    killall httpd 2>/dev/null
    [ "$got" = "from the guest" ] || return 1
    $B rm -f web >/dev/null
    veths=$(ip -o link | grep -c bveth)
    echo "berth veths left: $veths"
    [ "$veths" = 0 ]
}
# Rootless limits with a delegated cgroup, as systemd's Delegate=yes gives a user: a cgroup of
# theirs (the directory, its cgroup.procs, cgroup.subtree_control and cgroup.threads chowned to
# them, memory and pids enabled below it) with their shell in a leaf under it. The user then
# runs berth-runtime rootless (a spec from `spec --rootless`, their own id mapped alone) with a
# cgroupsPath under the delegated cgroup: memory.max is written there, and a process growing
# past it is OOM-killed (exit 137), not swapped out. Then rootless `berth run -m 32m`, whose
# container's cgroup goes under the same delegated cgroup.
rootless_cgroup_check() {
    R=/lane/berth-runtime
    D=/sys/fs/cgroup/lane-user
    mkdir -p /etc /tmp/lane/bundle
    [ -f /etc/passwd ] || echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
    [ -f /etc/group ] || echo 'root:x:0:' >/etc/group
    echo 'lane:x:1000:1000:lane:/tmp/lane:/bin/sh' >>/etc/passwd
    echo 'lane:x:1000:' >>/etc/group
    cp -a /tmp/img /tmp/lane/bundle/rootfs || return 1
    echo '+memory +pids' >/sys/fs/cgroup/cgroup.subtree_control || return 1
    mkdir "$D" "$D/shell" || return 1
    echo '+memory +pids' >"$D/cgroup.subtree_control" || return 1
    chown 1000:1000 "$D" "$D/cgroup.procs" "$D/cgroup.subtree_control" "$D/cgroup.threads" \
        "$D/shell" "$D/shell/cgroup.procs" || return 1
    chown -R 1000:1000 /tmp/lane
    # As the user, from the leaf: the runtime moves its init into a sibling, which the common
    # ancestor's chowned cgroup.procs allows.
    as_lane() { sh -c 'echo $$ >/sys/fs/cgroup/lane-user/shell/cgroup.procs && exec su -s /bin/sh lane -c "$0"' "$1"; }
    as_lane "cd /tmp/lane/bundle && $R spec --rootless" || return 1
    # The spec's process and linux sections made to run ARGS with a 32 MiB limit (no swap).
    limited_spec() {
        awk -v args="$1" '
            /^\t\t"terminal": true,$/ { sub(/true/, "false") }
            /^\t\t\t"sh"$/ { print "\t\t\t" args; next }
            { print }
            /^\t"linux": \{$/ {
                print "\t\t\"cgroupsPath\": \"/lane-user/c1\","
                print "\t\t\"resources\": {\"memory\": {\"limit\": 33554432, \"swap\": 33554432}},"
            }' /tmp/lane/bundle/config.json.orig >/tmp/lane/bundle/config.json
        chown 1000:1000 /tmp/lane/bundle/config.json
    }
    mv /tmp/lane/bundle/config.json /tmp/lane/bundle/config.json.orig
    limited_spec '"sleep", "30"'
    as_lane "$R --root /tmp/lane/state create -b /tmp/lane/bundle c1" || return 1
    max=$(cat "$D/c1/memory.max" 2>/dev/null)
    owner=$(stat -c %u "$D/c1")
    echo "rootless berth-runtime create with a 32m limit in a delegated cgroup: memory.max = $max (cgroup owned by uid $owner)"
    as_lane "$R --root /tmp/lane/state delete -f c1"
    [ "$max" = 33554432 ] && [ "$owner" = 1000 ] || return 1
    [ ! -d "$D/c1" ] || { echo "the container's cgroup is left"; return 1; }
    limited_spec '"sh", "-c", "tail /dev/zero"'
    code=0
    as_lane "$R --root /tmp/lane/state run -b /tmp/lane/bundle c2" || code=$?
    echo "rootless berth-runtime run of a growing process under the 32m limit: exit $code"
    [ "$code" = 137 ] || return 1
    # The engine as the same user (one id: no /etc/subuid here): `berth run -m 32m` puts its
    # container's cgroup beside the user's shell, under the delegated cgroup.
    as_lane "/lane/berth import /tmp/img.tar busybox >/dev/null" || return 1
    mem=$(as_lane "/lane/berth run --rm --network none -m 32m busybox cat /sys/fs/cgroup/memory.max")
    echo "rootless berth run -m 32m under the delegated cgroup: memory.max inside = $mem"
    [ "$mem" = 33554432 ] || return 1
    as_lane "/lane/berth system migrate" || return 1
    left=$(find "$D" -mindepth 1 -maxdepth 1 -type d | grep -cv '/shell$')
    echo "rootless cgroups left under $D: $left"
    [ "$left" = 0 ]
}
echo "=== berth (engine) on cgroup v2" >&3
if [ -x /lane/berth ]; then
    engine_check >&3 2>&1 || failed="$failed berth-engine"
fi
echo "=== rootless berth-runtime with a delegated cgroup" >&3
if [ -x /lane/berth ]; then
    rootless_cgroup_check >&3 2>&1 || failed="$failed rootless-cgroup"
fi
if [ -n "$failed" ]; then
    echo "v2-lane guest: FAILED:$failed" >&3
    status=1
else
    echo "v2-lane guest: all test binaries passed" >&3
    status=0
fi
exec 3>&-
echo "$status" >/dev/ttyS2
sync
poweroff -f
