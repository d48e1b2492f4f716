#!/usr/bin/env bash
# Installs the Debian 12 packages vmhost needs (as root). Idempotent: when everything is
# present it only runs `dpkg-query` and exits in well under a second.
#   iproute2        `ip -j`, the independent oracle of the integration tests
#   iptables        iptables-restore/-save (nf_tables backend), used by @vmhost/firewall
#   qemu-system-x86 qemu-system-x86_64, used by @vmhost/kvm
#   qemu-utils      qemu-img (overlays, snapshots)
#   dnsmasq-base    dnsmasq binary only (no system service), DHCP on the VM bridge
#   busybox-static  userland of the tiny test guest
#   mmdebstrap      builds the real Debian guest (scripts/build-debian-guest.sh)
#   e2fsprogs       mke2fs -d: the guest's ext4 image without loop devices
#   openssh-client  ssh and ssh-keygen: the integration test logs into the real guest
#   genisoimage     isoinfo: the independent oracle reading our cloud-init seed ISO in the tests
#   python3-minimal /usr/bin/python3: raw Ethernet frames (AF_PACKET) in the firewall isolation tests
#   xz-utils        unpacks the test guest's kernel to vmlinux (direct PVH boot)
#   conntrack       conntrack(8): the independent oracle of @vmhost/net's conntrack tests
#   gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
#                   cross compiler and arm64 libc headers: the linux-arm64 prebuild of @vmhost/net's
#                   addon (packages/net/scripts/prebuild.mjs, run when the packages are packed)
# With --bench also the anchors of `npm run bench:compare`:
#   golang-go, golang-github-vishvananda-netlink-dev   the Go netlink library, built from source
#   python3-pyroute2                                    pyroute2
set -euo pipefail
pkgs=(iproute2 iptables qemu-system-x86 qemu-utils dnsmasq-base busybox-static mmdebstrap e2fsprogs openssh-client genisoimage python3-minimal xz-utils conntrack gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(golang-go golang-github-vishvananda-netlink-dev python3-pyroute2) ;;
    *) echo "setup-system: unknown option $arg" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: missing packages ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "setup-system: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  apt-get update -qq >&2
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
