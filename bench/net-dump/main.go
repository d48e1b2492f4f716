// Anchor of bench/net-dump.ts: vishvananda/netlink (Debian's golang-github-vishvananda-netlink-dev),
// run inside the measured network namespace. Prints one JSON object: the in-process time of each
// repetition (start-up excluded) and the number of objects the last one returned.
//
//	netdump links|addresses|routes|neighbors REPS   LinkList / AddrList / RouteList / NeighList, REPS times
//	netdump create N                               N veth pairs v<i>/p<i>, one LinkAdd each (synchronous library)
//
// The lists are what our side's list() calls return: every link; every address; the main table's
// routes of both families; the neighbour entries of both families.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// cpuMs is the process's CPU time so far (user + system, every thread), in ms.
func cpuMs() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netdump links|addresses|routes|neighbors REPS | create N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fail(err)
	}
	out := map[string]interface{}{}
	var ms, cpu []float64
	count := 0
	if os.Args[1] == "create" {
		c0 := cpuMs()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%d", i)}, PeerName: fmt.Sprintf("p%d", i)}
			if err := netlink.LinkAdd(veth); err != nil {
				fail(err)
			}
		}
		ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
		cpu = append(cpu, cpuMs()-c0)
		count = n
	} else {
		for r := 0; r < n; r++ {
			c0 := cpuMs()
			t0 := time.Now()
			switch os.Args[1] {
			case "links":
				l, err := netlink.LinkList()
				if err != nil {
					fail(err)
				}
				count = len(l)
			case "addresses":
				l, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
				if err != nil {
					fail(err)
				}
				count = len(l)
			case "routes":
				l, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
				if err != nil {
					fail(err)
				}
				count = len(l)
			case "neighbors":
				l, err := netlink.NeighList(0, netlink.FAMILY_ALL)
				if err != nil {
					fail(err)
				}
				count = len(l)
			default:
				fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
				os.Exit(2)
			}
			ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
			cpu = append(cpu, cpuMs()-c0)
		}
	}
	out["ms"] = ms
	out["cpu"] = cpu
	out["count"] = count
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
