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

cat > "$work/prepare.sh" <<EOF
for rt in $berth $runc; do "\$rt" --root "$work/state-\$(basename "\$rt")" delete -f berth-bench-ctr >/dev/null 2>&1; done
true
EOF
common=(--warmup 5 --runs "$runs" --prepare "sh $work/prepare.sh")

# Single commands without a shell (-N): these take a few milliseconds, below what hyperfine can
# correct a shell's start-up for (it says so and recommends -N); the floor is measured alike.
run_args=(-N "${common[@]}" --export-json "$work/run.json" --export-markdown "$work/run.md")
# The three-command cycle needs a shell; hyperfine subtracts the shell's start-up for both alike.
cycle_args=("${common[@]}" --export-json "$work/cycle.json" --export-markdown "$work/cycle.md")
for rt in "$berth" "$runc"; do
    name=$(basename "$rt")
    base="$rt --root $work/state-$name"
    run_args+=(-n "$name run" "$base run --bundle $work/bundle berth-bench-ctr")
    cycle_args+=(-n "$name create+start+delete"
        "$base create --bundle $work/bundle berth-bench-ctr && $base start berth-bench-ctr && $base delete -f berth-bench-ctr")
done
run_args+=(-n "floor: unshare" "unshare --pid --fork --mount --uts --ipc --net true")
hyperfine "${run_args[@]}"
hyperfine "${cycle_args[@]}"

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
cat "$work/run.md"
echo
cat "$work/cycle.md"
echo
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median * 1000' "$work/$1.json"; }
b=$(basename "$berth"); r=$(basename "$runc")
br=$(median run "$b run"); rr=$(median run "$r run"); fl=$(median run "floor: unshare")
bc=$(median cycle "$b create+start+delete"); rc=$(median cycle "$r create+start+delete")
echo "| Median | $b | $r | $r / $b |"
echo "|:---|---:|---:|---:|"
awk -v b="$br" -v r="$rr" 'BEGIN { printf "| run | %.2f ms | %.2f ms | %.1fx |\n", b, r, r / b }'
awk -v b="$bc" -v r="$rc" 'BEGIN { printf "| create+start+delete | %.2f ms | %.2f ms | %.1fx |\n", b, r, r / b }'
awk -v b="$br" -v f="$fl" -v n="$b" 'BEGIN { printf "| floor: unshare | %.2f ms | | %s run is %.2fx the floor |\n", f, n, b / f }'
echo
echo "## Peak RSS (\`/usr/bin/time -v\` max resident set, \`run\` of /bin/true, worst of 5)"
echo "| Runtime | Peak RSS |"
echo "|:---|---:|"
for rt in "$berth" "$runc"; do
    kb=$(rss "$rt")
    echo "| $(basename "$rt") | $((kb / 1024)).$(( (kb % 1024) * 10 / 1024 )) MiB |"
done
