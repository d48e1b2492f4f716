#!/usr/bin/env bash
# Builds the tiny test guest of @vmhost/kvm from Debian packages only, into .cache/guest/:
#   vmlinuz      the kernel of Debian's linux-image-<abi>-amd64 (downloaded with apt-get download and
#                unpacked with dpkg-deb -x here, never installed on the host)
#   vmlinux      the same kernel uncompressed (an ELF with a PVH entry note): QEMU boots it directly
#                (PVH), which skips the kernel's own decompression, slow under TCG (docs/kvm-machine.md)
#   initrd.img   busybox-static, the kernel modules virtio_net and virtio_blk need over PCI and over
#                MMIO (microvm), with their dependencies, in load order, from each module's depends=
#                field, evdev + button for the ACPI power button, and /init (see below)
#   guest.json   what was built (kernel version, module order, markers) for the tests
#
# /init prints markers on the serial console (console=ttyS0):
#   VMHOST-GUEST: init                 /init started
#   VMHOST-GUEST: ip <addr>            DHCP lease on eth0 (udhcpc)
#   VMHOST-GUEST: ip6 <addr/len>       the static IPv6 address from the kernel command line is set
#   VMHOST-GUEST: ready                busybox httpd serves on port 80, the banners on 22 and 25
#   VMHOST-GUEST: powerdown            the ACPI power button was pressed; it then runs `poweroff -f`
# Kernel command line (optional): vmhost.name=NAME (default "guest"), vmhost.ip6=ADDR/LEN and
#   vmhost.gw6=ADDR (a static IPv6 address and default route on eth0, set without DAD).
# Banners (busybox nc, IPv4 and IPv6): port 22 "SSH-2.0-vmhost-guest NAME", port 25 "220 NAME ESMTP vmhost-guest".
# HTTP service: GET /            "vmhost-guest <mac of eth0>"
#               GET /cgi-bin/disk          the first 64 bytes of /dev/vda (NUL bytes stripped)
#               GET /cgi-bin/write?TEXT    writes TEXT at offset 0 of /dev/vda (fsync), answers "ok"
#               GET /cgi-bin/fetch?URL     what `wget -O- URL` gets from inside the guest (outbound test)
#
# Idempotent and fast: when .cache/guest holds a build made by this very script, it does nothing.
# VMHOST_GUEST_KERNEL=linux-image-6.1.0-NN-amd64 picks a kernel package (default: what the
# linux-image-amd64 metapackage depends on).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/guest
log() { echo "build-guest: $*" >&2; }

self_hash=$(sha256sum "$0" | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$self_hash" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/vmlinux" ] && [ -s "$out/initrd.img" ]; then
  exit 0
fi

busybox=/bin/busybox
if ! "$busybox" --list 2>/dev/null | grep -qx udhcpc; then
  log "busybox-static is missing (scripts/setup-system.sh installs it)"
  exit 1
fi

pkg=${VMHOST_GUEST_KERNEL:-}
if [ -z "$pkg" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq >&2
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
fi
[ -n "$pkg" ] || { log "cannot find the kernel package behind linux-image-amd64"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "downloading $pkg"
# A stale package list can name a file the mirror no longer has: refresh once and retry.
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) || { apt-get update -qq >&2; (cd "$work" && apt-get download "$pkg" >&2); }
dpkg-deb -x "$work"/*.deb "$work/pkg"
kver=$(ls "$work/pkg/lib/modules" | head -1)
moddir="$work/pkg/lib/modules/$kver"

# Resolve modules and their dependencies (depth first: dependencies before dependants).
declare -A seen=()
order=()
modpath() { find "$moddir" -name "$1.ko" -print -quit; }
resolve() {
  local m=$1 f deps d
  [ -n "${seen[$m]:-}" ] && return 0
  seen[$m]=1
  f=$(modpath "$m")
  [ -n "$f" ] || { log "module $m not in $pkg (built in?)"; return 0; }
  deps=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
  for d in $deps; do resolve "$d"; done
  order+=("$m")
}
for m in virtio_pci virtio_mmio virtio_net virtio_blk evdev button; do resolve "$m"; done

root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,www/cgi-bin}
cp "$busybox" "$root/bin/busybox"
for m in "${order[@]}"; do cp "$(modpath "$m")" "$root/lib/modules/$m.ko"; done
printf '%s\n' "${order[@]}" > "$root/lib/modules/order"

cat > "$root/etc/udhcpc.script" <<'EOF'
#!/bin/busybox sh
case "$1" in
  bound|renew)
    /bin/busybox ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$router" ] && /bin/busybox route add default gw "${router%% *}" dev "$interface" 2>/dev/null
    echo "$ip" > /tmp/ip
    ;;
esac
exit 0
EOF

cat > "$root/bin/banner22" <<'EOF'
#!/bin/busybox sh
echo "SSH-2.0-vmhost-guest $(cat /etc/guest-name)"
EOF

cat > "$root/bin/banner25" <<'EOF'
#!/bin/busybox sh
echo "220 $(cat /etc/guest-name) ESMTP vmhost-guest"
EOF

cat > "$root/www/cgi-bin/disk" <<'EOF'
#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda bs=64 count=1 2>/dev/null | tr -d '\000'
EOF

cat > "$root/www/cgi-bin/fetch" <<'EOF'
#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
wget -q -O- "$QUERY_STRING" 2>&1
EOF

cat > "$root/www/cgi-bin/write" <<'EOF'
#!/bin/busybox sh
echo "Content-Type: text/plain"
echo
printf '%s' "$QUERY_STRING" | dd of=/dev/vda bs=512 conv=sync,notrunc,fsync 2>/dev/null && echo ok
EOF

cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "VMHOST-GUEST: $*" > /dev/console; }
say init
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" 2>/dev/null; done

# ACPI power button -> clean power-off (busybox as PID 1 would ignore it).
for ev in /sys/class/input/event*; do
  if [ "$(cat "$ev/device/name" 2>/dev/null)" = "Power Button" ]; then
    dev=/dev/input/${ev##*/}
    ( dd if="$dev" of=/dev/null bs=24 count=1 2>/dev/null; say powerdown; sync; poweroff -f ) &
  fi
done

ip link set lo up
name=guest; ip6=; gw6=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vmhost.name=*) name=${arg#vmhost.name=} ;;
    vmhost.ip6=*) ip6=${arg#vmhost.ip6=} ;;
    vmhost.gw6=*) gw6=${arg#vmhost.gw6=} ;;
  esac
done
echo "$name" > /etc/guest-name
hostname "$name"
mac=$(cat /sys/class/net/eth0/address 2>/dev/null)
echo "vmhost-guest $mac" > /www/index.html
chmod 755 /www/cgi-bin/*
if [ -n "$mac" ]; then
  ip link set eth0 up
  udhcpc -i eth0 -s /etc/udhcpc.script -t 30 -T 1 -A 1 -b -q > /dev/null 2>&1
  [ -f /tmp/ip ] && say "ip $(cat /tmp/ip)"
  if [ -n "$ip6" ]; then
    echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
    ip -6 addr add "$ip6" dev eth0 && say "ip6 $ip6"
    [ -n "$gw6" ] && ip -6 route add default via "$gw6" dev eth0
  fi
fi
httpd -p 80 -h /www
nc -ll -p 22 -e /bin/banner22 &
nc -ll -p 25 -e /bin/banner25 &
say ready
while true; do sleep 3600; done
EOF
chmod 755 "$root/init" "$root/etc/udhcpc.script" "$root/www/cgi-bin/"* "$root/bin/banner22" "$root/bin/banner25"

mkdir -p "$out"
(cd "$root" && find . | sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9 > "$work/initrd.img"
cp "$work/pkg/boot/vmlinuz-$kver" "$work/vmlinuz"
# vmlinux: the xz payload of the bzImage (Debian builds with CONFIG_KERNEL_XZ), found by its magic
# like the kernel's scripts/extract-vmlinux; the first offset that decompresses to an ELF wins.
for off in $(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$work/vmlinuz" | cut -d: -f1); do
  if tail -c +"$((off + 1))" "$work/vmlinuz" | xz -dcq > "$work/vmlinux" 2>/dev/null || [ -s "$work/vmlinux" ]; then
    [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && break
  fi
  rm -f "$work/vmlinux"
done
[ -s "$work/vmlinux" ] || { log "cannot extract vmlinux from the kernel image"; exit 1; }
mods_json=$(printf '"%s",' "${order[@]}")
cat > "$work/guest.json" <<EOF
{"package": "$pkg", "kernel": "$kver", "modules": [${mods_json%,}], "append": "console=ttyS0 panic=-1 quiet", "markers": {"init": "VMHOST-GUEST: init", "ip": "VMHOST-GUEST: ip ", "ip6": "VMHOST-GUEST: ip6 ", "ready": "VMHOST-GUEST: ready", "powerdown": "VMHOST-GUEST: powerdown"}}
EOF
mv "$work/vmlinuz" "$work/vmlinux" "$work/initrd.img" "$work/guest.json" "$out/"
echo "$self_hash" > "$out/stamp"
log "built $out (kernel $kver; modules ${order[*]})"
