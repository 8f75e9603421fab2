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
