#!/usr/bin/env bash
# The cgroup v2 lane: boots Debian's kernel under qemu on a pure cgroup v2 hierarchy
# (cgroup_no_v1=all) and runs berth-runtime's integration tests inside, statically linked.
# The guest's test output comes back on a second serial port and its exit status on a third;
# this script prints the output and exits with the guest's status (1 if none came back).
# Kernel and images are cached under target/v2-lane, so a rerun only rebuilds what changed.
# Env: V2_LANE_TIMEOUT (seconds for the guest, default 420), V2_LANE_TESTS (test targets to run,
# space-separated; `target=ARGS` gives the test binary comma-separated arguments, a filter first),
# V2_LANE_ACCEL (tcg or kvm; default kvm only where the CPU shows vmx/svm).
# Run as root (apt-get download); needs qemu-system-x86, busybox-static, jq, xz-utils, binutils.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
lane=$target/v2-lane
mkdir -p "$lane"
t0=$(date +%s%N)
say() {
    local tenths=$((($(date +%s%N) - t0) / 100000000))
    echo "v2-lane [$((tenths / 10)).$((tenths % 10)) s]: $*"
}
die() { echo "v2-lane: $*" >&2; exit 1; }

for tool in qemu-system-x86_64 jq xz strip; do
    command -v "$tool" >/dev/null || die "$tool missing (apt-get install qemu-system-x86 jq xz-utils binutils)"
done
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"

# Every test target except those needing host tools the guest lacks: interop (podman,
# containerd, runc) and tty_proxy (script(1)). The CRI's pod lifecycle (berth-cri-tests) runs with
# Debian's containerd, shim, runc and registry copied in; its check of the docs' config reads the
# source tree, which the guest has not.
tests_default="cgroup_v2 cgroup_v2_lifecycle cgroup_v2_devices resources lifecycle lifecycle_edges \
harness namespaces exec process hooks bad_input cli security seccomp_notify console \
shared_mount_namespace cri=a_pod_lives_and_dies,--nocapture"
guest_tests=${V2_LANE_TESTS:-$tests_default}
# The engine's network check adds bridges, veths and nftables (with its NAT, conntrack and fib
# expressions), in dependency order.
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk loop overlay \
llc stp bridge veth nfnetlink crc32c_generic libcrc32c nf_tables nf_defrag_ipv4 nf_defrag_ipv6 \
nf_conntrack nf_nat nft_ct nft_nat nft_masq nft_chain_nat nft_fib nft_fib_ipv4 nft_fib_ipv6 nft_fib_inet"

# --- The kernel: the linux-image-6.1.*-amd64 package that linux-image-amd64 depends on,
# unpacked (never installed), its compressed image turned back into the ELF vmlinux so qemu
# boots it directly (PVH entry) and TCG does not spend seconds decompressing it.
kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }' || true)
kdir=$lane/kernel
if [ -s "$kdir/vmlinux" ] && [ "$(cat "$kdir/modules.list" 2>/dev/null)" = "$modules" ] &&
    { [ -z "$kernel_pkg" ] || [ "$(cat "$kdir/package")" = "$kernel_pkg" ]; }; then
    say "kernel $(cat "$kdir/package") (cached)"
else
    [ -n "$kernel_pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update)"
    say "downloading $kernel_pkg"
    rm -rf "$kdir" "$lane/kernel.tmp"
    mkdir -p "$lane/kernel.tmp/deb" "$lane/kernel.tmp/new/modules"
    (cd "$lane/kernel.tmp/deb" && apt-get download "$kernel_pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    debs=("$lane"/kernel.tmp/deb/*.deb)
    [ -f "${debs[0]}" ] || die "apt-get download $kernel_pkg failed"
    dpkg -x "${debs[0]}" "$lane/kernel.tmp/x"
    images=("$lane"/kernel.tmp/x/boot/vmlinuz-*)
    vmlinuz=${images[0]}
    # The bzImage carries the kernel as one compressed stream after the setup code: find the
    # stream's magic, decompress from there, and keep the first result that is an ELF file.
    out=$lane/kernel.tmp/new/vmlinux
    for fmt in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${fmt%%:*}
        for off in $(LC_ALL=C grep -obUaP "${fmt#*:}" "$vmlinuz" | cut -d: -f1 | head -5); do
            case $tool in
                xz) tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$out" 2>/dev/null || true ;;
                zstd) tail -c +$((off + 1)) "$vmlinuz" | zstd -dcq >"$out" 2>/dev/null || true ;;
                gzip) tail -c +$((off + 1)) "$vmlinuz" | gzip -dc >"$out" 2>/dev/null || true ;;
            esac
            [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && break 2
        done
    done
    [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "no vmlinux found in $vmlinuz"
    for m in $modules; do
        ko=$(find "$lane/kernel.tmp/x/lib/modules" -name "$m.ko" -print -quit)
        [ -n "$ko" ] || die "module $m.ko not in $kernel_pkg"
        cp "$ko" "$lane/kernel.tmp/new/modules/"
    done
    echo "$kernel_pkg" >"$lane/kernel.tmp/new/package"
    echo "$modules" >"$lane/kernel.tmp/new/modules.list"
    mv "$lane/kernel.tmp/new" "$kdir"
    rm -rf "$lane/kernel.tmp"
    say "kernel $kernel_pkg unpacked ($(du -m "$kdir/vmlinux" | cut -f1) MiB vmlinux)"
fi

# --- Static binaries: the runtime and the integration test binaries (cargo test --no-run).
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-C target-feature=+crt-static"
# Optimised a little, without debug info: under TCG an unoptimised runtime spends most of the
# guest's time in its own code (opt-level 1 halves the lane). Only the --target build is affected:
# build scripts and proc macros keep their own settings, so the host's debug build is not redone.
export CARGO_PROFILE_DEV_OPT_LEVEL=1 CARGO_PROFILE_DEV_DEBUG=0
say "building static berth-runtime and test binaries for $host"
cargo build --quiet -p berth-runtime -p berth --target "$host"
cri_lane=""
case " $guest_tests " in *" cri "* | *" cri="*) cri_lane=1 ;; esac
cargo test --quiet -p berth-runtime-tests ${cri_lane:+-p berth-cri-tests} --no-run --target "$host" \
    --message-format=json >"$lane/tests.json"
runtime_bin=$target/$host/debug/berth-runtime

# --- The initramfs: a base archive (busybox, init, modules) and a second one with the binaries,
# appended (the kernel unpacks concatenated newc archives in order).
base=$lane/base
rm -rf "$base" "$lane/payload"
mkdir -p "$base"/{bin,dev,proc,sys,newroot,root,lib/modules} "$lane/payload/lane/tests" "$lane/payload/lane/args"
cp /bin/busybox "$base/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$base/bin/$applet"
done
install -m 0755 scripts/v2-lane-init.sh "$base/init"
cp "$kdir"/modules/*.ko "$base/lib/modules/"
printf '%s\n' $modules >"$base/lib/modules/order"
(cd "$base" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc -R 0:0 >"$lane/base.cpio" 2>/dev/null)

# nft (berth loads its table through it) with the shared libraries it needs, at their host paths.
if command -v nft >/dev/null; then
    nft_bin=$(command -v nft)
    mkdir -p "$lane/payload/usr/sbin"
    cp "$nft_bin" "$lane/payload/usr/sbin/nft"
    for lib in $(ldd "$nft_bin" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$lane/payload$(dirname "$lib")"
        cp -L "$lib" "$lane/payload$lib"
    done
fi
strip --strip-debug -o "$lane/payload/lane/berth-runtime" "$runtime_bin"
strip --strip-debug -o "$lane/payload/lane/berth" "$target/$host/debug/berth"
for entry in $guest_tests; do
    t=${entry%%=*}
    [ "$t" = "$entry" ] || echo "${entry#*=}" | tr ',' ' ' >"$lane/payload/lane/args/$t"
    exe=$(jq -r --arg t "$t" 'select(.reason == "compiler-artifact" and .profile.test
        and .target.name == $t and .target.kind == ["test"]) | .executable' "$lane/tests.json" | tail -1)
    [ -n "$exe" ] && [ "$exe" != null ] || die "no test binary for target $t"
    strip --strip-debug -o "$lane/payload/lane/tests/$t" "$exe"
done
if [ -n "$cri_lane" ]; then
    # A CRI node: Debian's containerd, runc shim, runc, registry and CNI loopback, with the
    # libraries they link (the test's pod network plugin is a shell script over busybox's ip);
    # the CRI copies the host's /etc/hosts and /etc/resolv.conf into every pod.
    for b in /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/docker-registry \
        /usr/sbin/runc /usr/lib/cni/loopback; do
        [ -x "$b" ] || die "$b missing (what .ci/run installs)"
        for f in "$b" $(ldd "$b" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do
            mkdir -p "$lane/payload$(dirname "$f")"
            [ -f "$lane/payload$f" ] || cp -L "$f" "$lane/payload$f"
        done
    done
    mkdir -p "$lane/payload/etc"
    echo "127.0.0.1 localhost" >"$lane/payload/etc/hosts"
    : >"$lane/payload/etc/resolv.conf"
fi
(cd "$lane/payload" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc -R 0:0 >"$lane/payload.cpio" 2>/dev/null)
cat "$lane/base.cpio" "$lane/payload.cpio" >"$lane/initrd.cpio"
say "initramfs $(du -m "$lane/initrd.cpio" | cut -f1) MiB, tests: $guest_tests"

# --- Boot. A scratch disk for swap (memory.swap.max needs swap to mean anything).
rm -f "$lane/swap.img" "$lane"/{console,out,status}.log
truncate -s 128M "$lane/swap.img"
accel=${V2_LANE_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then accel=kvm; fi
fi
case $accel in
    kvm) accel_args=(-accel kvm -cpu host) ;;
    *) accel_args=(-accel tcg,thread=multi -cpu max) ;;
esac
limit=${V2_LANE_TIMEOUT:-420}
say "booting ($accel, timeout ${limit} s)"
qemu_status=0
timeout -k 5 "$limit" qemu-system-x86_64 "${accel_args[@]}" -smp 2 -m 1536 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$kdir/vmlinux" -initrd "$lane/initrd.cpio" \
    -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet mitigations=off" \
    -serial "file:$lane/console.log" -serial "file:$lane/out.log" -serial "file:$lane/status.log" \
    -drive "file=$lane/swap.img,if=virtio,format=raw" || qemu_status=$?

echo "----- guest test output (cgroup v2, $(cat "$kdir/package")) -----"
tr -d '\r' <"$lane/out.log"
echo "----- end of guest output -----"
status=$(tr -dc '0-9' <"$lane/status.log")
if [ "$qemu_status" = 124 ]; then
    say "the guest did not finish within ${limit} s"
fi
if [ -z "$status" ]; then
    say "no exit status from the guest (qemu exit $qemu_status); last console lines:"
    tail -n 30 "$lane/console.log" | tr -d '\r'
    exit 1
fi
say "guest exit status $status"
exit "$status"
