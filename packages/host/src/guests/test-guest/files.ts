/**
 * The files of the test guest's initramfs besides busybox and the kernel modules: `/init` and the
 * small scripts it runs. They are data for the guest (busybox sh inside the VM), never run on the
 * host. What `/init` does is described in {@link buildTestGuest}.
 * @module
 */

const SH = '#!/bin/busybox sh\n';

/** `/etc/udhcpc.script`: configures eth0 from the DHCP lease and records the address. */
const UDHCPC = `${SH}case "$1" in
  bound|renew)
    /bin/busybox ifconfig "$interface" "$ip" netmask "\${subnet:-255.255.255.0}" up
    [ -n "$router" ] && /bin/busybox route add default gw "\${router%% *}" dev "$interface" 2>/dev/null
    echo "$ip" > /tmp/ip
    echo "\${serverid:-?} \${router%% *}" > /tmp/dhcp-server
    ;;
esac
exit 0
`;

const BANNER22 = `${SH}echo "SSH-2.0-vmhost-guest $(cat /etc/guest-name)"
`;

const BANNER25 = `${SH}echo "220 $(cat /etc/guest-name) ESMTP vmhost-guest"
`;

/** TCP discard (port 9) and chargen (port 19: zeros until the client goes), for bandwidth measurements. */
const DISCARD = `${SH}exec cat > /dev/null
`;
const CHARGEN = `${SH}exec cat /dev/zero
`;

const CGI_DISK = `${SH}echo "Content-Type: text/plain"
echo
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/vda bs=64 count=1 2>/dev/null | tr -d '\\000'
`;

const CGI_FETCH = `${SH}echo "Content-Type: text/plain"
echo
wget -q -O- "$QUERY_STRING" 2>&1
`;

// DNS from inside the VM: busybox nslookup with the query string's '&'-separated words as its
// arguments (`?-type=AAAA&web.lan&192.168.0.1`; never through eval, no globbing)
const CGI_LOOKUP = `${SH}echo "Content-Type: text/plain"
echo
set -f
IFS='&'
set -- $QUERY_STRING
nslookup "$@" 2>&1
`;

const CGI_WRITE = `${SH}echo "Content-Type: text/plain"
echo
printf '%s' "$QUERY_STRING" | dd of=/dev/vda bs=512 conv=sync,notrunc,fsync 2>/dev/null && echo ok
`;

/**
 * `/bin/hostile VICTIM_MAC,VICTIM_IP4[,VICTIM_IP6]` (hostile mode): a DHCP server for the
 * victim's /24 (udhcpd, itself as router and DNS), router advertisements of a rogue prefix (the
 * tool, when built), then the victim's MAC, then its addresses, announced again every second
 * (gratuitous ARP; unsolicited NAs: ndisc_notify on, the address added again).
 */
const HOSTILE = `${SH}say() { echo "VMHOST-GUEST: $*" > /dev/console; }
vmac=\${1%%,*}; rest=\${1#*,}; v4=\${rest%%,*}; v6=\${rest#*,}
[ "$v6" = "$rest" ] && v6=
own=$(cat /tmp/ip 2>/dev/null)
net=\${v4%.*}
printf 'interface eth0\\nstart %s.240\\nend %s.250\\noption subnet 255.255.255.0\\noption router %s\\noption dns %s\\nlease_file /tmp/udhcpd.leases\\n' "$net" "$net" "$own" "$own" > /etc/udhcpd.conf
touch /tmp/udhcpd.leases
udhcpd -f /etc/udhcpd.conf > /dev/null 2>&1 &
[ -x /bin/vmhost-tool ] && /bin/vmhost-tool ra eth0 100000 &
# an address added without DAD (accept_dad 0, not nodad) is announced at once with ndisc_notify
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
echo 1 > /proc/sys/net/ipv6/conf/eth0/ndisc_notify
echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_notify
omac=$(cat /sys/class/net/eth0/address)
ip link set eth0 address "$vmac"
ip addr add "$v4/32" dev eth0
[ -n "$v6" ] && ip -6 addr add "$v6/128" dev eth0
say "hostile armed $vmac $v4 $v6"
# link-local addresses: this guest's kernel may move eth0 to the EUI-64 address of the new MAC,
# the victim's (observed: router advertisements from fe80::<victim>, which the victim, holding the
# same address, takes for its own: no default route; or, with it removed, from a global source,
# which the victim drops). Every second the victim's is removed and this guest's own put back, so
# that the advertisements come from this guest's own link-local address.
eui() { IFS=: read -r m1 m2 m3 m4 m5 m6; printf 'fe80::%x:%x:%x:%x' $(( ((0x$m1 ^ 2) << 8) | 0x$m2 )) $(( (0x$m3 << 8) | 0xff )) $(( 0xfe00 | 0x$m4 )) $(( (0x$m5 << 8) | 0x$m6 )); }
vll=$(echo "$vmac" | eui)
oll=$(echo "$omac" | eui)
while true; do
  ip -6 addr del "$vll/64" dev eth0 2> /dev/null
  ip -6 addr add "$oll/64" dev eth0 2> /dev/null
  arping -U -c 1 -I eth0 -s "$v4" "$v4" > /dev/null 2>&1
  if [ -n "$v6" ]; then ip -6 addr del "$v6/128" dev eth0; ip -6 addr add "$v6/128" dev eth0; fi
  sleep 1
done
`;

/** `/bin/watch` (watch mode): the guest's lease, DHCP server, addresses and routes on the console, every second. */
const WATCH = `${SH}while true; do
  echo "VMHOST-GUEST: watch lease=$(cat /tmp/ip 2>/dev/null) server=$(cat /tmp/dhcp-server 2>/dev/null | tr ' ' /) a6=$(ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | tr '\\n' ,) r6=$(ip -6 route show | grep -v '^fe80::/64 ' | tr ' ' _ | tr '\\n' ,) r4=$(ip -4 route show | tr ' ' _ | tr '\\n' ,)" > /dev/console
  sleep 1
done
`;

const INIT = `${SH}/bin/busybox --install -s /bin
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
    dev=/dev/input/\${ev##*/}
    ( dd if="$dev" of=/dev/null bs=24 count=1 2>/dev/null; say powerdown; sync; poweroff -f ) &
  fi
done

ip link set lo up
name=guest; ip6=; ip6b=; gw6=; hostile=; watch=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vmhost.name=*) name=\${arg#vmhost.name=} ;;
    vmhost.ip6=*) ip6=\${arg#vmhost.ip6=} ;;
    vmhost.ip6b=*) ip6b=\${arg#vmhost.ip6b=} ;;
    vmhost.gw6=*) gw6=\${arg#vmhost.gw6=} ;;
    vmhost.hostile=*) hostile=\${arg#vmhost.hostile=} ;;
    vmhost.watch=1) watch=1 ;;
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
    # a second address, as SLAAC or privacy addresses give a real guest (ipv6.learn)
    [ -n "$ip6b" ] && ip -6 addr add "$ip6b" dev eth0 && say "ip6b $ip6b"
    if [ -n "$gw6" ]; then
      ip -6 route add default via "$gw6" dev eth0
    else
      # the default route comes from the host's router advertisement: up to 10 s for it
      n=0; while [ $n -lt 100 ] && [ -z "$(ip -6 route show default)" ]; do sleep 0.1; n=$((n+1)); done
      [ -n "$(ip -6 route show default)" ] && say "ra $(ip -6 route show default)"
    fi
  fi
fi
httpd -p 80 -h /www
nc -ll -p 22 -e /bin/banner22 &
nc -ll -p 25 -e /bin/banner25 &
nc -ll -p 7 -e /bin/cat &
nc -ll -p 9 -e /bin/discard &
nc -ll -p 19 -e /bin/chargen &
[ -x /bin/vmhost-tool ] && /bin/vmhost-tool udp-echo 7 &
[ -n "$watch" ] && /bin/watch &
# "ready" only once the TCP services listen (22, 25, 7, 9, 19, 80): the listeners above start in
# the background, and a client that connects as soon as it reads "ready" must find them (on a
# busy host a just-started nc had not bound its port yet). At most 10 s in all.
n=0
for p in 0016 0019 0007 0009 0013 0050; do
  while [ $n -lt 200 ] && ! grep -qE ":$p [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do sleep 0.05; n=$((n+1)); done
done
say ready
[ -n "$hostile" ] && /bin/hostile "$hostile" &
while true; do sleep 3600; done
`;

/** The executable files of the initramfs (mode 0755), by path. */
export const GUEST_SCRIPTS: Readonly<Record<string, string>> = {
  init: INIT,
  'etc/udhcpc.script': UDHCPC,
  'bin/banner22': BANNER22,
  'bin/banner25': BANNER25,
  'bin/discard': DISCARD,
  'bin/chargen': CHARGEN,
  'bin/hostile': HOSTILE,
  'bin/watch': WATCH,
  'www/cgi-bin/disk': CGI_DISK,
  'www/cgi-bin/fetch': CGI_FETCH,
  'www/cgi-bin/write': CGI_WRITE,
  'www/cgi-bin/lookup': CGI_LOOKUP,
};

/** The directories of the initramfs, parents first. */
export const GUEST_DIRS = ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'lib', 'lib/modules', 'www', 'www/cgi-bin'];

/** The modules to load (their dependencies are added before them): virtio NIC and disk, the ACPI power button. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_mmio', 'virtio_net', 'virtio_blk', 'evdev', 'button'];

/** The serial console markers /init prints. */
export const GUEST_MARKERS = {
  init: 'VMHOST-GUEST: init',
  ip: 'VMHOST-GUEST: ip ',
  ip6: 'VMHOST-GUEST: ip6 ',
  ra: 'VMHOST-GUEST: ra ',
  ready: 'VMHOST-GUEST: ready',
  hostile: 'VMHOST-GUEST: hostile armed',
  watch: 'VMHOST-GUEST: watch ',
  powerdown: 'VMHOST-GUEST: powerdown',
} as const;

/**
 * The kernel command line the guest is made for (add `vmhost.name=`, `vmhost.ip6=`, `vmhost.gw6=`;
 * for tests `vmhost.hostile=VICTIM_MAC,VICTIM_IP4[,VICTIM_IP6]` and `vmhost.watch=1`).
 */
export const GUEST_APPEND = 'console=ttyS0 panic=-1 quiet';
