// go-heap-churn: the Go twin of rsslab's native heap-churn workload. It allocates a heap of
// chunk-sized []byte, touches every page, keeps a live set, drops the rest, runs a GC and,
// optionally, debug.FreeOSMemory(), so the Go runtime hands the freed spans back to the kernel
// the way this toolchain does it (MADV_FREE on Go 1.12-1.15, MADV_DONTNEED from 1.16 on, or
// whatever GODEBUG=madvdontneed=... says).
//
// Usage: go-heap-churn '{"heap":314572800,"live":52428800,"free_os_memory":true}'
//
// Sizes are bytes, durations Go durations ("1s", "500ms"). GODEBUG, GOGC and GOMEMLIMIT come
// from the environment. Reports go to stdout as JSON Lines in rsslab's WorkloadReport shape:
// {"phase":"released","metrics":{"heap_released":...}}, plus a metrics line every 500ms.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

const pageSize = 4096

// args are the workload's knobs, as rsslab's GoHeapChurnArgs serializes them.
type args struct {
	Heap          uint64 `json:"heap"`
	Live          uint64 `json:"live"`
	Chunk         uint64 `json:"chunk"`
	Cycles        uint32 `json:"cycles"`
	HoldAllocated string `json:"hold_allocated"`
	Hold          string `json:"hold"`
	FreeOSMemory  bool   `json:"free_os_memory"`
	Exit          bool   `json:"exit"`
}

type report struct {
	Phase   string            `json:"phase,omitempty"`
	Metrics map[string]uint64 `json:"metrics,omitempty"`
}

var out sync.Mutex

// emit writes one report line with the runtime's current figures.
func emit(phase string) {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	line, err := json.Marshal(report{Phase: phase, Metrics: map[string]uint64{
		"heap_alloc":    stats.HeapAlloc,
		"heap_inuse":    stats.HeapInuse,
		"heap_idle":     stats.HeapIdle,
		"heap_released": stats.HeapReleased,
		"heap_sys":      stats.HeapSys,
		"go_sys":        stats.Sys,
	}})
	if err != nil {
		fail(err)
	}
	out.Lock()
	defer out.Unlock()
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "go-heap-churn: %v\n", err)
	os.Exit(1)
}

func duration(text string, fallback time.Duration) time.Duration {
	if text == "" {
		return fallback
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		fail(fmt.Errorf("bad duration %q: %v", text, err))
	}
	return d
}

func parseArgs() args {
	a := args{Chunk: 1 << 20, Cycles: 1}
	if len(os.Args) > 2 {
		fail(fmt.Errorf("usage: %s [ARGS_JSON]", os.Args[0]))
	}
	if len(os.Args) == 2 {
		decoder := json.NewDecoder(strings.NewReader(os.Args[1]))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&a); err != nil {
			fail(fmt.Errorf("bad arguments %s: %v", os.Args[1], err))
		}
	}
	if a.Heap == 0 {
		fail(fmt.Errorf("heap is required and must be > 0"))
	}
	if a.Chunk < pageSize {
		fail(fmt.Errorf("chunk must be at least %d bytes", pageSize))
	}
	if a.Live > a.Heap {
		fail(fmt.Errorf("live (%d) is larger than heap (%d)", a.Live, a.Heap))
	}
	if a.Cycles == 0 {
		a.Cycles = 1
	}
	return a
}

// sink keeps the live set reachable.
var sink [][]byte

func main() {
	a := parseArgs()
	// The first report says the runtime started and main runs: a runtime that dies of ENOMEM
	// before it (its start-up mappings refused) is recorded as enomem-at-start.
	emit("")
	holdAllocated := duration(a.HoldAllocated, time.Second)
	hold := duration(a.Hold, 2*time.Second)
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			emit("")
		}
	}()
	chunks := int((a.Heap + a.Chunk - 1) / a.Chunk)
	live := int(a.Live / a.Chunk)
	for cycle := uint32(0); cycle < a.Cycles; cycle++ {
		heap := make([][]byte, 0, chunks)
		for i := 0; i < chunks; i++ {
			chunk := make([]byte, a.Chunk)
			for offset := 0; offset < len(chunk); offset += pageSize {
				chunk[offset] = byte(i + 1)
			}
			heap = append(heap, chunk)
		}
		emit("allocated")
		time.Sleep(holdAllocated)
		// A copy: a subslice would keep the whole array of chunk pointers reachable.
		sink = append([][]byte(nil), heap[:live]...)
		heap = nil
		runtime.GC()
		if a.FreeOSMemory {
			debug.FreeOSMemory()
		}
		emit("released")
		time.Sleep(hold)
		if cycle+1 < a.Cycles {
			sink = nil
		}
	}
	emit("done")
	if a.Exit {
		return
	}
	select {}
}
