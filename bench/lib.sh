# Shared by the bench scripts (sourced, not run).

# busybox_tar DIR OUT APPLET… : a root filesystem of the host's static busybox with the named
# applets and a root passwd line, built in DIR and archived as OUT (what `import` and `load` take).
busybox_tar() {
    local dir=$1 out=$2
    shift 2
    mkdir -p "$dir/bin" "$dir/etc"
    cp /bin/busybox "$dir/bin/"
    for a in "$@"; do ln -s busybox "$dir/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
    tar -C "$dir" -cf "$out" .
}

# bench_network PREFIX: the berth commands of this bench name their bridges, veths and nftables
# table with PREFIX (not the default `berth`), so `bench_network_cleanup`, called from the bench's
# EXIT trap, removes exactly what its networks left on the host, also after a failure (the store
# itself is deleted with the bench's directory, and with it any record of them).
bench_network() {
    export BERTH_NETWORK_PREFIX=$1
}

bench_network_cleanup() {
    [ -n "${BERTH_NETWORK_PREFIX:-}" ] || return 0
    ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${BERTH_NETWORK_PREFIX}" |
        xargs -r -n1 ip link del 2>/dev/null
    nft delete table inet "$BERTH_NETWORK_PREFIX" 2>/dev/null
    return 0
}
