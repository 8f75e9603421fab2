#!/usr/bin/env bash
# `run --rm` of an image whose config holds 100,000 environment entries (a hostile or careless
# image): berth merges and passes them in linear time. Timed against the same image with one
# entry, and against podman (--runtime runc) on the same image, in one hyperfine run.
#
#   bench/env.sh              # RUNS=10 ENTRIES=100000 by default
# Needs (as root): busybox-static podman runc hyperfine python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_network beb
RUNS=${RUNS:-10}
ENTRIES=${ENTRIES:-100000}
WORK=$(mktemp -d /var/tmp/berth-env-bench.XXXXXX)
BR="--root $WORK/berth --runroot $WORK/run/berth"
PR="--root $WORK/podman --runroot $WORK/run/podman --runtime runc --storage-driver vfs --cgroup-manager cgroupfs --events-backend none"

cleanup() {
    set +e
    [ -x "${BERTH:-}" ] && $BERTH $BR rm -f $($BERTH $BR ps -aq 2>/dev/null) >/dev/null 2>&1
    podman $PR system reset -f >/dev/null 2>&1
    grep -F " $WORK" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$WORK"
    bench_network_cleanup
}
trap cleanup EXIT

cargo build --release -p berth -q
BERTH=$PWD/target/release/berth

# An OCI layout with one busybox layer and a config of ENTRIES environment entries (written
# here, independently of berth), as a tar archive `berth load` and `podman load` read.
python3 - "$WORK" "$ENTRIES" <<'EOF'
import hashlib, io, json, os, sys, tarfile
work, n = sys.argv[1], int(sys.argv[2])
def layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add("/bin/busybox", "bin/busybox")
        for a in ("sh", "true", "env", "wc"):
            i = tarfile.TarInfo("bin/" + a); i.type = tarfile.SYMTYPE; i.linkname = "busybox"
            t.addfile(i)
    return buf.getvalue()
def image(name, env):
    out = os.path.join(work, name)
    blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
    def put(b):
        d = hashlib.sha256(b).hexdigest()
        open(os.path.join(blobs, d), "wb").write(b)
        return "sha256:" + d, len(b)
    l = layer(); ld, ls = put(l)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": ["true"]},
        "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
    cd, cs = put(cfg)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode()
    md, ms = put(m)
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "localhost/" + name + ":1"}}]},
        open(os.path.join(out, "index.json"), "w"))
    open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
    with tarfile.open(out + ".tar", "w") as t:
        t.add(out, ".")
image("env1", ["PATH=/bin"])
image("envmany", ["PATH=/bin"] + ["E%d=v%d" % (i, i) for i in range(n)])
EOF

for i in env1 envmany; do
    $BERTH $BR load -q -i "$WORK/$i.tar"
    podman $PR load -q -i "$WORK/$i.tar" >/dev/null 2>&1 || echo "podman could not load $i"
done

echo "== run --rm of an image with 1 and with $ENTRIES environment entries"
# The kernel may refuse an environment this large at execve (E2BIG: the strings and pointers
# exceed a quarter of the stack limit); berth then fails with that reason and 126, as runc does.
# Either way the time is the merge and the start, so failures are timed too (-i).
if inside=$($BERTH $BR run --rm --network none localhost/envmany:1 sh -c 'env | wc -l' 2>&1); then
    echo "   entries seen inside: $inside"
else
    echo "   refused at start (status $?): $inside"
fi
hyperfine -N -i --warmup 1 --runs "$RUNS" \
    -n "berth, 1 entry" "$BERTH $BR run --rm --network none localhost/env1:1 true" \
    -n "berth, $ENTRIES entries" "$BERTH $BR run --rm --network none localhost/envmany:1 true" \
    -n "podman, $ENTRIES entries" "podman $PR run --rm --network none localhost/envmany:1 true"
