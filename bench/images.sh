#!/usr/bin/env bash
# Cold and warm pulls from a local registry: berth against podman, skopeo+umoci and a naive
# `curl | gzip -dc | tar -x`, all in one run, on a journaled ext4 loop mount (this VM's root ext4
# has no journal and creates files many times slower after churn).
#
#   bench/images.sh            # RUNS=5 by default
# Needs (as root): docker-registry skopeo umoci podman hyperfine debootstrap curl python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
PORT=${PORT:-5077}
CACHE=/var/cache/berth-bench
WORK=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
MNT=$WORK/mnt
REG=127.0.0.1:$PORT

cleanup() {
    set +e
    [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    podman --root "$MNT/podman" --runroot "$MNT/podman-run" --storage-driver overlay system reset -f >/dev/null 2>&1
    grep -F " $MNT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    umount "$MNT" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building berth (release)"
cargo build --release -p berth -q
BERTH=$PWD/target/release/berth

echo "== journaled ext4 loop mount"
truncate -s 6G "$WORK/disk.img"
mkfs.ext4 -q -F "$WORK/disk.img"
mkdir -p "$MNT"
mount -o loop "$WORK/disk.img" "$MNT"

echo "== registry on $REG"
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}, delete: {enabled: true}}
http: {addr: $REG}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

# A docker-archive of the given layer tarballs, pushed with skopeo (which gzips the layers).
push_layers() { # name layer.tar...
    local name=$1; shift
    local dir=$WORK/archive-$name
    mkdir -p "$dir"
    python3 - "$dir" "$@" <<'PY'
import hashlib, json, os, shutil, sys
d, layers = sys.argv[1], sys.argv[2:]
names, diffs = [], []
for i, l in enumerate(layers):
    h = hashlib.sha256()
    with open(l, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    n = f"layer{i}.tar"
    shutil.copy(l, os.path.join(d, n))
    names.append(n); diffs.append("sha256:" + h.hexdigest())
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
open(os.path.join(d, "config.json"), "wb").write(cfg)
json.dump([{"Config": "config.json", "RepoTags": [], "Layers": names}], open(os.path.join(d, "manifest.json"), "w"))
PY
    tar -C "$dir" -cf "$dir.tar" .
    skopeo copy -q --dest-tls-verify=false "docker-archive:$dir.tar" "docker://$REG/$name:bench"
}

echo "== image 1: Debian minbase in three layers"
if [ ! -f "$CACHE/debian-minbase.tar" ]; then
    mkdir -p "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$CACHE/rootfs" -cf "$CACHE/debian-minbase.tar" .
fi
mkdir -p "$WORK/deb"
tar -C "$WORK/deb" -xf "$CACHE/debian-minbase.tar"
rm -f "$WORK"/deb/var/cache/apt/archives/*.deb  # debootstrap keeps the packages it installed
tar -C "$WORK/deb" -cf "$WORK/deb-l1.tar" ./usr/lib ./usr/share
tar -C "$WORK/deb" -cf "$WORK/deb-l2.tar" --exclude ./usr/lib --exclude ./usr/share ./usr ./var
tar -C "$WORK/deb" -cf "$WORK/deb-l3.tar" --exclude ./usr --exclude ./var .
push_layers debian "$WORK/deb-l1.tar" "$WORK/deb-l2.tar" "$WORK/deb-l3.tar"

echo "== image 2: a few large files and 20,000 small ones"
mkdir -p "$WORK/big/data" "$WORK/big/small"
python3 - "$WORK/big" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
for i in range(3):  # large, half compressible
    with open(f"{root}/data/blob{i}", "wb") as f:
        for _ in range(40):
            f.write(rnd.randbytes(512 * 1024)); f.write(b"\0" * 512 * 1024)
for i in range(20000):
    d = f"{root}/small/{i // 500:03d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}.txt", "wb") as f:
        f.write((f"file {i} " * rnd.randint(8, 200)).encode())
PY
tar -C "$WORK/big" -cf "$WORK/big-l1.tar" ./data
tar -C "$WORK/big" -cf "$WORK/big-l2.tar" ./small
push_layers big "$WORK/big-l1.tar" "$WORK/big-l2.tar"
rm -rf "$WORK/deb" "$WORK/big"
for n in debian big; do
    size=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$REG/v2/$n/manifests/bench" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]))')
    echo "   $n: $((size / 1048576)) MiB compressed"
done

naive() { # name dest
    local m
    m=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$REG/v2/$1/manifests/bench")
    mkdir -p "$2"
    for d in $(echo "$m" | python3 -c 'import json,sys; [print(l["digest"]) for l in json.load(sys.stdin)["layers"]]'); do
        curl -s "http://$REG/v2/$1/blobs/$d" | gzip -dc | tar -x -C "$2"
    done
}
export -f naive
export REG MNT BERTH
P="podman --root $MNT/podman --runroot $MNT/podman-run --storage-driver overlay"

for n in debian big; do
    echo "== cold pull: $n"
    hyperfine -N --runs "$RUNS" --export-markdown "$WORK/$n.md" \
        --prepare "sh -c 'rm -rf $MNT/berth; sync'" -n berth "$BERTH --root $MNT/berth pull -q $REG/$n:bench" \
        --prepare "sh -c '$P system reset -f >/dev/null 2>&1; sync'" -n podman "$P pull -q --tls-verify=false $REG/$n:bench" \
        --prepare "sh -c 'rm -rf $MNT/oci $MNT/bundle; sync'" -n skopeo+umoci "sh -c 'skopeo copy -q --src-tls-verify=false docker://$REG/$n:bench oci:$MNT/oci:bench && umoci unpack --image $MNT/oci:bench $MNT/bundle >/dev/null'" \
        --prepare "sh -c 'rm -rf $MNT/naive; sync'" -n 'curl|gzip|tar' "bash -c 'naive $n $MNT/naive'"
    cat "$WORK/$n.md"
done

echo "== warm pull (already present): debian"
$BERTH --root "$MNT/berth" pull -q "$REG/debian:bench" >/dev/null
$P pull -q --tls-verify=false "$REG/debian:bench" >/dev/null
hyperfine -N --warmup 3 --runs $((RUNS * 6)) \
    -n berth "$BERTH --root $MNT/berth pull -q $REG/debian:bench" \
    -n podman "$P pull -q --tls-verify=false $REG/debian:bench"
