#!/usr/bin/env bash
# Builds the Debian 13 ("trixie") machine the install-guide test boots under qemu, from Debian's
# packages only, and caches it outside the repository:
#   tools/vm-image.sh CACHE_DIR        ->  CACHE_DIR/<key>/{disk.raw,vmlinuz,initrd.img,id_ed25519}
# The key is a hash of this script and tests/vm/image/*: a change to either builds a new image.
# Prints the image directory. Needs root (debootstrap, chroot), debootstrap, qemu-utils, ssh-keygen.
#
# What is in it: systemd as PID 1, the kernel and initramfs (booted with qemu -kernel/-initrd,
# root=/dev/vda: one ext4 filesystem, no partition table), sshd with the test's key for root,
# DHCP on the virtio NIC, and the packages of the guide's first step installed (tests/vm/image/
# packages.txt), so that its `apt-get install` finds them instead of unpacking them for minutes
# under software emulation; those of the guide's alternatives (database servers, docker:
# packages-downloaded.txt) wait in apt's cache for the guide to install them for real.
# It also holds /var/lib/obd2-vm/standin-rootfs.tar: a Debian 12 root with postgresql and redis-server, which the test imports into the VM's docker as the stand-ins
# for the postgres and redis images that Docker Hub would serve (unreachable here).
set -euo pipefail

cache=${1:?usage: vm-image.sh CACHE_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
spec="$here/tests/vm/image"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
key=$(cat "$0" "$spec"/* | sha256sum | cut -c1-16)
image="$cache/$key"
if [ -f "$image/ready" ]; then
  echo "$image"
  exit 0
fi
mkdir -p "$cache"
exec 8>"$cache/.build.lock"
flock 8
if [ -f "$image/ready" ]; then  # built by another process while this one waited
  echo "$image"
  exit 0
fi

say() { echo "vm-image: $(date -u +%T) $*" >&2; }
work="$cache/$key.build"
rm -rf "$work"
mkdir -p "$work"
mounted=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}
trap unmount_all EXIT

in_root() {  # in_root ROOT COMMAND…: runs COMMAND in the chroot with /proc, /sys and /dev mounted
  local root=$1
  shift
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount -t sysfs sys "$root/sys" && mounted+=("$root/sys")
  mount --bind /dev "$root/dev" && mounted+=("$root/dev")
  mount --bind /dev/pts "$root/dev/pts" && mounted+=("$root/dev/pts")
  local rc=0
  DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 chroot "$root" "$@" || rc=$?
  unmount_all
  return "$rc"
}

bootstrap() {  # bootstrap SUITE ROOT PACKAGES…: a minbase root with PACKAGES installed by apt
  local suite=$1 root=$2
  shift 2
  say "debootstrap $suite into $root"
  debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" >"$work/debootstrap-$suite.log" 2>&1 \
    || { tail -20 "$work/debootstrap-$suite.log" >&2; return 1; }
  # With its updates and security fixes, so that the guide's `apt-get upgrade` has little to do.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" > "$root/etc/apt/sources.list"
  # Daemons must not start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  say "apt-get install ${#} packages into $suite"
  in_root "$root" apt-get update -qq >/dev/null
  in_root "$root" apt-get install -y -qq --no-install-recommends "$@" >"$work/apt-$suite.log" 2>&1 \
    || { tail -30 "$work/apt-$suite.log" >&2; return 1; }
  in_root "$root" apt-get clean
  rm -f "$root/usr/sbin/policy-rc.d"
}

# -- the stand-in for the postgres and redis images -------------------------------------------
standin="$work/standin"
bootstrap bookworm "$standin" postgresql redis-server
# The cluster the package made is not used: the entrypoint makes one in the volume, as the
# official image does.
rm -rf "$standin"/var/lib/postgresql/15/main "$standin"/etc/postgresql/15/main
install -m 0755 "$spec/standin-entrypoint.sh" "$standin/usr/local/bin/standin-entrypoint"
tar -C "$standin" --numeric-owner -cf "$work/standin-rootfs.tar" .
rm -rf "$standin"

# -- the server ----------------------------------------------------------------------------------
root="$work/root"
package_list() { grep -v '^\s*#' "$1" | tr -s ' \t' '\n' | grep -v '^$'; }
mapfile -t packages < <(package_list "$spec/packages.txt")
bootstrap trixie "$root" "${packages[@]}"
# What the guide's alternative paths install (the database servers, docker): downloaded into
# apt's cache, not installed, so that the guide's apt-get install really installs them, without
# a download that could take longer than the install itself.
mapfile -t cached < <(package_list "$spec/packages-downloaded.txt")
say "apt-get install --download-only ${#cached[@]} packages"
in_root "$root" apt-get install -y -qq --no-install-recommends --download-only "${cached[@]}" \
  >"$work/apt-download.log" 2>&1 || { tail -30 "$work/apt-download.log" >&2; exit 1; }

echo obd2-vm > "$root/etc/hostname"
cat > "$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 obd2-vm
::1 localhost ip6-localhost ip6-loopback
EOF
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' > "$root/etc/fstab"
cat > "$root/etc/systemd/network/10-virtio.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
ln -sf /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# qemu's user network answers DNS at 10.0.2.3.
rm -f "$root/etc/resolv.conf"
echo 'nameserver 10.0.2.3' > "$root/etc/resolv.conf"

ssh-keygen -q -t ed25519 -N '' -C obd2-vm-test -f "$work/id_ed25519"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
# Host keys are made once here, so every boot of this image shows the same ones.
in_root "$root" ssh-keygen -A
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$work/host_key.pub"
# A locale-neutral, quiet login for the commands the test runs.
echo 'LANG=C.UTF-8' > "$root/etc/default/locale"

install -d "$root/var/lib/obd2-vm"
mv "$work/standin-rootfs.tar" "$root/var/lib/obd2-vm/standin-rootfs.tar"

# The one kernel the image has, and its initramfs.
kernel=$(find "$root/boot" -name 'vmlinuz-*' | sort -V | tail -1)
cp "$kernel" "$work/vmlinuz"
cp "$root/boot/initrd.img-${kernel##*/vmlinuz-}" "$work/initrd.img"

say "mkfs.ext4 -d (disk image)"
truncate -s 12G "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw"
rm -rf "$root"
touch "$work/ready"
rm -rf "$image"
mv "$work" "$image"
say "image ready: $image"
echo "$image"
