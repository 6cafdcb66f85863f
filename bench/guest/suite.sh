#!/bin/sh
# Runs inside every system compared, with the bench root as "/" (busybox sh).
#   suite.sh RUNS BUILD_RUNS QUICK MOUNT_TMP [all|disk]
# Prints "BENCH name value unit" lines (parsed by bench/bench.py), RUNS times
# the microbenchmarks, BUILD_RUNS times the build of Lua from a clean tree.
RUNS=${1:-1}
BUILD_RUNS=${2:-1}
QUICK=${3:-0}
MOUNT_TMP=${4:-0}
ONLY=${5:-all}
# Only the disk rows (bench.py --only-disk): no microbenchmarks, no build.
if [ "$ONLY" = disk ]; then
    RUNS=0
    BUILD_RUNS=0
fi
export PATH=/usr/bin:/bin
export LC_ALL=C

echo "SUITE start"

# A writable directory for the tmpfs and build benchmarks. Systems that are
# kernels of their own (UML, gVisor, ruml) get a tmpfs of their own on /tmp;
# native and proot see the tmpfs the driver mounted on the root's /tmp.
MOUNT_NOTE=
if [ "$MOUNT_TMP" = 1 ]; then
    if ! err=$(mount -t tmpfs -o size=1g tmpfs /tmp 2>&1); then
        MOUNT_NOTE="; mount -t tmpfs on /tmp failed: $(echo "$err" | tail -n 1 | head -c 100)"
        echo "SUITE note: mount -t tmpfs /tmp failed: $err"
    fi
fi
W=
for d in /tmp /dev/shm; do
    if mkdir -p "$d/ruml-bench.$$" 2>/dev/null && : > "$d/ruml-bench.$$/probe" 2>/dev/null; then
        W=$d/ruml-bench.$$
        break
    fi
done
if [ -n "$W" ]; then
    echo "SUITE writable $W"
    export TMPDIR=$W
else
    export BENCH_NA_REASON="no writable directory: /tmp and /dev/shm are not writable$MOUNT_NOTE"
    echo "SUITE note: $BENCH_NA_REASON"
fi

Q=
[ "$QUICK" = 1 ] && Q=-q
i=0
while [ $i -lt "$RUNS" ]; do
    echo "SUITE run $i"
    if [ -n "$W" ]; then
        /bench/micro $Q all "$W"
    else
        /bench/micro $Q all
    fi
    i=$((i + 1))
done

TARGET=all
[ "$QUICK" = 1 ] && TARGET=quick
i=0
while [ $i -lt "$BUILD_RUNS" ]; do
    if [ -z "$W" ]; then
        echo "BENCH build n/a $BENCH_NA_REASON"
        break
    fi
    rm -rf "$W/lua"
    if ! cp -r /bench/lua "$W/lua" 2>"$W/cp.err"; then
        echo "BENCH build n/a copying the source failed: $(head -c 200 "$W/cp.err" | tr '\n' ' ')"
        break
    fi
    out=$(cd "$W/lua" && /bench/micro time make -s -j2 $TARGET 2>&1)
    t=$(echo "$out" | sed -n 's/^TIME //p')
    if [ -n "$t" ]; then
        echo "BENCH build $t s"
    else
        echo "$out" | tail -n 15 | sed 's/^/BUILDLOG /'
        echo "BENCH build n/a make failed: $(echo "$out" | grep -v -e '^TIME' -e '^micro time:' -e '^make: \*\*\*' | tail -n 1 | head -c 200)"
        break
    fi
    i=$((i + 1))
done
# The disk benchmark: ext4 on the second ubd disk where the system has one
# (ruml and UML get a fresh image from bench.py as /dev/ubdb), else a
# directory on the host's own filesystem (/bench-disk), else the tmpfs.
D=
DM=
if [ -b /dev/ubdb ] && [ -n "$W" ] && mkdir -p "$W/disk"; then
    if err=$(mount -t ext4 /dev/ubdb "$W/disk" 2>&1); then
        D=$W/disk/d
        DM=$W/disk
        mkdir -p "$D"
        echo "SUITE note: disk rows on ext4 on /dev/ubdb"
    else
        echo "SUITE note: mount -t ext4 /dev/ubdb failed: $(echo "$err" | tail -n 1 | head -c 100)"
    fi
fi
if [ -z "$D" ] && mkdir -p "/bench-disk/d.$$" 2>/dev/null && : > "/bench-disk/d.$$/probe" 2>/dev/null; then
    D=/bench-disk/d.$$
fi
if [ -z "$D" ] && [ -n "$W" ]; then
    D=$W/d
    mkdir -p "$D"
    echo "SUITE note: disk rows on the tmpfs (no disk and /bench-disk is not writable)"
fi
/bench/micro $Q disk "$D"
# Untar of a source tree onto the same disk (bench.py builds the tarball:
# Lua's sources copied many times over), then sync; seconds.
TAR=/bench/src.tar
[ "$QUICK" = 1 ] && TAR=/bench/src-quick.tar
if [ -z "$D" ]; then
    echo "BENCH disk_untar n/a no disk directory"
elif [ ! -f "$TAR" ]; then
    echo "BENCH disk_untar n/a no $TAR"
else
    rm -rf "$D/untar"
    mkdir -p "$D/untar"
    out=$(/bench/micro time sh -c "tar -xf $TAR -C $D/untar && sync" 2>&1)
    t=$(echo "$out" | sed -n 's/^TIME //p')
    if [ -n "$t" ]; then
        echo "BENCH disk_untar $t s"
    else
        echo "BENCH disk_untar n/a tar failed: $(echo "$out" | grep -v '^TIME' | tail -n 1 | head -c 200)"
    fi
    rm -rf "$D/untar"
fi
case "$D" in /bench-disk/*) rm -rf "$D" ;; esac
[ -n "$DM" ] && umount "$DM"
[ -n "$W" ] && rm -rf "$W"
echo "SUITE done"
