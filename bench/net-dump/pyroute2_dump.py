"""Anchor of bench/net-dump.ts: pyroute2 (Debian's python3-pyroute2), run inside the measured
network namespace. Prints one JSON object: the in-process wall and CPU time of each repetition in
ms (import and socket set-up excluded) and the number of objects the last one returned.

    pyroute2_dump.py links|addresses|routes|neighbors REPS
        get_links() / get_addr() / get_routes(table=254) / get_neighbours(), REPS times
"""
import json
import sys
import time

from pyroute2 import IPRoute


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("links", "addresses", "routes", "neighbors"):
        print("usage: pyroute2_dump.py links|addresses|routes|neighbors REPS", file=sys.stderr)
        return 2
    what, reps = sys.argv[1], int(sys.argv[2])
    out = {"ms": [], "cpu": [], "count": 0}
    with IPRoute() as ipr:
        for _ in range(reps):
            c0 = time.process_time()
            t0 = time.perf_counter()
            if what == "links":
                res = ipr.get_links()
            elif what == "addresses":
                res = ipr.get_addr()
            elif what == "routes":
                res = ipr.get_routes(table=254)
            else:
                res = ipr.get_neighbours()
            out["ms"].append((time.perf_counter() - t0) * 1000)
            out["cpu"].append((time.process_time() - c0) * 1000)
            out["count"] = len(res)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
