#!/usr/bin/env bash
# berth-runtime vs runc in one hyperfine run: `run` of /bin/true, a create+start+delete
# cycle, the kernel floor (unshare + exec), and peak RSS. Run as root.
# Env: BERTH_RUNTIME (default target/release/berth-runtime), RUNC (default runc on PATH), RUNS (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
# A static binary (no dynamic loader at every start: ~0.5 ms here), as berth-runtime ships.
host=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "${BERTH_RUNTIME:-}" ]; then
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release -p berth-runtime --target "$host"
fi
berth=${BERTH_RUNTIME:-$PWD/target/$host/release/berth-runtime}
runc=${RUNC:-$(command -v runc)}
runs=${RUNS:-50}
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
# State roots and the bundle live on a tmpfs, as /run does on a normal host (here / is an ext4
# without a journal whose file creation costs 0.3-0.5 ms after churn, for both runtimes alike).
mount -t tmpfs -o size=256m berth-bench "$work"
cleanup() {
    for rt in "$berth" "$runc"; do
        "$rt" --root "$work/state-$(basename "$rt")" delete -f berth-bench-ctr >/dev/null 2>&1 || true
    done
    umount "$work" 2>/dev/null || umount -l "$work"
    rmdir "$work"
    rmdir /sys/fs/cgroup/*/berth-bench-ctr 2>/dev/null || true
}
trap cleanup EXIT
# No cgroupsPath, as in `runc spec`'s config: both runtimes use /<id> under each hierarchy.
scripts/make-bundle.sh "$work/bundle" /bin/true >/dev/null

cmds=()
names=()
for rt in "$berth" "$runc"; do
    name=$(basename "$rt")
    root="$work/state-$name"
    base="$rt --root $root"
    names+=("$name run" "$name create+start+delete")
    cmds+=("$base run --bundle $work/bundle berth-bench-ctr"
           "$base create --bundle $work/bundle berth-bench-ctr && $base start berth-bench-ctr && $base delete -f berth-bench-ctr")
done
prepare=""
for rt in "$berth" "$runc"; do
    prepare+="$rt --root $work/state-$(basename "$rt") delete -f berth-bench-ctr >/dev/null 2>&1; "
done
prepare+="true"

args=(--warmup 3 --runs "$runs" --prepare "$prepare" --export-markdown "$work/times.md" --export-json "$work/times.json")
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
args+=(-n "floor: unshare" "unshare --pid --fork --mount --uts --ipc --net true")
hyperfine "${args[@]}"

rss() { # peak RSS in KiB over 5 runs of `run`
    local rt=$1 best=0 kb
    for _ in 1 2 3 4 5; do
        "$rt" --root "$work/state-$(basename "$rt")" delete -f berth-bench-ctr >/dev/null 2>&1 || true
        kb=$( { /usr/bin/time -f '%M' "$rt" --root "$work/state-$(basename "$rt")" run --bundle "$work/bundle" berth-bench-ctr >/dev/null; } 2>&1 | tail -1)
        [ "$kb" -gt "$best" ] && best=$kb
    done
    echo "$best"
}
echo
echo "## Times"
cat "$work/times.md"
echo
echo "| Command | Median [ms] |"
echo "|:---|---:|"
jq -r '.results[] | "| `\(.command)` | \(.median * 10000 | round / 10) |"' "$work/times.json"
echo
echo "## Peak RSS (\`/usr/bin/time -v\` max resident set, \`run\` of /bin/true, worst of 5)"
echo "| Runtime | Peak RSS |"
echo "|:---|---:|"
for rt in "$berth" "$runc"; do
    kb=$(rss "$rt")
    echo "| $(basename "$rt") | $((kb / 1024)).$(( (kb % 1024) * 10 / 1024 )) MiB |"
done
