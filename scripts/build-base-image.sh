#!/usr/bin/env bash
# Make sure a Debian base image of SUITE (default bookworm) exists locally, without a registry.
#
#   build-base-image.sh [SUITE]
#
# Prints the name of the base image to build the lab's images from:
#   1. $NFWLAB_BASE_IMAGE if it is already present locally (bookworm only);
#   2. debian:SUITE-slim if present locally or pullable;
#   3. otherwise nfwlab/debian-base:SUITE, made here with debootstrap
#      (minbase variant) from the Debian mirror and loaded with `docker import`.
# The lab's nodes use bookworm (Suricata 7 from bookworm-backports); the firewall of Next Generation
# policies uses forky, which carries Suricata 8.
set -euo pipefail

suite="${1:-bookworm}"
slim="debian:${suite}-slim"
want="$slim"
[ "$suite" = bookworm ] && want="${NFWLAB_BASE_IMAGE:-$slim}"
own="nfwlab/debian-base:${suite}"
mirror="${NFWLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$want"; then echo "$want"; exit 0; fi
if timeout 20 docker pull -q "$want" >/dev/null 2>&1; then echo "$want"; exit 0; fi
if [ "$want" != "$slim" ]; then
  echo "build-base-image: base image $want is neither present nor pullable; load it (docker load / docker import) or leave NFWLAB_BASE_IMAGE unset" >&2
  exit 1
fi
if have "$own"; then echo "$own"; exit 0; fi

command -v debootstrap >/dev/null || {
  echo "build-base-image: debootstrap is missing; install it (apt-get install debootstrap) or make $want available" >&2
  exit 1
}
# debootstrap knows the suites released before it; a newer Debian suite bootstraps like sid.
script=()
[ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
root=$(mktemp -d /var/tmp/nfwlab-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$root" "$root.log"' EXIT
echo "build-base-image: $want is not available; building $own with debootstrap from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" "${script[@]}" >"$root.log" 2>&1 || {
  echo "build-base-image: debootstrap of $suite failed; last lines of its log:" >&2
  tail -n 20 "$root.log" >&2
  exit 1
}
# Make the image look like debian:SUITE-slim where it matters for apt.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if [ "$suite" = bookworm ]; then
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$root/etc/apt/sources.list"
else
  printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
fi
tar -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$own" >/dev/null
echo "$own"
