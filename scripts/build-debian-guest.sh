#!/usr/bin/env bash
# Builds a real Debian 12 guest from Debian packages with mmdebstrap, into .cache/debian-guest/:
#   debian-12.qcow2   the root file system: ext4 on the whole disk (no partition table), label
#                     `root`, 2 GiB virtual; use it as the never-written base of per-VM overlays
#   vmlinuz           the distribution kernel and
#   initrd.img        its initramfs (initramfs-tools, MODULES=most), both copied out of /boot,
#                     for direct kernel boot: -kernel vmlinuz -initrd initrd.img
#                     -append 'root=/dev/vda rw console=ttyS0'
#   guest.json        what was built (kernel version, packages, kernel command line, sizes, timings)
#   stamp             the hash of this script: a re-run with the stamp current does nothing (~5 ms)
#
# Contents: systemd (systemd-sysv, udev, dbus, logind), systemd-networkd + systemd-resolved (enabled;
# cloud-init's network-config v2 is rendered for networkd, which accepts router advertisements and
# runs its own DHCPv6 client when an RA carries the M flag), cloud-init, openssh-server, sudo,
# iproute2, linux-image-amd64. No ifupdown and no netplan, so cloud-init picks its networkd renderer.
# Nothing project-specific is inside: no user, no key, no password, no host name, no network
# configuration. Everything comes from cloud-init (a NoCloud seed) at the first boot. The image is
# cleaned like a cloud image: empty /etc/machine-id (each VM makes its own, so its DHCPv6 DUID
# differs), no ssh host keys (cloud-init makes them at the first boot), no apt lists, and the
# system locale C.UTF-8 (/etc/default/locale): with none set, cloud-init's locale module asks for
# en_US.UTF-8, which Debian's locale-gen does not generate on request, and `cloud-init status`
# then ends in error.
#
# Prerequisites (Debian packages mmdebstrap, e2fsprogs, qemu-utils) are installed by
# scripts/setup-system.sh, which this script runs. Building takes ~3-5 minutes and ~1 GB in a temp
# dir under ${TMPDIR:-/var/tmp}; concurrent runs on one checkout serialise on a lock.
# VMHOST_DEBIAN_SIZE=2G sets the virtual size of the image.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/debian-guest
log() { echo "build-debian-guest: $*" >&2; }

self_hash=$(sha256sum "$0" | cut -c1-16)
fresh() { [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$self_hash" ] && [ -s "$out/debian-12.qcow2" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; }
fresh && exit 0

if [ "$(id -u)" != 0 ]; then
  log "needs root (mmdebstrap in root mode, files owned by root in the image)"
  exit 1
fi
bash scripts/setup-system.sh

mkdir -p "$out"
exec 9> "$out/.lock"
flock 9
fresh && exit 0 # another run built it while we waited

size=${VMHOST_DEBIAN_SIZE:-2G}
packages=(
  linux-image-amd64 initramfs-tools
  systemd-sysv udev dbus libpam-systemd systemd-resolved
  cloud-init openssh-server sudo iproute2 e2fsprogs netbase
)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/vmhost-debian-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
log "mmdebstrap bookworm (${packages[*]})"
# The default mirrors of a stable release (main, updates, security; no mirror is named here), no
# Recommends (mmdebstrap's default). Documentation, man pages and translations are not unpacked
# (dpkg path-exclude).
# Customisation (the same a cloud image gets, nothing of this project): networkd and resolved
# enabled, an fstab for the root label, machine-id emptied, ssh host keys removed, locale C.UTF-8.
mmdebstrap --variant=apt --mode=root --format=directory \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd.service systemd-resolved.service' \
  --customize-hook='echo "LABEL=root / ext4 defaults,errors=remount-ro 0 1" > "$1/etc/fstab"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*_key "$1"/etc/ssh/ssh_host_*_key.pub "$1/var/lib/dbus/machine-id"' \
  --customize-hook=': > "$1/etc/machine-id"' \
  --customize-hook='rm -f "$1/etc/hostname"' \
  --customize-hook='echo LANG=C.UTF-8 > "$1/etc/default/locale"' \
  bookworm "$work/root" >&2
t1=$(ms)

kver=$(ls "$work/root/lib/modules" | sort -V | tail -1)
[ -s "$work/root/boot/vmlinuz-$kver" ] && [ -s "$work/root/boot/initrd.img-$kver" ] || { log "no kernel/initrd for $kver in /boot"; exit 1; }
cp "$work/root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$work/root/boot/initrd.img-$kver" "$work/initrd.img"
renderer=$(grep -A3 -E '^\s*renderers:' "$work/root/etc/cloud/cloud.cfg" 2>/dev/null | tr -d '\n' || true)
cloud_init=$(chroot "$work/root" dpkg-query -W -f='${Version}' cloud-init)
rootfs_mb=$(du -sm "$work/root" | cut -f1)

log "mke2fs ext4 $size (${rootfs_mb} MB of files)"
truncate -s "$size" "$work/root.img"
mke2fs -q -t ext4 -L root -d "$work/root" "$work/root.img"
rm -rf "$work/root"
qemu-img convert -O qcow2 "$work/root.img" "$work/debian-12.qcow2"
rm -f "$work/root.img"
t2=$(ms)

qcow_mb=$(( $(stat -c %s "$work/debian-12.qcow2") / 1048576 ))
cat > "$work/guest.json" <<EOF
{"suite": "bookworm", "kernel": "$kver", "cloudInit": "$cloud_init", "image": "debian-12.qcow2", "format": "qcow2", "virtualSize": "$size", "fileMiB": $qcow_mb, "rootfsMiB": $rootfs_mb, "append": "root=/dev/vda rw console=ttyS0", "packages": "$(IFS=,; echo "${packages[*]}")", "seconds": {"mmdebstrap": $(( (t1 - t0) / 1000 )), "image": $(( (t2 - t1) / 1000 ))}}
EOF
rm -f "$out/stamp"
mv "$work/debian-12.qcow2" "$work/vmlinuz" "$work/initrd.img" "$work/guest.json" "$out/"
echo "$self_hash" > "$out/stamp"
log "built $out: kernel $kver, cloud-init $cloud_init, image ${qcow_mb} MiB (${rootfs_mb} MB of files), mmdebstrap $(( (t1 - t0) / 1000 )) s, image $(( (t2 - t1) / 1000 )) s; renderer config: ${renderer:-none}"
