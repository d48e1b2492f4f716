// bench:compare's floor anchor: creates N veth pairs (v<i> with peer p<i>) with the same
// RTM_NEWLINK requests `ip link add v<i> type veth peer name p<i>` sends, BATCH requests per
// sendto, and reads their acks; no library, no allocation per request. What is left of its time
// is the kernel's own work for those requests: no tool that asks for the same links can be much
// faster. Prints {"ms": in-process time, "count": pairs} on its last line, as the other anchors.
//
//   floor create N [BATCH=256]
#define _GNU_SOURCE
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static char req[1 << 20]; /* BATCH requests of < 128 bytes each */
static char ans[1 << 16];

/* Appends attribute `type` with `len` bytes of `data` at `off`; returns the next offset. */
static int put_attr(char *m, int off, int type, const void *data, int len) {
  struct nlattr *a = (struct nlattr *)(m + off);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + len;
  memcpy(m + off + NLA_HDRLEN, data, len);
  return off + NLA_ALIGN(NLA_HDRLEN + len);
}

/* Closes the nest opened at `start` (its header reserved), ending at `end`. */
static void end_nest(char *m, int start, int type, int end) {
  struct nlattr *a = (struct nlattr *)(m + start);
  a->nla_type = type;
  a->nla_len = end - start;
}

/* One request at `m` (zeroed): RTM_NEWLINK v<i>, kind veth, peer p<i>. Returns its length. */
static int veth_request(char *m, unsigned i) {
  struct nlmsghdr *h = (struct nlmsghdr *)m;
  char name[IFNAMSIZ];
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  h->nlmsg_seq = i + 1;
  int off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg));
  off = put_attr(m, off, IFLA_IFNAME, name, snprintf(name, sizeof name, "v%u", i) + 1);
  int linkinfo = off;
  off = put_attr(m, off + NLA_HDRLEN, IFLA_INFO_KIND, "veth", 5);
  int data = off, peer = off + NLA_HDRLEN;
  off = peer + NLA_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg));
  off = put_attr(m, off, IFLA_IFNAME, name, snprintf(name, sizeof name, "p%u", i) + 1);
  end_nest(m, peer, VETH_INFO_PEER, off);
  end_nest(m, data, IFLA_INFO_DATA, off);
  end_nest(m, linkinfo, IFLA_LINKINFO, off);
  h->nlmsg_len = off;
  return off;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "create") != 0) {
    fprintf(stderr, "usage: floor create N [BATCH]\n");
    return 2;
  }
  unsigned n = (unsigned)strtoul(argv[2], NULL, 10);
  unsigned batch = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 256;
  if (batch < 1 || batch > 4096) batch = 256;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  int one = 1, rcvbuf = 4 << 20;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("bind");
    return 1;
  }
  double t0 = now_ms();
  for (unsigned i = 0; i < n; i += batch) {
    unsigned end = i + batch < n ? i + batch : n;
    size_t used = 0;
    memset(req, 0, (size_t)(end - i) * 128);
    for (unsigned k = i; k < end; k++) used += NLMSG_ALIGN(veth_request(req + used, k));
    if (send(fd, req, used, 0) < 0) {
      perror("send");
      return 1;
    }
    for (unsigned left = end - i; left > 0;) {
      ssize_t r = recv(fd, ans, sizeof ans, 0);
      if (r < 0) {
        perror("recv");
        return 1;
      }
      int len = (int)r;
      for (struct nlmsghdr *h = (struct nlmsghdr *)ans; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error) {
          fprintf(stderr, "request %u: %s\n", h->nlmsg_seq, strerror(-e->error));
          return 1;
        }
        left--;
      }
    }
  }
  printf("{\"ms\": %.3f, \"count\": %u}\n", now_ms() - t0, n);
  return 0;
}
