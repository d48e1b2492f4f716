/**
 * The source of `/bin/vmhost-tool`, a tiny static program of the test guest for what busybox
 * cannot do: a UDP echo that answers with the guest's name (busybox nc has no UDP), and router
 * advertisements (hostile mode: busybox has no raw ICMPv6 sender). Freestanding C for x86-64 Linux
 * (raw system calls, no libc: about 2 KB, so the initramfs and the boot stay as they were),
 * compiled by the guest builder when a C compiler is there. Data for the guest, never run on the
 * host.
 *
 *   vmhost-tool udp-echo PORT      answers each datagram on PORT with `NAME:PAYLOAD` (NAME from /etc/guest-name)
 *   vmhost-tool ra IFNAME COUNT    sends COUNT router advertisements, one a second, to ff02::1 on
 *                                  IFNAME: router lifetime 1800 s, prefix 2001:db8:bad:1::/64 (on-link, autonomous)
 * @module
 */

/** The rogue prefix of hostile mode's router advertisements (a documentation prefix). */
export const ROGUE_PREFIX = '2001:db8:bad:1::/64';

/** The C source (compiled with {@link TOOL_CFLAGS}). */
export const TOOL_C = String.raw`/* vmhost-tool: the test guest's helper (see packages/host/src/guests/test-guest/tool.ts). */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long i64;

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  i64 r;
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return r;
}
#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_ioctl 16
#define SYS_nanosleep 35
#define SYS_socket 41
#define SYS_sendto 44
#define SYS_recvfrom 45
#define SYS_bind 49
#define SYS_setsockopt 54
#define SYS_exit 60

void *memset(void *d, int c, unsigned long n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }
static unsigned long slen(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static int eq(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }
static long num(const char *s) { long v = 0; while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0'); return v; }
static void say(const char *s) { sys6(SYS_write, 2, (i64)s, (i64)slen(s), 0, 0, 0); }
static u16 be16(u16 v) { return (u16)((v << 8) | (v >> 8)); }

struct sockaddr_in { u16 family; u16 port; u32 addr; u8 zero[8]; };
struct sockaddr_in6 { u16 family; u16 port; u32 flowinfo; u8 addr[16]; u32 scope; };
struct ifreq { char name[16]; int index; u8 pad[20]; };
struct timespec { i64 sec; i64 nsec; };

static int udp_echo(long port) {
  static char name[64], buf[2048];
  long n = 0;
  i64 f = sys6(SYS_open, (i64)"/etc/guest-name", 0, 0, 0, 0, 0);
  if (f >= 0) { n = sys6(SYS_read, f, (i64)name, sizeof name - 2, 0, 0, 0); sys6(SYS_close, f, 0, 0, 0, 0, 0); }
  while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == '\r')) n--;
  if (n < 0) n = 0;
  name[n++] = ':';
  i64 s = sys6(SYS_socket, 2, 2, 0, 0, 0, 0);
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.family = 2; a.port = be16((u16)port);
  if (s < 0 || sys6(SYS_bind, s, (i64)&a, sizeof a, 0, 0, 0) < 0) { say("vmhost-tool: udp-echo: cannot bind\n"); return 1; }
  memcpy(buf, name, (unsigned long)n);
  for (;;) {
    struct sockaddr_in peer; u32 plen = sizeof peer;
    i64 r = sys6(SYS_recvfrom, s, (i64)(buf + n), sizeof buf - (unsigned long)n, 0, (i64)&peer, (i64)&plen);
    if (r < 0) continue;
    sys6(SYS_sendto, s, (i64)buf, n + r, 0, (i64)&peer, plen);
  }
}

static int ra(const char *ifname, long count) {
  /* ICMPv6 router advertisement: hop limit 64, router lifetime 1800 s; prefix information
     2001:db8:bad:1::/64, on-link and autonomous, valid 86400 s, preferred 14400 s. The kernel
     computes the checksum of ICMPv6 raw sockets. */
  static const u8 msg[48] = {
    134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0,
    0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
  };
  i64 s = sys6(SYS_socket, 10, 3, 58, 0, 0, 0);
  struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
  unsigned long l = slen(ifname); if (l > 15) l = 15;
  memcpy(ifr.name, ifname, l);
  if (s < 0 || sys6(SYS_ioctl, s, 0x8933 /* SIOCGIFINDEX */, (i64)&ifr, 0, 0, 0) < 0) { say("vmhost-tool: ra: no such interface\n"); return 1; }
  int hops = 255, index = ifr.index;
  sys6(SYS_setsockopt, s, 41, 18 /* IPV6_MULTICAST_HOPS */, (i64)&hops, 4, 0);
  sys6(SYS_setsockopt, s, 41, 17 /* IPV6_MULTICAST_IF */, (i64)&index, 4, 0);
  struct sockaddr_in6 to; memset(&to, 0, sizeof to);
  to.family = 10; to.addr[0] = 0xff; to.addr[1] = 0x02; to.addr[15] = 1; to.scope = (u32)index;
  for (long i = 0; i < count; i++) {
    sys6(SYS_sendto, s, (i64)msg, sizeof msg, 0, (i64)&to, sizeof to);
    struct timespec t = { 1, 0 };
    sys6(SYS_nanosleep, (i64)&t, 0, 0, 0, 0, 0);
  }
  return 0;
}

int cmain(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  if (argc == 3 && eq(argv[1], "udp-echo")) return udp_echo(num(argv[2]));
  if (argc == 4 && eq(argv[1], "ra")) return ra(argv[2], num(argv[3]));
  say("usage: vmhost-tool udp-echo PORT | ra IFNAME COUNT\n");
  return 2;
}

__asm__(".globl _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall cmain\n\tmov %eax, %edi\n\tmov $60, %eax\n\tsyscall\n\thlt\n");
`;

/** How the builder compiles {@link TOOL_C} (`cc`, argument array): static, freestanding, no libc, stripped. */
export const TOOL_CFLAGS: readonly string[] = [
  '-static', '-nostdlib', '-ffreestanding', '-fno-builtin', '-fno-stack-protector', '-fno-asynchronous-unwind-tables',
  '-fno-pie', '-no-pie', '-Os', '-s', '-Wl,--build-id=none', '-Wl,-z,noseparate-code', '-x', 'c',
];
