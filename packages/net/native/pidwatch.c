// Process exit, watched: a pidfd (pidfd_open(2), Linux 5.3) polled by libuv on the thread of the
// Node environment that opened it. The pidfd becomes readable when the process exits (a zombie
// counts: nothing waits for its reaping), and it names that process, never a later one with the
// same pid. The callback is called once; the watch then closes itself.
//
// Lifetime: the watch is owned twice, by libuv's poll handle and by the JavaScript handle object
// (napi_wrap); it is freed when both have let go (the handle is closed by libuv, and the object
// is collected or explicitly closed with pidWatchClose). While it watches, the poll handle keeps
// the event loop alive and the callback is held strongly.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

napi_value vmhost_throw_errno(napi_env env, const char *syscall, int err);

typedef struct pidwatch {
  napi_env env;
  int fd;
  int closing;
  int owners; /* libuv's handle and the JavaScript object */
  uv_poll_t poll;
  napi_ref cb;
  napi_async_context actx;
} pidwatch;

static void pidwatch_release(pidwatch *w) {
  if (--w->owners == 0) free(w);
}

static void pidwatch_free_cb(uv_handle_t *h) {
  pidwatch_release((pidwatch *)h->data);
}

/* Stops watching; the poll handle lets go once libuv is done with it. */
static void pidwatch_close(pidwatch *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  if (w->cb) napi_delete_reference(w->env, w->cb);
  w->cb = NULL;
  if (w->actx) napi_async_destroy(w->env, w->actx);
  w->actx = NULL;
  uv_close((uv_handle_t *)&w->poll, pidwatch_free_cb);
}

static void pidwatch_on_poll(uv_poll_t *h, int status, int events) {
  pidwatch *w = (pidwatch *)h->data;
  (void)status;
  (void)events;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    pidwatch_close(w);
    return;
  }
  napi_value fn = NULL, recv, result;
  napi_async_context actx = w->actx;
  w->actx = NULL; /* destroyed below, after the call */
  int have = w->cb && napi_get_reference_value(env, w->cb, &fn) == napi_ok && fn != NULL && napi_get_global(env, &recv) == napi_ok;
  /* Closed first: the callback sees a finished watch (and may close it again: a no-op). */
  pidwatch_close(w);
  if (have) {
    napi_status st = napi_make_callback(env, actx, recv, fn, 0, NULL, &result);
    bool pending = false;
    if (st != napi_ok) napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  if (actx) napi_async_destroy(env, actx);
  napi_close_handle_scope(env, scope);
}

static void pidwatch_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pidwatch *w = (pidwatch *)data;
  pidwatch_close(w);
  pidwatch_release(w);
}

/* pidWatch(pid, onExit) -> handle: onExit() is called once when the process exits. Throws ESRCH
   when there is no such process (it has been reaped already). */
napi_value vmhost_pid_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t pid = 0;
  napi_valuetype fntype = napi_undefined;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0 || napi_typeof(env, argv[1], &fntype) != napi_ok ||
      fntype != napi_function) {
    napi_throw_type_error(env, NULL, "pidWatch(pid > 0, onExit)");
    return NULL;
  }
  int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return vmhost_throw_errno(env, "pidfd_open", errno);
  uv_loop_t *loop;
  pidwatch *w = calloc(1, sizeof *w);
  if (!w) {
    close(fd);
    return vmhost_throw_errno(env, "calloc", ENOMEM);
  }
  w->env = env;
  w->fd = fd;
  w->owners = 1;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &w->poll, fd) != 0) {
    close(fd);
    free(w);
    return vmhost_throw_errno(env, "uv_poll_init", EINVAL);
  }
  w->poll.data = w;
  /* From here on pidwatch_close cleans up (the poll handle owns w until libuv closes it). */
  napi_value obj, name;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_string_utf8(env, "vmhost:pidwatch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok || napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok) {
    pidwatch_close(w);
    return vmhost_throw_errno(env, "napi", ENOMEM);
  }
  w->owners++;
  if (napi_wrap(env, obj, w, pidwatch_finalize, NULL, NULL) != napi_ok) {
    w->owners--;
    pidwatch_close(w);
    return vmhost_throw_errno(env, "napi_wrap", ENOMEM);
  }
  int r = uv_poll_start(&w->poll, UV_READABLE, pidwatch_on_poll);
  if (r < 0) {
    void *unused;
    if (napi_remove_wrap(env, obj, &unused) == napi_ok) w->owners--;
    pidwatch_close(w);
    return vmhost_throw_errno(env, "uv_poll_start", -r);
  }
  return obj;
}

/* pidWatchClose(handle): stops watching (the callback is not called). Idempotent. */
napi_value vmhost_pid_watch_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  pidwatch *w = NULL;
  if (napi_remove_wrap(env, argv[0], (void **)&w) != napi_ok || !w) return NULL; /* closed before */
  pidwatch_close(w);
  pidwatch_release(w);
  return NULL;
}
