{
  "targets": [
    {
      "target_name": "vmhost_net",
      "sources": ["native/vmhost_net.c", "native/pidwatch.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
