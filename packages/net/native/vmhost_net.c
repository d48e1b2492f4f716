// vmhost_net: the small native part of @vmhost/net.
//
// It owns netlink sockets (so that NETLINK_EXT_ACK, NETLINK_CAP_ACK, the receive buffer size and
// group membership are ours to set), drives them from libuv's poll on the main thread and hands
// every datagram to JavaScript as a Buffer, in batches. Everything above the datagram (framing,
// sequence numbers, dumps, errors) is TypeScript.
//
// It also wraps the few syscalls that Node lacks and that must run on the calling (main) thread:
// setns, unshare(CLONE_NEWNET), mount/umount2 (for /run/netns), and the TUN/TAP ioctls.
// Every function throws an Error with `code` (errno name), `errno` and `syscall` on failure.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#define RECV_BUF_SIZE (1 << 20)  /* largest datagram we accept: dumps use <= 32 KiB */
#define MAX_BATCH 512            /* datagrams handed to JS in one call */

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "vmhost_net: N-API call failed");   \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  const char *name = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err), name ? name : "?");
  napi_value m, e, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_string_utf8(env, name ? name : "UNKNOWN", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "code", v);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static char *get_str(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* ------------------------------------------------------------------ netlink sockets */

typedef struct nlsock {
  napi_env env;
  int fd;
  uint32_t port_id;
  int closing;
  int refed;
  uv_poll_t poll;
  napi_ref on_data;      /* function(errno: number, datagrams: Buffer[]) */
  napi_ref self;         /* weak ref to the JS object */
  napi_async_context actx;
  unsigned char *buf;
} nlsock;

static void nlsock_free_cb(uv_handle_t *h) {
  nlsock *s = (nlsock *)h->data;
  free(s->buf);
  free(s);
}

/* Close the socket; the memory goes once libuv is done with the poll handle. */
static void nlsock_close(nlsock *s, int delete_refs) {
  if (s->closing) return;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  if (delete_refs) {
    if (s->on_data) napi_delete_reference(s->env, s->on_data);
    s->on_data = NULL;
    if (s->actx) napi_async_destroy(s->env, s->actx);
    s->actx = NULL;
  }
  uv_close((uv_handle_t *)&s->poll, nlsock_free_cb);
}

static void call_js(nlsock *s, int err, unsigned char **bufs, size_t *lens, int n) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, arr, argv[2];
  napi_get_reference_value(env, s->on_data, &fn);
  /* napi_make_callback converts the receiver with ToObject: undefined would fail (silently). */
  napi_get_global(env, &recv);
  napi_create_int32(env, err, &argv[0]);
  napi_create_array_with_length(env, n, &arr);
  for (int i = 0; i < n; i++) {
    napi_value b;
    void *data;
    napi_create_buffer_copy(env, lens[i], bufs[i], &data, &b);
    napi_set_element(env, arr, i, b);
  }
  argv[1] = arr;
  napi_value result;
  napi_status st = napi_make_callback(env, s->actx, recv, fn, 2, argv, &result);
  bool pending = false;
  if (st != napi_ok) napi_is_exception_pending(env, &pending);
  if (pending) {
    /* An exception thrown by the JS handler: report it like any uncaught exception. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  } else if (st != napi_ok) {
    napi_fatal_error("vmhost_net", NAPI_AUTO_LENGTH, "napi_make_callback failed", NAPI_AUTO_LENGTH);
  }
  napi_close_handle_scope(env, scope);
}

static void nlsock_on_poll(uv_poll_t *h, int status, int events) {
  nlsock *s = (nlsock *)h->data;
  if (s->closing) return;
  if (status < 0) {
    /* libuv turns EPOLLERR into UV_EBADF and stops the handle. On a netlink socket EPOLLERR
       means a pending socket error, normally ENOBUFS (the receive queue overflowed): the socket
       is fine. Fetch (and clear) the error, poll again, report it and read on. */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (status == UV_EBADF && s->fd >= 0 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
        uv_poll_start(&s->poll, UV_READABLE, nlsock_on_poll) == 0) {
      if (soerr) call_js(s, soerr, NULL, NULL, 0);
      if (s->closing) return;
    } else {
      call_js(s, -status, NULL, NULL, 0);
      return;
    }
  }
  (void)events;
  /* Read everything that is queued, in batches of up to MAX_BATCH datagrams. */
  for (;;) {
    unsigned char *bufs[MAX_BATCH];
    size_t lens[MAX_BATCH];
    int n = 0, err = 0;
    size_t used = 0;
    while (n < MAX_BATCH) {
      /* Each datagram is copied to the heap so the receive buffer can be reused. */
      ssize_t r = recv(s->fd, s->buf, RECV_BUF_SIZE, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
        break;
      }
      if (r == 0) break;
      unsigned char *copy = malloc((size_t)r);
      if (!copy) { err = ENOMEM; break; }
      memcpy(copy, s->buf, (size_t)r);
      bufs[n] = copy;
      lens[n] = (size_t)r;
      used += (size_t)r;
      n++;
    }
    if (n > 0 || err) call_js(s, err, bufs, lens, n);
    for (int i = 0; i < n; i++) free(bufs[i]);
    /* Stop when the queue is drained; continue after ENOBUFS (the socket stays usable) or when
       the batch was full. The JS callback may have closed the socket. */
    if (s->closing) return;
    if (n < MAX_BATCH && err != ENOBUFS) return;
  }
}

static void nlsock_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  nlsock *s = (nlsock *)data;
  (void)env;
  if (!s->closing) {
    /* The JS object was collected while open: close now. References belong to a dying env. */
    if (s->on_data) napi_delete_reference(env, s->on_data);
    s->on_data = NULL;
    if (s->actx) napi_async_destroy(env, s->actx);
    s->actx = NULL;
    nlsock_close(s, 0);
  }
}

static nlsock *unwrap_sock(napi_env env, napi_value v) {
  nlsock *s = NULL;
  if (napi_unwrap(env, v, (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "expected a netlink socket handle");
    return NULL;
  }
  return s;
}

/* socketOpen(protocol, netnsFd (-1 = current), rcvbufBytes, onData) -> handle object
   The socket is created inside netnsFd's network namespace (the calling thread switches there
   and back); it stays bound to that namespace for its whole life. */
static napi_value sock_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], thisv;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &thisv, NULL));
  int32_t protocol, nsfd, rcvbuf;
  if (argc < 4 || !get_i32(env, argv[0], &protocol) || !get_i32(env, argv[1], &nsfd) ||
      !get_i32(env, argv[2], &rcvbuf)) {
    napi_throw_type_error(env, NULL, "socketOpen(protocol, netnsFd, rcvbuf, onData)");
    return NULL;
  }
  int orig = -1;
  if (nsfd >= 0) {
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) return throw_errno(env, "open(/proc/thread-self/ns/net)", errno);
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      int e = errno;
      close(orig);
      return throw_errno(env, "setns", e);
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  int sock_err = fd < 0 ? errno : 0;
  if (orig >= 0) {
    if (setns(orig, CLONE_NEWNET) < 0) {
      /* Cannot return to where we were: nothing sane is left to do in this process. */
      napi_fatal_error("vmhost_net", NAPI_AUTO_LENGTH, "setns back to the original namespace failed",
                       NAPI_AUTO_LENGTH);
    }
    close(orig);
  }
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", sock_err);

  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (rcvbuf > 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  int sndbuf = 1 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", e);
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);

  nlsock *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return throw_errno(env, "calloc", ENOMEM); }
  s->buf = malloc(RECV_BUF_SIZE);
  if (!s->buf) { free(s); close(fd); return throw_errno(env, "malloc", ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->port_id = sa.nl_pid;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r < 0) { free(s->buf); free(s); close(fd); return throw_errno(env, "uv_poll_init", -r); }
  s->poll.data = s;
  napi_create_reference(env, argv[3], 1, &s->on_data);
  napi_value res_name;
  napi_create_string_utf8(env, "vmhost:netlink", NAPI_AUTO_LENGTH, &res_name);
  napi_async_init(env, NULL, res_name, &s->actx);
  r = uv_poll_start(&s->poll, UV_READABLE, nlsock_on_poll);
  if (r < 0) {
    nlsock_close(s, 1);
    return throw_errno(env, "uv_poll_start", -r);
  }
  /* Idle sockets do not keep the process alive; the JS layer refs while requests are pending. */
  uv_unref((uv_handle_t *)&s->poll);

  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_wrap(env, obj, s, nlsock_finalize, NULL, NULL));
  napi_value v;
  napi_create_uint32(env, s->port_id, &v);
  napi_set_named_property(env, obj, "portId", v);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, obj, "fd", v);
  return obj;
}

/* socketSend(handle, buffer) -> bytes sent. Throws (EAGAIN included) on failure. */
static napi_value sock_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  if (s->closing) return throw_errno(env, "send", EBADF);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "socketSend: expected a Buffer");
    return NULL;
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t r;
  do {
    r = sendto(s->fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "sendto(AF_NETLINK)", errno);
  napi_value out;
  napi_create_int64(env, r, &out);
  return out;
}

/* socketAddMembership(handle, group) / socketDropMembership(handle, group) */
static napi_value sock_membership(napi_env env, napi_callback_info info, int opt) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  int32_t group;
  if (!get_i32(env, argv[1], &group)) {
    napi_throw_type_error(env, NULL, "expected a group number");
    return NULL;
  }
  if (s->closing) return throw_errno(env, "setsockopt", EBADF);
  if (setsockopt(s->fd, SOL_NETLINK, opt, &group, sizeof group) < 0)
    return throw_errno(env, "setsockopt(NETLINK_ADD_MEMBERSHIP)", errno);
  return NULL;
}
static napi_value sock_add_membership(napi_env env, napi_callback_info info) {
  return sock_membership(env, info, NETLINK_ADD_MEMBERSHIP);
}
static napi_value sock_drop_membership(napi_env env, napi_callback_info info) {
  return sock_membership(env, info, NETLINK_DROP_MEMBERSHIP);
}

/* socketRef(handle, on): whether this socket keeps the event loop alive. */
static napi_value sock_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  bool on = false;
  napi_get_value_bool(env, argv[1], &on);
  if (s->closing) return NULL;
  if (on) uv_ref((uv_handle_t *)&s->poll);
  else uv_unref((uv_handle_t *)&s->poll);
  return NULL;
}

static napi_value sock_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nlsock *s = NULL;
  if (napi_remove_wrap(env, argv[0], (void **)&s) != napi_ok || !s) return NULL; /* closed before */
  nlsock_close(s, 1);
  return NULL;
}

/* ------------------------------------------------------------------ namespaces and mounts */

/* setns(fd, nstype): moves the calling (main) thread. */
static napi_value js_setns(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, type;
  if (!get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &type)) {
    napi_throw_type_error(env, NULL, "setns(fd, nstype)");
    return NULL;
  }
  if (setns(fd, type) < 0) return throw_errno(env, "setns", errno);
  return NULL;
}

static napi_value js_unshare(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t flags;
  if (!get_i32(env, argv[0], &flags)) {
    napi_throw_type_error(env, NULL, "unshare(flags)");
    return NULL;
  }
  if (unshare(flags) < 0) return throw_errno(env, "unshare", errno);
  return NULL;
}

/* mount(source|null, target, fstype|null, flags, data|null) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *src = NULL, *tgt = NULL, *fs = NULL, *data = NULL;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t == napi_string) src = get_str(env, argv[0]);
  tgt = get_str(env, argv[1]);
  napi_typeof(env, argv[2], &t);
  if (t == napi_string) fs = get_str(env, argv[2]);
  int64_t flags = 0;
  napi_get_value_int64(env, argv[3], &flags);
  napi_typeof(env, argv[4], &t);
  if (t == napi_string) data = get_str(env, argv[4]);
  int r = tgt ? mount(src, tgt, fs, (unsigned long)flags, data) : -1;
  int e = tgt ? errno : EINVAL;
  free(src); free(tgt); free(fs); free(data);
  if (r < 0) return throw_errno(env, "mount", e);
  return NULL;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *tgt = get_str(env, argv[0]);
  int32_t flags = 0;
  get_i32(env, argv[1], &flags);
  int r = tgt ? umount2(tgt, flags) : -1;
  int e = tgt ? errno : EINVAL;
  free(tgt);
  if (r < 0) return throw_errno(env, "umount2", e);
  return NULL;
}

/* ------------------------------------------------------------------ TUN/TAP */

/* tunOpen(name, flags) -> { fd, name }: opens /dev/net/tun and attaches it to (or creates) the
   interface with TUNSETIFF. flags are IFF_* (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE).
   The interface lives in the network namespace of the calling thread at open time. */
static napi_value js_tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *name = get_str(env, argv[0]);
  int32_t flags;
  if (!name || !get_i32(env, argv[1], &flags)) {
    free(name);
    napi_throw_type_error(env, NULL, "tunOpen(name, flags)");
    return NULL;
  }
  if (strlen(name) >= IFNAMSIZ) {
    free(name);
    return throw_errno(env, "tunOpen", EINVAL);
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) { free(name); return throw_errno(env, "open(/dev/net/tun)", errno); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  free(name);
  ifr.ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "ioctl(TUNSETIFF)", e);
  }
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, obj, "fd", v);
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "name", v);
  return obj;
}

/* tunIoctl(fd, request, value): TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP take an integer value. */
static napi_value js_tun_ioctl(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, which, value;
  if (!get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &which) || !get_i32(env, argv[2], &value)) {
    napi_throw_type_error(env, NULL, "tunIoctl(fd, which, value)");
    return NULL;
  }
  unsigned long req;
  const char *name;
  switch (which) {
    case 0: req = TUNSETPERSIST; name = "ioctl(TUNSETPERSIST)"; break;
    case 1: req = TUNSETOWNER; name = "ioctl(TUNSETOWNER)"; break;
    case 2: req = TUNSETGROUP; name = "ioctl(TUNSETGROUP)"; break;
    default: napi_throw_range_error(env, NULL, "tunIoctl: unknown request"); return NULL;
  }
  if (ioctl(fd, req, (unsigned long)value) < 0) return throw_errno(env, name, errno);
  return NULL;
}

/* ------------------------------------------------------------------ module */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketOpen", NULL, sock_open, NULL, NULL, NULL, napi_default, NULL},
      {"socketSend", NULL, sock_send, NULL, NULL, NULL, napi_default, NULL},
      {"socketAddMembership", NULL, sock_add_membership, NULL, NULL, NULL, napi_default, NULL},
      {"socketDropMembership", NULL, sock_drop_membership, NULL, NULL, NULL, napi_default, NULL},
      {"socketRef", NULL, sock_ref, NULL, NULL, NULL, napi_default, NULL},
      {"socketClose", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL},
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_default, NULL},
      {"unshare", NULL, js_unshare, NULL, NULL, NULL, napi_default, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_default, NULL},
      {"tunOpen", NULL, js_tun_open, NULL, NULL, NULL, napi_default, NULL},
      {"tunIoctl", NULL, js_tun_ioctl, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
