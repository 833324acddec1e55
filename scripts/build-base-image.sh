#!/usr/bin/env bash
# Make sure a Debian bookworm base image exists locally, without a registry.
#
# Prints the name of the base image to build the lab's images from:
#   1. $NFWLAB_BASE_IMAGE if it is already present locally;
#   2. debian:bookworm-slim if present locally or pullable;
#   3. otherwise nfwlab/debian-base:bookworm, made here with debootstrap
#      (minbase variant) from the Debian mirror and loaded with `docker import`.
set -euo pipefail

want="${NFWLAB_BASE_IMAGE:-debian:bookworm-slim}"
own="nfwlab/debian-base:bookworm"
mirror="${NFWLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$want"; then echo "$want"; exit 0; fi
if timeout 20 docker pull -q "$want" >/dev/null 2>&1; then echo "$want"; exit 0; fi
if [ "$want" != "debian:bookworm-slim" ]; then
  echo "build-base-image: base image $want is neither present nor pullable; load it (docker load / docker import) or leave NFWLAB_BASE_IMAGE unset" >&2
  exit 1
fi
if have "$own"; then echo "$own"; exit 0; fi

command -v debootstrap >/dev/null || {
  echo "build-base-image: debootstrap is missing; install it (apt-get install debootstrap) or make $want available" >&2
  exit 1
}
root=$(mktemp -d /var/tmp/nfwlab-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
echo "build-base-image: $want is not available; building $own with debootstrap from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  echo "build-base-image: debootstrap failed; last lines of $root.log:" >&2
  tail -n 20 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
# Make the image look like debian:bookworm-slim where it matters for apt.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$mirror" "$mirror" >"$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$own" >/dev/null
echo "$own"
