#!/bin/sh
# Builds a Debian 12 (bookworm) root directory for ruml: debootstrap's
# minbase plus sysvinit-core, set up to boot in ruml with `root=DIR`:
#   - root logs in without a password (an empty field in /etc/shadow);
#   - a getty on the console (/dev/console, con0) and on /dev/tty1 (con1=,
#     e.g. con1=pts); Debian's gettys on tty2..tty6 are commented out (give
#     con2=.. con6= and uncomment them to have them);
#   - the hostname is ruml-debian.
# Usage: tests/scripts/debootstrap-root.sh DIR [SUITE]
# Needs root (debootstrap's chroot and device nodes) and Debian's package
# mirror (the one apt uses here, or DEBOOTSTRAP_MIRROR). Takes a minute or two; about 200 MB.
set -eu

dir=${1:?usage: $0 DIR [SUITE]}
suite=${2:-bookworm}

if [ "$(id -u)" != 0 ]; then
    echo "$0: debootstrap needs root" >&2
    exit 2
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "$0: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 2
fi

# The mirror apt itself uses on this machine (DEBOOTSTRAP_MIRROR overrides),
# and apt's proxy if it has one: debootstrap reads neither on its own.
mirror=${DEBOOTSTRAP_MIRROR:-$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } |
    grep -v -e security -e updates | head -n 1)}
if [ -z "${http_proxy:-}" ]; then
    eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
    [ -n "${http_proxy:-}" ] && export http_proxy
fi

tmp="$dir.tmp"
rm -rf "$tmp"
debootstrap --variant=minbase --include=sysvinit-core "$suite" "$tmp" ${mirror:+"$mirror"}

# No password for root.
sed -i 's/^root:[^:]*:/root::/' "$tmp/etc/shadow"
# A getty on the console; tty1 stays (con1=); tty2..6 need con2=..con6=.
sed -i -e 's/^\([2-6]:\)/#\1/' "$tmp/etc/inittab"
echo 'co:2345:respawn:/sbin/getty --noclear 38400 console linux' >>"$tmp/etc/inittab"
echo ruml-debian >"$tmp/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\truml-debian\n' >"$tmp/etc/hosts"
# debootstrap's apt caches are of no use inside.
rm -rf "$tmp/var/cache/apt/archives/"*.deb

rm -rf "$dir"
mv "$tmp" "$dir"
echo "$0: $dir is ready: ruml root=$dir con1=pts"
