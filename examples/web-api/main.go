// Command web-api stands in for the shop's web API of deployment.yaml: it keeps a cache in
// memory and, to answer a request, starts a renderer (itself, with -worker) that needs more
// memory than the container has left. It prints what happens, for rsslab's phases:
//
//	web-api: listening on :8080, cache 48MiB, GOMEMLIMIT=110MiB
//	web-api: started renderer pid 123 for 160MiB
//	web-api: renderer ended: signal: killed
//
// A renderer prints "renderer: holding N MiB" as it grows. Flags take Kubernetes-style sizes
// (48Mi).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The memory a process holds: touched pages, kept reachable.
var held [][]byte

func main() {
	listen := flag.String("listen", ":8080", "address (only printed: the lab has no network)")
	cache := flag.String("cache", "48Mi", "the API's own cache")
	render := flag.String("render", "160Mi", "what a renderer needs")
	worker := flag.Bool("worker", false, "be a renderer")
	flag.Parse()
	if *worker {
		renderer(size(*render))
		return
	}
	hold(size(*cache))
	fmt.Printf("web-api: listening on %s, cache %dMiB, GOMEMLIMIT=%s\n",
		*listen, size(*cache)>>20, os.Getenv("GOMEMLIMIT"))
	time.Sleep(500 * time.Millisecond)
	child := exec.Command(os.Args[0], "-worker", "-render="+*render)
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		fmt.Println("web-api: cannot start a renderer:", err)
		os.Exit(1)
	}
	fmt.Printf("web-api: started renderer pid %d for %dMiB\n", child.Process.Pid, size(*render)>>20)
	fmt.Println("web-api: renderer ended:", child.Wait())
	serve() // on, without the renderer
}

// serve stands for the API answering requests: it only stays alive.
func serve() {
	for {
		time.Sleep(time.Hour)
	}
}

// renderer takes `total` bytes, 16MiB at a time.
func renderer(total int) {
	for taken := 0; taken < total; taken += 16 << 20 {
		hold(16 << 20)
		fmt.Printf("renderer: holding %d MiB\n", (taken+16<<20)>>20)
	}
	serve()
}

func hold(bytes int) {
	block := make([]byte, bytes)
	for i := 0; i < len(block); i += 4096 {
		block[i] = 1
	}
	held = append(held, block)
}

// size reads 48Mi, 1Gi or plain bytes.
func size(text string) int {
	units := map[string]int{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
	for suffix, unit := range units {
		if number, ok := strings.CutSuffix(text, suffix); ok {
			n, err := strconv.Atoi(number)
			if err == nil {
				return n * unit
			}
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web-api: not a size:", text)
		os.Exit(2)
	}
	return n
}
