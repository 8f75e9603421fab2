#!/usr/bin/env bash
# `build` of a 3-stage, 23-instruction Dockerfile on busybox and a local Debian minbase image:
# berth against `buildah bud --layers` (Debian's buildah) and docker's builder, in one hyperfine
# run each for a cold build (--no-cache), a fully cached rebuild, and a rebuild after a one-file
# change; then berth's peak RSS during a cold build. RUN steps use --network none in all three.
#
#   bench/build.sh            # RUNS=10 by default
# Needs (as root): busybox-static buildah docker.io hyperfine debootstrap (the Debian image is
# made once into /var/cache/berth-bench, as bench/images.sh makes it).
# Targets (issue 14): cached rebuild <= 50 ms and >= 10x faster than buildah; cold >= 3x faster.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_network bbb
RUNS=${RUNS:-10}
CACHE=/var/cache/berth-bench
WORK=$(mktemp -d /var/tmp/berth-build-bench.XXXXXX)

cleanup() {
    set +e
    [ -n "${DOCKERD_PID:-}" ] && kill "$DOCKERD_PID" && wait "$DOCKERD_PID" 2>/dev/null
    buildah $BU rm -a >/dev/null 2>&1
    buildah $BU rmi -a -f >/dev/null 2>&1
    grep -F " $WORK" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$WORK"
    bench_network_cleanup
}
trap cleanup EXIT

cargo build --release -p berth -q
BERTH=$PWD/target/release/berth
BR="--root $WORK/berth --runroot $WORK/run/berth"
BU="--root $WORK/buildah --runroot $WORK/run/buildah --storage-driver overlay"

echo "== base images: busybox and Debian minbase, the same bytes for all three"
busybox_tar "$WORK/rootfs" "$WORK/busybox.tar" sh cat echo ls mkdir printf seq true
if [ ! -f "$CACHE/debian-minbase.tar" ]; then
    mkdir -p "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$CACHE/rootfs" -cf "$CACHE/debian-minbase.tar" .
fi
$BERTH $BR import "$WORK/busybox.tar" bench-busybox:latest >/dev/null
$BERTH $BR import "$CACHE/debian-minbase.tar" bench-debian:latest >/dev/null
$BERTH $BR save -o "$WORK/bases.tar" bench-busybox:latest bench-debian:latest
buildah $BU pull -q "docker-archive:$WORK/bases.tar:docker.io/library/bench-busybox:latest" >/dev/null
buildah $BU pull -q "docker-archive:$WORK/bases.tar:docker.io/library/bench-debian:latest" >/dev/null

DOCKER=""
if command -v dockerd >/dev/null; then
    dockerd --data-root "$WORK/docker" --exec-root "$WORK/run/docker" --pidfile "$WORK/dockerd.pid" \
        -H "unix://$WORK/docker.sock" --bridge none --iptables=false >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 100); do docker -H "unix://$WORK/docker.sock" info >/dev/null 2>&1 && break; sleep 0.2; done
    docker -H "unix://$WORK/docker.sock" load -q -i "$WORK/bases.tar" >/dev/null
    # The 28.x CLI without buildx: the daemon's builder (DOCKER_BUILDKIT=0), its own cache.
    DOCKER="env DOCKER_BUILDKIT=0 docker -H unix://$WORK/docker.sock"
fi

echo "== the context: 3 stages, 23 instructions"
CTX=$WORK/ctx
mkdir -p "$CTX/src" "$CTX/config"
for i in $(seq 1 20); do echo "int f$i(void) { return $i; }" > "$CTX/src/f$i.c"; done
echo 'listen 8080' > "$CTX/config/app.conf"
echo 'libfoo 1.0' > "$CTX/deps.txt"
cat > "$CTX/Dockerfile" <<'EOF'
FROM bench-debian AS deps
RUN mkdir -p /opt/deps && echo one > /opt/deps/a
RUN for i in $(seq 1 200); do echo "dep $i"; done > /opt/deps/list
ENV DEPS=/opt/deps
WORKDIR /opt/deps
COPY deps.txt .
RUN cat deps.txt >> a

FROM bench-busybox AS build
ARG VERSION=1
WORKDIR /src
COPY src/ ./
RUN cat *.c > /app.bin
RUN echo "version $VERSION" >> /app.bin
LABEL stage=build

FROM bench-busybox
COPY --from=deps /opt/deps/a /deps-a
COPY --from=build /app.bin /app/app.bin
COPY config/ /etc/app/
ENV APP=/app/app.bin
EXPOSE 8080
USER 1000
WORKDIR /app
CMD ["cat", "/app/app.bin"]
EOF

B="$BERTH $BR build -q --network none -t bench:1 $CTX"
U="buildah $BU bud --layers -q --network none -t bench:1 $CTX"
D="${DOCKER:+$DOCKER build -q --network none -t bench:1 $CTX}"
$B >/dev/null; $U >/dev/null; [ -n "$D" ] && $D >/dev/null
echo "check: $($BERTH $BR run --rm --network none bench:1 | tail -1)"

CMDS=(-n berth "$B" -n buildah "$U")
[ -n "$D" ] && CMDS+=(-n docker "$D")
nocache() { sed 's/ build -q / build -q --no-cache /; s/ bud --layers -q / bud --layers --no-cache -q /'; }
COLD=(-n berth "$(echo "$B" | nocache)" -n buildah "$(echo "$U" | nocache)")
[ -n "$D" ] && COLD+=(-n docker "$(echo "$D" | nocache)")

echo "== cold build (--no-cache)"
hyperfine -N --style basic --runs "$RUNS" --warmup 1 --export-markdown "$WORK/cold.md" "${COLD[@]}"
echo "== fully cached rebuild"
hyperfine -N --style basic --runs "$((RUNS * 3))" --warmup 2 --export-markdown "$WORK/warm.md" "${CMDS[@]}"
echo "== rebuild after a one-file change (src/f1.c)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-markdown "$WORK/change.md" \
    --prepare "echo \"// \$RANDOM\$RANDOM\" >> $CTX/src/f1.c" "${CMDS[@]}"

echo "== berth's peak RSS in a cold build"
/usr/bin/time -f "peak RSS %M KiB, %e s" $BERTH $BR build -q --no-cache --network none -t bench:1 "$CTX" >/dev/null

for f in cold warm change; do echo "-- $f"; cat "$WORK/$f.md"; done
