#!/usr/bin/env bash
# Makes an OCI bundle at DIR: a busybox rootfs (from Debian's busybox-static) and a
# config.json close to `runc spec` with terminal off. Usage: make-bundle.sh DIR [CMD ARGS...]
# Env: BUNDLE_MEMORY_LIMIT (bytes, optional), BUNDLE_CGROUPS_PATH (optional).
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR [CMD ARGS...]}
shift
[ $# -gt 0 ] || set -- sh
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-bundle: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
command -v jq >/dev/null || { echo "make-bundle: jq missing (apt-get install jq)" >&2; exit 1; }

rootfs="$dir/rootfs"
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,run,var}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$rootfs/etc/group"

args=$(for a in "$@"; do jq -n --arg a "$a" '$a'; done | jq -s -c .)
jq -n --argjson args "$args" \
      --arg cgpath "${BUNDLE_CGROUPS_PATH:-}" \
      --arg memlimit "${BUNDLE_MEMORY_LIMIT:-}" '
{
  ociVersion: "1.0.2-dev",
  process: {
    terminal: false, user: {uid: 0, gid: 0}, args: $args,
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    cwd: "/",
    capabilities: ({bounding: ., effective: ., permitted: ., ambient: .}
                   | map_values(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])),
    rlimits: [{type: "RLIMIT_NOFILE", hard: 1024, soft: 1024}],
    noNewPrivileges: true
  },
  root: {path: "rootfs", readonly: true},
  hostname: "berth",
  mounts: [
    {destination: "/proc", type: "proc", source: "proc"},
    {destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]},
    {destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]},
    {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  linux: ({
    resources: ({devices: [{allow: false, access: "rwm"}]}
                + (if $memlimit != "" then {memory: {limit: ($memlimit | tonumber)}} else {} end)),
    namespaces: [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}, {type: "cgroup"}],
    maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  } + (if $cgpath != "" then {cgroupsPath: $cgpath} else {} end))
}' > "$dir/config.json"
echo "bundle ready: $dir"
