"""Anchor for bench:compare: pyroute2 (Debian's python3-pyroute2), run inside the measured network
namespace. Prints one JSON object with the in-process time (import and socket set-up excluded).

    pyroute2_bench.py create N   creates N veth pairs v<i>/p<i>, one link('add') each
    pyroute2_bench.py dump       get_links(): dump and parse every link
"""
import json
import sys
import time

from pyroute2 import IPRoute


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: pyroute2_bench.py create N | dump", file=sys.stderr)
        return 2
    out = {}
    with IPRoute() as ipr:
        if sys.argv[1] == "create":
            n = int(sys.argv[2])
            t0 = time.perf_counter()
            for i in range(n):
                ipr.link("add", ifname=f"v{i}", kind="veth", peer=f"p{i}")
            out["ms"] = (time.perf_counter() - t0) * 1000
            out["count"] = n
        elif sys.argv[1] == "dump":
            t0 = time.perf_counter()
            links = ipr.get_links()
            out["ms"] = (time.perf_counter() - t0) * 1000
            out["count"] = len(links)
        else:
            print("unknown command", sys.argv[1], file=sys.stderr)
            return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
