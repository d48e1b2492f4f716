// vmhost_net: the small native part of @vmhost/net.
//
// It owns netlink sockets (so that NETLINK_EXT_ACK, NETLINK_CAP_ACK, the receive buffer size and
// group membership are ours to set), drives them from libuv's poll on the thread of the Node
// environment that opened them and hands the datagrams to JavaScript in batches, one Buffer each.
// Everything above the datagram (framing, sequence numbers, dumps, errors) is TypeScript.
//
// Receiving: each datagram is first peeked (MSG_PEEK|MSG_TRUNC) into one receive buffer per Node
// environment, right after the datagrams read before it in the same batch, which gives its true
// length; a larger one than the room left is then read whole after growing the buffer, a smaller
// one is dropped from the queue without a second copy. A batch (up to 512 datagrams, or until
// 256 KiB are read) then goes to JavaScript as one Buffer (one copy) with the end offset of each
// datagram: not one Buffer per datagram, which cost an allocation each. Nothing is ever truncated.
//
// Lifetime: the JavaScript handle object owns the data callback (a hidden property); the addon
// holds the handle only weakly while the socket is idle (unref'd) and strongly while it is ref'd,
// so an idle socket that JavaScript forgot is closed by the garbage collector (the finaliser).
//
// It also wraps the few syscalls that Node lacks and that must run on the calling (main) thread:
// setns, unshare(CLONE_NEWNET), mount/umount2 (for /run/netns), the TUN/TAP ioctls, the names
// of links by index (SIOCGIFNAME, for the list operations), and getrlimit/setrlimit of
// RLIMIT_NOFILE (the IPv6 proxy raises its file limit). pidwatch.c watches processes for their exit
// (pidfd).
// Every function throws an Error with `code` (errno name), `errno` and `syscall` on failure.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "vmhost_net: N-API call failed");   \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* The errno name of an error number: our own table, so that no libc extension is needed
   (glibc's strerrorname_np exists only from 2.32; musl has none). NULL when unknown. */
static const char *errno_name(int err) {
  switch (err) {
#define E(x) case x: return #x;
#include "errno_names.h"
#undef E
    default: return NULL;
  }
}

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  const char *name = errno_name(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", syscall, strerror(err), name ? name : "?");
  napi_value m, e, v;
  /* If building the error fails, throw the plainest one there is; never leave nothing pending. */
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok || napi_create_error(env, NULL, m, &e) != napi_ok) {
    napi_throw_error(env, name ? name : "UNKNOWN", msg);
    return NULL;
  }
  if (napi_create_string_utf8(env, name ? name : "UNKNOWN", NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, e, "code", v);
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

/* For the other source files of the addon (pidwatch.c). */
napi_value vmhost_throw_errno(napi_env env, const char *syscall, int err) {
  return throw_errno(env, syscall, err);
}
napi_value vmhost_pid_watch(napi_env env, napi_callback_info info);
napi_value vmhost_pid_watch_close(napi_env env, napi_callback_info info);

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* A JS string as a malloc'd C string, or NULL (not a string, or no memory). */
static char *get_str(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

#define RECV_INITIAL (64 * 1024) /* room kept free for the next datagram (and the buffer's first size) */
#define MAX_BATCH 512             /* datagrams handed to JS in one call */
#define BATCH_BYTES (256 * 1024)  /* a batch ends once this much is read */

/* Per Node environment (main thread or worker): the receive buffer shared by its sockets, which
   all receive on that environment's one thread. */
typedef struct {
  unsigned char *buf;
  size_t cap;
} envdata;

static void envdata_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  envdata *d = data;
  free(d->buf);
  free(d);
}

static envdata *get_envdata(napi_env env) {
  envdata *d = NULL;
  if (napi_get_instance_data(env, (void **)&d) == napi_ok && d) return d;
  d = calloc(1, sizeof *d);
  if (!d) return NULL;
  if (napi_set_instance_data(env, d, envdata_free, NULL) != napi_ok) {
    free(d);
    return NULL;
  }
  return d;
}

/* Makes the buffer at least `want` bytes. 0 on success, ENOMEM otherwise (the old one is kept). */
static int envdata_reserve(envdata *d, size_t want) {
  if (d->cap >= want) return 0;
  size_t cap = d->cap ? d->cap : RECV_INITIAL;
  while (cap < want) cap *= 2;
  unsigned char *b = realloc(d->buf, cap);
  if (!b) return ENOMEM;
  d->buf = b;
  d->cap = cap;
  return 0;
}

/* Receives the next datagram whole into d->buf at offset `at` (after the ones read before it in
   the batch, which growing keeps). Returns its length, 0 when the queue is empty, or -errno. The
   peek (MSG_TRUNC) gives the true length; a datagram larger than the room left grows the buffer
   and is then read whole; a smaller one, already in the buffer, is only dropped from the queue
   (length 0 read: no second copy). The peek passes all the room left (at least RECV_INITIAL) so
   that the kernel keeps sizing dump datagrams for a large reader (netlink's max_recvmsg_len,
   32 KiB). */
static ssize_t recv_datagram(int fd, envdata *d, size_t at) {
  if (envdata_reserve(d, at + RECV_INITIAL)) return -ENOMEM;
  for (;;) {
    ssize_t n = recv(fd, d->buf + at, d->cap - at, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
    if ((size_t)n > d->cap - at) {
      if (envdata_reserve(d, at + (size_t)n)) return -ENOMEM;
      continue; /* peek again into the grown buffer (the datagram is still first in line) */
    }
    ssize_t r;
    do {
      r = recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r != n) return -EPROTO; /* another reader on our fd: cannot happen, never hand out wrong bytes */
    return n;
  }
}

/* ------------------------------------------------------------------ netlink sockets */

typedef struct nlsock {
  napi_env env;
  int fd;
  uint32_t port_id;
  int closing;
  int refed;
  uv_poll_t poll;
  napi_ref self; /* the JS handle object: weak while idle, strong while ref'd */
  napi_async_context actx;
} nlsock;

static void nlsock_free_cb(uv_handle_t *h) {
  free(h->data);
}

/* Closes the socket and lets go of the JS references; the memory goes once libuv is done with the
   poll handle. */
static void nlsock_close(nlsock *s) {
  if (s->closing) return;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  if (s->self) napi_delete_reference(s->env, s->self);
  s->self = NULL;
  if (s->actx) napi_async_destroy(s->env, s->actx);
  s->actx = NULL;
  uv_close((uv_handle_t *)&s->poll, nlsock_free_cb);
}

/* Hands `err`, `batch` (the datagrams read, one after another, as one Buffer) and `ends` (a
   Uint32Array: where each datagram ends in it) to the handle's onData; NULL ones go as undefined.
   Returns 0, or -1 when the handle is gone (collected: its finaliser closes the socket) or N-API
   failed (the socket is then closed). */
static int call_js(nlsock *s, int err, napi_value batch, napi_value ends) {
  napi_env env = s->env;
  napi_value obj, fn, recv, argv[3], result;
  if (!s->self || napi_get_reference_value(env, s->self, &obj) != napi_ok || obj == NULL) return -1;
  if (napi_get_named_property(env, obj, "onData", &fn) != napi_ok || napi_create_int32(env, err, &argv[0]) != napi_ok ||
      napi_get_global(env, &recv) != napi_ok) {
    nlsock_close(s);
    return -1;
  }
  napi_value undef;
  napi_get_undefined(env, &undef);
  argv[1] = batch ? batch : undef;
  argv[2] = ends ? ends : undef;
  /* napi_make_callback converts the receiver with ToObject: undefined would fail (silently). */
  napi_status st = napi_make_callback(env, s->actx, recv, fn, 3, argv, &result);
  bool pending = false;
  if (st != napi_ok) napi_is_exception_pending(env, &pending);
  if (pending) {
    /* An exception thrown by the JS handler: report it like any uncaught exception. */
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  } else if (st != napi_ok) {
    napi_fatal_error("vmhost_net", NAPI_AUTO_LENGTH, "napi_make_callback failed", NAPI_AUTO_LENGTH);
  }
  return 0;
}

/* The JS values of a batch: the `used` bytes read as one Buffer and the `n` end offsets as a
   Uint32Array. 0 on success, -1 when N-API failed. */
static int batch_values(napi_env env, const unsigned char *buf, size_t used, const uint32_t *ends, uint32_t n, napi_value *batch,
                        napi_value *arr) {
  void *data;
  napi_value ab;
  if (napi_create_buffer_copy(env, used, buf, &data, batch) != napi_ok) return -1;
  if (napi_create_arraybuffer(env, n * sizeof(uint32_t), &data, &ab) != napi_ok) return -1;
  memcpy(data, ends, n * sizeof(uint32_t));
  return napi_create_typedarray(env, napi_uint32_array, n, ab, 0, arr) == napi_ok ? 0 : -1;
}

/* Reads up to MAX_BATCH datagrams (or until BATCH_BYTES are read) into the environment's buffer,
   one after another, and hands them to JS as one Buffer with their end offsets. Returns 1 when
   there may be more to read (a full batch, or ENOBUFS), 0 otherwise. */
static int read_batch(nlsock *s, envdata *d) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  uint32_t ends[MAX_BATCH];
  uint32_t n = 0;
  size_t used = 0;
  int err = 0;
  while (!err && n < MAX_BATCH && used < BATCH_BYTES) {
    ssize_t r = recv_datagram(s->fd, d, used);
    if (r == 0) break;
    if (r < 0) {
      err = (int)-r;
      break;
    }
    used += (size_t)r;
    ends[n++] = (uint32_t)used;
  }
  int more = 0;
  if (n > 0 || err) {
    napi_value batch = NULL, arr = NULL;
    if (n > 0 && batch_values(env, d->buf, used, ends, n, &batch, &arr) != 0) {
      /* The datagrams are gone from the queue: say so like lost ones (the transport's barrier then
         settles whatever they answered). */
      batch = arr = NULL;
      err = ENOBUFS;
    }
    if (call_js(s, err, batch, arr) == 0 && !s->closing) more = n == MAX_BATCH || used >= BATCH_BYTES || err == ENOBUFS;
  }
  napi_close_handle_scope(env, scope);
  return more;
}

static void nlsock_on_poll(uv_poll_t *h, int status, int events) {
  nlsock *s = (nlsock *)h->data;
  (void)events;
  if (s->closing) return;
  napi_handle_scope scope;
  if (status < 0) {
    /* libuv turns EPOLLERR into UV_EBADF and stops the handle. On a netlink socket EPOLLERR
       means a pending socket error, normally ENOBUFS (the receive queue overflowed): the socket
       is fine. Fetch (and clear) the error, poll again, report it and read on. */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    int err = -status;
    if (status == UV_EBADF && s->fd >= 0 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
        uv_poll_start(&s->poll, UV_READABLE, nlsock_on_poll) == 0) {
      err = soerr;
    } else {
      soerr = -1; /* fatal: report and stop */
    }
    if (err && napi_open_handle_scope(s->env, &scope) == napi_ok) {
      call_js(s, err, NULL, NULL);
      napi_close_handle_scope(s->env, scope);
    }
    if (soerr < 0 || s->closing) return;
  }
  envdata *d = get_envdata(s->env);
  if (!d) {
    if (napi_open_handle_scope(s->env, &scope) == napi_ok) {
      call_js(s, ENOMEM, NULL, NULL);
      napi_close_handle_scope(s->env, scope);
    }
    return;
  }
  /* Read everything that is queued, in batches; continue after ENOBUFS (the socket stays usable).
     The JS callback may close the socket. */
  while (!s->closing && read_batch(s, d)) {
  }
}

/* The JS handle was collected: an unclosed socket is closed now. */
static void nlsock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nlsock_close((nlsock *)data);
}

static nlsock *unwrap_sock(napi_env env, napi_value v) {
  nlsock *s = NULL;
  if (napi_unwrap(env, v, (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "expected an open netlink socket handle");
    return NULL;
  }
  return s;
}

/* A netlink socket made inside the network namespace `nsfd` (-1: the current one): the calling
   thread switches there and back. Returns the fd, or -errno with `*failed` naming the call. */
static int netlink_socket_in(int nsfd, int type, int protocol, const char **failed) {
  int orig = -1;
  if (nsfd >= 0) {
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) {
      *failed = "open(/proc/thread-self/ns/net)";
      return -errno;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      int e = errno;
      close(orig);
      *failed = "setns";
      return -e;
    }
  }
  int fd = socket(AF_NETLINK, type, protocol);
  int sock_err = fd < 0 ? errno : 0;
  if (orig >= 0) {
    if (setns(orig, CLONE_NEWNET) < 0) {
      /* Cannot return to where we were: nothing sane is left to do in this process. */
      napi_fatal_error("vmhost_net", NAPI_AUTO_LENGTH, "setns back to the original namespace failed",
                       NAPI_AUTO_LENGTH);
    }
    close(orig);
  }
  if (fd < 0) {
    *failed = "socket(AF_NETLINK)";
    return -sock_err;
  }
  return fd;
}

/* socketOpen(protocol, netnsFd (-1 = current), rcvbufBytes, onData) -> handle object
   The socket is created inside netnsFd's network namespace (the calling thread switches there
   and back); it stays bound to that namespace for its whole life. */
static napi_value sock_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t protocol, nsfd, rcvbuf;
  napi_valuetype fntype = napi_undefined;
  if (argc < 4 || !get_i32(env, argv[0], &protocol) || !get_i32(env, argv[1], &nsfd) ||
      !get_i32(env, argv[2], &rcvbuf) || napi_typeof(env, argv[3], &fntype) != napi_ok || fntype != napi_function) {
    napi_throw_type_error(env, NULL, "socketOpen(protocol, netnsFd, rcvbuf, onData)");
    return NULL;
  }
  envdata *d = get_envdata(env);
  if (!d || envdata_reserve(d, RECV_INITIAL)) return throw_errno(env, "malloc", ENOMEM);
  const char *failed = NULL;
  int fd = netlink_socket_in(nsfd, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol, &failed);
  if (fd < 0) return throw_errno(env, failed, -fd);

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
  socklen_t sl = sizeof sa;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", e);
  }

  /* The handle object, owning the callback (read-only, not enumerable). */
  napi_value obj, v;
  napi_property_descriptor props[] = {
      {"onData", NULL, NULL, NULL, NULL, argv[3], napi_default, NULL},
      {"portId", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_create_object(env, &obj) != napi_ok || napi_create_uint32(env, sa.nl_pid, &v) != napi_ok) {
    close(fd);
    return throw_errno(env, "napi_create_object", ENOMEM);
  }
  props[1].value = v;
  if (napi_define_properties(env, obj, 2, props) != napi_ok) {
    close(fd);
    return throw_errno(env, "napi_define_properties", ENOMEM);
  }

  nlsock *s = calloc(1, sizeof *s);
  if (!s) { close(fd); return throw_errno(env, "calloc", ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->port_id = sa.nl_pid;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) { free(s); close(fd); return throw_errno(env, "napi_get_uv_event_loop", EINVAL); }
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r < 0) { free(s); close(fd); return throw_errno(env, "uv_poll_init", -r); }
  s->poll.data = s;
  /* From here on nlsock_close cleans up whatever exists (it frees s once libuv lets go). */
  napi_value res_name;
  if (napi_create_string_utf8(env, "vmhost:netlink", NAPI_AUTO_LENGTH, &res_name) != napi_ok ||
      napi_async_init(env, NULL, res_name, &s->actx) != napi_ok) {
    s->actx = NULL;
    nlsock_close(s);
    return throw_errno(env, "napi_async_init", ENOMEM);
  }
  if (napi_wrap(env, obj, s, nlsock_finalize, NULL, NULL) != napi_ok) {
    nlsock_close(s);
    return throw_errno(env, "napi_wrap", ENOMEM);
  }
  if (napi_create_reference(env, obj, 0, &s->self) != napi_ok) {
    s->self = NULL;
    void *unused;
    napi_remove_wrap(env, obj, &unused);
    nlsock_close(s);
    return throw_errno(env, "napi_create_reference", ENOMEM);
  }
  r = uv_poll_start(&s->poll, UV_READABLE, nlsock_on_poll);
  if (r < 0) {
    void *unused;
    napi_remove_wrap(env, obj, &unused);
    nlsock_close(s);
    return throw_errno(env, "uv_poll_start", -r);
  }
  /* Idle sockets do not keep the process alive; the JS layer refs while requests are pending. */
  uv_unref((uv_handle_t *)&s->poll);
  return obj;
}

/* socketSend(handle, buffer[, portId = 0 (the kernel)]) -> bytes sent. Throws (EAGAIN included)
   on failure. A non-zero portId sends to another netlink socket (root only). */
static napi_value sock_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "socketSend(handle, buffer[, portId])");
    return NULL;
  }
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  if (s->closing) return throw_errno(env, "send", EBADF);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "socketSend: expected a Buffer");
    return NULL;
  }
  uint32_t port = 0;
  if (argc > 2 && napi_get_value_uint32(env, argv[2], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "socketSend: expected a port id");
    return NULL;
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_pid = port;
  ssize_t r;
  do {
    r = sendto(s->fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "sendto(AF_NETLINK)", errno);
  napi_value out;
  CHECK(napi_create_int64(env, r, &out));
  return out;
}

/* socketAddMembership(handle, group) */
static napi_value sock_add_membership(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "socketAddMembership(handle, group)");
    return NULL;
  }
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  int32_t group;
  if (!get_i32(env, argv[1], &group)) {
    napi_throw_type_error(env, NULL, "expected a group number");
    return NULL;
  }
  if (s->closing) return throw_errno(env, "setsockopt", EBADF);
  if (setsockopt(s->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
    return throw_errno(env, "setsockopt(NETLINK_ADD_MEMBERSHIP)", errno);
  return NULL;
}

/* socketRef(handle, on): whether this socket keeps the event loop alive, and its handle object
   alive (a socket with requests pending must not be collected). */
static napi_value sock_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "socketRef(handle, on)");
    return NULL;
  }
  nlsock *s = unwrap_sock(env, argv[0]);
  if (!s) return NULL;
  bool on = false;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (s->closing || (int)on == s->refed) return NULL;
  uint32_t count;
  CHECK(on ? napi_reference_ref(env, s->self, &count) : napi_reference_unref(env, s->self, &count));
  s->refed = on;
  if (on) uv_ref((uv_handle_t *)&s->poll);
  else uv_unref((uv_handle_t *)&s->poll);
  return NULL;
}

static napi_value sock_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return NULL;
  nlsock *s = NULL;
  if (napi_remove_wrap(env, argv[0], (void **)&s) != napi_ok || !s) return NULL; /* closed before */
  nlsock_close(s);
  return NULL;
}

/* errnoName(n) -> 'EEXIST' or null: the addon's own errno table (what its errors carry as `code`). */
static napi_value js_errno_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n;
  if (argc < 1 || !get_i32(env, argv[0], &n)) {
    napi_throw_type_error(env, NULL, "errnoName(number)");
    return NULL;
  }
  const char *name = errno_name(n);
  if (!name) {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &out));
  return out;
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
  char *str[5] = {NULL, NULL, NULL, NULL, NULL};
  int64_t flags = 0;
  int bad = napi_get_value_int64(env, argv[3], &flags) != napi_ok;
  for (int i = 0; i < 5 && !bad; i++) {
    if (i == 3) continue;
    napi_valuetype t;
    if (napi_typeof(env, argv[i], &t) != napi_ok) bad = 1;
    else if (t == napi_string) bad = (str[i] = get_str(env, argv[i])) == NULL;
    else if (t != napi_null || i == 1) bad = 1; /* the target is required */
  }
  int r = -1, e = 0;
  if (!bad) {
    r = mount(str[0], str[1], str[2], (unsigned long)flags, str[4]);
    e = errno;
  }
  for (int i = 0; i < 5; i++) free(str[i]);
  if (bad) {
    napi_throw_type_error(env, NULL, "mount(source|null, target, fstype|null, flags, data|null)");
    return NULL;
  }
  if (r < 0) return throw_errno(env, "mount", e);
  return NULL;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *tgt = get_str(env, argv[0]);
  int32_t flags = 0;
  if (!tgt || !get_i32(env, argv[1], &flags)) {
    free(tgt);
    napi_throw_type_error(env, NULL, "umount2(target, flags)");
    return NULL;
  }
  int r = umount2(tgt, flags);
  int e = errno;
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
  napi_value obj, v, w;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      napi_set_named_property(env, obj, "fd", v) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &w) != napi_ok ||
      napi_set_named_property(env, obj, "name", w) != napi_ok) {
    close(fd); /* nobody could own it */
    return throw_errno(env, "tunOpen", ENOMEM);
  }
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

/* ------------------------------------------------------------------ resource limits */

/* A limit as a JS number: RLIM_INFINITY is Infinity (no RLIMIT_NOFILE reaches 2^53). */
static napi_status rlim_value(napi_env env, rlim_t v, napi_value *out) {
  return napi_create_double(env, v == RLIM_INFINITY ? (double)INFINITY : (double)v, out);
}

/* A JS number as a limit: Infinity is RLIM_INFINITY; otherwise a whole number >= 0. */
static int get_rlim(napi_env env, napi_value v, rlim_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < 0) return 0;
  if (d == (double)INFINITY) { *out = RLIM_INFINITY; return 1; }
  if (d >= 9007199254740992.0 || d != floor(d)) return 0;
  *out = (rlim_t)d;
  return 1;
}

/* noFileLimit() -> { soft, hard }: getrlimit(RLIMIT_NOFILE) of this process. */
static napi_value js_nofile_get(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return throw_errno(env, "getrlimit(RLIMIT_NOFILE)", errno);
  napi_value obj, soft, hard;
  CHECK(napi_create_object(env, &obj));
  CHECK(rlim_value(env, rl.rlim_cur, &soft));
  CHECK(rlim_value(env, rl.rlim_max, &hard));
  CHECK(napi_set_named_property(env, obj, "soft", soft));
  CHECK(napi_set_named_property(env, obj, "hard", hard));
  return obj;
}

/* setNoFileLimit(soft, hard): setrlimit(RLIMIT_NOFILE). Raising the hard limit needs
   CAP_SYS_RESOURCE and stops at fs.nr_open (EPERM beyond it). */
static napi_value js_nofile_set(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct rlimit rl;
  if (argc < 2 || !get_rlim(env, argv[0], &rl.rlim_cur) || !get_rlim(env, argv[1], &rl.rlim_max)) {
    napi_throw_type_error(env, NULL, "setNoFileLimit(soft, hard): whole numbers >= 0 or Infinity");
    return NULL;
  }
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return throw_errno(env, "setrlimit(RLIMIT_NOFILE)", errno);
  return NULL;
}

/* ifNames(netnsFd, Uint32Array indices) -> Promise<Array<string | null>>: the name of each link
   index in the namespace `netnsFd` (-1: the current one), null for an index without a link. A
   socket is made there now (on the calling thread); the lookups (one SIOCGIFNAME per index: any
   socket's ioctl reaches its namespace's devices) run on a thread of libuv's pool, so that the
   caller can decode meanwhile. The names are those at the time of the lookups, like a dump's. */
typedef struct {
  int fd;
  size_t n;
  uint32_t *idx;
  char (*names)[IFNAMSIZ]; /* "" for an index without a link */
  int err;                 /* an ioctl error other than ENODEV */
  napi_deferred deferred;
  napi_async_work work;
} ifnames_job;

static void ifnames_free(ifnames_job *j) {
  if (j->fd >= 0) close(j->fd);
  free(j->idx);
  free(j->names);
  free(j);
}

static void ifnames_execute(napi_env env, void *data) {
  (void)env;
  ifnames_job *j = data;
  for (size_t i = 0; i < j->n && !j->err; i++) {
    j->names[i][0] = 0;
    if (j->idx[i] == 0 || j->idx[i] > INT32_MAX) continue;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = (int)j->idx[i];
    if (ioctl(j->fd, SIOCGIFNAME, &ifr) == 0) {
      memcpy(j->names[i], ifr.ifr_name, IFNAMSIZ);
      j->names[i][IFNAMSIZ - 1] = 0;
    } else if (errno != ENODEV) {
      j->err = errno;
    }
  }
}

/* Makes the error object of errno `err` (as throw_errno does), for a rejection. */
static napi_value errno_error(napi_env env, const char *syscall, int err) {
  napi_value e = NULL, exc;
  throw_errno(env, syscall, err);
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) e = exc;
  return e;
}

static void ifnames_complete(napi_env env, napi_status status, void *data) {
  ifnames_job *j = data;
  napi_value result = NULL, nul;
  int err = status != napi_ok ? ECANCELED : j->err;
  if (!err && (napi_create_array_with_length(env, j->n, &result) != napi_ok || napi_get_null(env, &nul) != napi_ok)) err = ENOMEM;
  for (size_t i = 0; !err && i < j->n; i++) {
    napi_value v = nul;
    if (j->names[i][0] && napi_create_string_utf8(env, j->names[i], NAPI_AUTO_LENGTH, &v) != napi_ok) err = ENOMEM;
    else if (napi_set_element(env, result, (uint32_t)i, v) != napi_ok) err = ENOMEM;
  }
  if (err) napi_reject_deferred(env, j->deferred, errno_error(env, "ioctl(SIOCGIFNAME)", err));
  else napi_resolve_deferred(env, j->deferred, result);
  napi_delete_async_work(env, j->work);
  ifnames_free(j);
}

static napi_value js_if_names(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t nsfd;
  bool is_ta = false;
  napi_typedarray_type tt;
  size_t n = 0;
  void *data = NULL;
  if (argc < 2 || !get_i32(env, argv[0], &nsfd) || napi_is_typedarray(env, argv[1], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[1], &tt, &n, &data, NULL, NULL) != napi_ok || tt != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "ifNames(netnsFd, Uint32Array)");
    return NULL;
  }
  ifnames_job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "ifNames", ENOMEM);
  j->fd = -1;
  j->n = n;
  j->idx = malloc(n ? n * sizeof *j->idx : 1);
  j->names = malloc(n ? n * sizeof *j->names : 1);
  if (!j->idx || !j->names) {
    ifnames_free(j);
    return throw_errno(env, "ifNames", ENOMEM);
  }
  if (n) memcpy(j->idx, data, n * sizeof *j->idx);
  const char *failed = NULL;
  int fd = netlink_socket_in(nsfd, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE, &failed);
  if (fd < 0) {
    ifnames_free(j);
    return throw_errno(env, failed, -fd);
  }
  j->fd = fd;
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    ifnames_free(j);
    return throw_errno(env, "napi_create_promise", ENOMEM);
  }
  if (napi_create_string_utf8(env, "vmhost:ifNames", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, ifnames_execute, ifnames_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    /* the promise stays pending forever otherwise: reject it, then let go */
    napi_reject_deferred(env, j->deferred, errno_error(env, "napi_queue_async_work", ENOMEM));
    if (j->work) napi_delete_async_work(env, j->work);
    ifnames_free(j);
  }
  return promise;
}

/* linkWatchOpen(netnsFd) -> fd: a netlink socket in that namespace (-1: the current one),
   subscribed to RTNLGRP_LINK, non-blocking and not polled: read only by linkWatchRead. The caller
   closes the fd. For a cache of link names kept current by the kernel's notifications. */
static napi_value js_link_watch_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t nsfd;
  if (argc < 1 || !get_i32(env, argv[0], &nsfd)) {
    napi_throw_type_error(env, NULL, "linkWatchOpen(netnsFd)");
    return NULL;
  }
  const char *failed = NULL;
  int fd = netlink_socket_in(nsfd, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE, &failed);
  if (fd < 0) return throw_errno(env, failed, -fd);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  int group = 1; /* RTNLGRP_LINK */
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "linkWatchOpen", e);
  }
  napi_value v;
  if (napi_create_int32(env, fd, &v) != napi_ok) {
    close(fd);
    return throw_errno(env, "linkWatchOpen", ENOMEM);
  }
  return v;
}

/* linkWatchRead(fd) -> Array: what the notifications queued on a linkWatchOpen socket say, in
   order: [index, name] for an RTM_NEWLINK (its IFLA_IFNAME), [index, null] for an RTM_DELLINK;
   and `-1, null` where notifications were lost (ENOBUFS) or one could not be read (damaged):
   everything known before that point is stale. Reads until the queue is empty. */
static napi_value js_link_watch_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "linkWatchRead(fd)");
    return NULL;
  }
  envdata *d = get_envdata(env);
  if (!d) return throw_errno(env, "linkWatchRead", ENOMEM);
  napi_value arr, nul;
  if (napi_create_array(env, &arr) != napi_ok || napi_get_null(env, &nul) != napi_ok) return throw_errno(env, "linkWatchRead", ENOMEM);
  uint32_t n = 0;
#define PUSH(index, name)                                                                          \
  do {                                                                                             \
    napi_value iv_;                                                                                \
    if (napi_create_int32(env, (index), &iv_) != napi_ok || napi_set_element(env, arr, n++, iv_) != napi_ok || \
        napi_set_element(env, arr, n++, (name)) != napi_ok)                                        \
      return throw_errno(env, "linkWatchRead", ENOMEM);                                            \
  } while (0)
  for (;;) {
    ssize_t r = recv_datagram(fd, d, 0);
    if (r == 0) break;
    if (r == -ENOBUFS) {
      PUSH(-1, nul);
      continue;
    }
    if (r < 0) return throw_errno(env, "recv", (int)-r);
    const unsigned char *b = d->buf;
    size_t len = (size_t)r, off = 0;
    while (len - off >= NLMSG_HDRLEN) {
      struct nlmsghdr h;
      memcpy(&h, b + off, sizeof h);
      if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len - off) break; /* damaged: lost below */
      const unsigned char *p = b + off + NLMSG_HDRLEN;
      size_t plen = h.nlmsg_len - NLMSG_HDRLEN;
      if ((h.nlmsg_type == 16 || h.nlmsg_type == 17) && plen >= 16) { /* RTM_NEWLINK, RTM_DELLINK; ifinfomsg */
        int32_t index;
        memcpy(&index, p + 4, 4);
        napi_value name = nul;
        if (h.nlmsg_type == 16) {
          int found = 0;
          for (size_t a = 16; plen - a >= 4 && !found;) {
            uint16_t alen, atype;
            memcpy(&alen, p + a, 2);
            memcpy(&atype, p + a + 2, 2);
            if (alen < 4 || alen > plen - a) break;
            if ((atype & 0x3fff) == 3 /* IFLA_IFNAME */ && alen > 4 && memchr(p + a + 4, 0, alen - 4) == p + a + alen - 1) {
              if (napi_create_string_utf8(env, (const char *)p + a + 4, alen - 5, &name) != napi_ok) return throw_errno(env, "linkWatchRead", ENOMEM);
              found = 1;
            }
            a += (alen + 3u) & ~3u;
          }
          if (!found) index = -1; /* a NEWLINK without a name: cannot be applied */
        }
        PUSH(index, name);
      }
      off += (h.nlmsg_len + 3u) & ~3u;
    }
    if (off < len) PUSH(-1, nul); /* a damaged message or trailing bytes */
  }
#undef PUSH
  return arr;
}

/* ------------------------------------------------------------------ module */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socketOpen", NULL, sock_open, NULL, NULL, NULL, napi_default, NULL},
      {"socketSend", NULL, sock_send, NULL, NULL, NULL, napi_default, NULL},
      {"socketAddMembership", NULL, sock_add_membership, NULL, NULL, NULL, napi_default, NULL},
      {"errnoName", NULL, js_errno_name, NULL, NULL, NULL, napi_default, NULL},
      {"socketRef", NULL, sock_ref, NULL, NULL, NULL, napi_default, NULL},
      {"socketClose", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL},
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_default, NULL},
      {"unshare", NULL, js_unshare, NULL, NULL, NULL, napi_default, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_default, NULL},
      {"tunOpen", NULL, js_tun_open, NULL, NULL, NULL, napi_default, NULL},
      {"tunIoctl", NULL, js_tun_ioctl, NULL, NULL, NULL, napi_default, NULL},
      {"noFileLimit", NULL, js_nofile_get, NULL, NULL, NULL, napi_default, NULL},
      {"setNoFileLimit", NULL, js_nofile_set, NULL, NULL, NULL, napi_default, NULL},
      {"ifNames", NULL, js_if_names, NULL, NULL, NULL, napi_default, NULL},
      {"linkWatchOpen", NULL, js_link_watch_open, NULL, NULL, NULL, napi_default, NULL},
      {"linkWatchRead", NULL, js_link_watch_read, NULL, NULL, NULL, napi_default, NULL},
      {"pidWatch", NULL, vmhost_pid_watch, NULL, NULL, NULL, napi_default, NULL},
      {"pidWatchClose", NULL, vmhost_pid_watch_close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
