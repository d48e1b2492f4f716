// Anchor for bench:compare: vishvananda/netlink (Debian's golang-github-vishvananda-netlink-dev),
// run inside the measured network namespace. Prints one JSON object with the in-process time.
//
//	netlinkbench create N   creates N veth pairs v<i>/p<i>, one LinkAdd each (the library is synchronous)
//	netlinkbench dump       LinkList(): dump and parse every link
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netlinkbench create N | dump")
		os.Exit(2)
	}
	out := map[string]interface{}{}
	switch os.Args[1] {
	case "create":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%d", i)}, PeerName: fmt.Sprintf("p%d", i)}
			if err := netlink.LinkAdd(veth); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		out["ms"] = float64(time.Since(t0).Nanoseconds()) / 1e6
		out["count"] = n
	case "dump":
		t0 := time.Now()
		links, err := netlink.LinkList()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out["ms"] = float64(time.Since(t0).Nanoseconds()) / 1e6
		out["count"] = len(links)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(out)
}
