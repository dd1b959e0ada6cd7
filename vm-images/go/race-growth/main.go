// race-growth: a workload whose memory grows only when built with -race: the growth is the
// race runtime's (ThreadSanitizer's) own memory, which runtime.MemStats and pprof do not see,
// so VmRSS minus MemStats.Sys (go_rss_gap) grows while go_sys stays flat.
//
//	-mode churn    -rate short-lived goroutines a second, in batches of -alive alive at once
//	               (golang/go#63276: since Go 1.19's TSan v3 every ended goroutine keeps its
//	               race record); -alive 10000 trips Go <= 1.18's 8128-goroutine race limit
//	-mode recover  one goroutine recovers -rate panics a second, each raised -depth calls
//	               below the deferred recover() (golang/go#26813)
//	-mode idle     sleeps (baseline)
//	-duration D    then a last report, {"phase":"done"} and exit 0 (0: run until killed)
//	-report D      metrics interval; -warmup D: time in the mode before {"phase":"steady"}
//
// Stdout is JSON Lines only: {"phase":"steady"|"done"} (the lab has its own started event) and, every -report,
// {"metrics":{...}} (integer bytes and counts). Errors go to stderr.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

var started, recovers, shared uint64 // goroutines started, recover() calls, shared work

func emit(v interface{}) {
	if line, err := json.Marshal(v); err != nil {
		fail(err)
	} else if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "race-growth: %v\n", err)
	os.Exit(1)
}

// vmRSS is VmRSS from /proc/self/status, in bytes.
func vmRSS() uint64 {
	status, err := ioutil.ReadFile("/proc/self/status")
	var kb uint64
	if i := bytes.Index(status, []byte("\nVmRSS:")); err == nil && i >= 0 {
		_, err = fmt.Sscan(string(status[i+7:]), &kb)
	} else if err == nil {
		err = fmt.Errorf("no VmRSS in /proc/self/status")
	}
	if err != nil {
		fail(err)
	}
	return kb * 1024
}

func report() {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	rss, gap := vmRSS(), uint64(0)
	if rss > stats.Sys {
		gap = rss - stats.Sys
	}
	emit(map[string]map[string]uint64{"metrics": {
		"go_sys": stats.Sys, "heap_inuse": stats.HeapInuse, "heap_sys": stats.HeapSys,
		"stack_sys": stats.StackSys, "goroutines_started": atomic.LoadUint64(&started),
		"goroutines_alive": uint64(runtime.NumGoroutine()), "recovers": atomic.LoadUint64(&recovers),
		"go_rss_gap": gap, "vmrss": rss,
	}})
}

// pace calls step, which does n units of work, forever at rate units per second.
func pace(rate, n int, step func()) {
	begin := time.Now()
	for done := n; ; done += n {
		step()
		time.Sleep(time.Until(begin.Add(time.Duration(float64(done) / float64(rate) * 1e9))))
	}
}

// churn starts alive goroutines, lets them run all at once and waits until they have ended.
func churn(alive int) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	wg.Add(alive)
	for i := 0; i < alive; i++ {
		go func() {
			<-gate
			atomic.AddUint64(&shared, 1)
			wg.Done()
		}()
	}
	atomic.AddUint64(&started, uint64(alive))
	close(gate)
	wg.Wait()
}

// panicAndRecover recovers a panic raised depth calls below it: the race runtime never sees
// those calls return, so each one leaks an entry of its shadow call stack.
func panicAndRecover(depth int) {
	defer func() {
		if recover() != nil {
			atomic.AddUint64(&recovers, 1)
		}
	}()
	nest(depth)
}

func nest(depth int) {
	if depth <= 1 {
		panic("race-growth")
	}
	nest(depth - 1)
}

func main() {
	mode := flag.String("mode", "churn", "churn, recover or idle")
	rate := flag.Int("rate", 20000, "goroutines (churn) or recover() calls (recover) per second")
	alive := flag.Int("alive", 100, "churn: goroutines alive at once (the batch)")
	depth := flag.Int("depth", 10, "recover: calls between the recover() and the panic")
	duration := flag.Duration("duration", 20*time.Second, "run time, then exit 0 (0: until killed)")
	interval := flag.Duration("report", 500*time.Millisecond, "metrics interval")
	warmup := flag.Duration("warmup", 2*time.Second, "time in the mode before the steady phase")
	flag.Parse()
	if *rate <= 0 || *alive <= 0 || *interval <= 0 {
		fail(fmt.Errorf("-rate, -alive and -report must be > 0"))
	}
	switch batch := (*rate + 99) / 100; *mode { // recover: about 100 wake-ups a second
	case "churn":
		go pace(*rate, *alive, func() { churn(*alive) })
	case "recover":
		go pace(*rate, batch, func() {
			for i := 0; i < batch; i++ {
				panicAndRecover(*depth)
			}
		})
	case "idle":
	default:
		fail(fmt.Errorf("unknown -mode %q (churn, recover or idle)", *mode))
	}
	ticker, steady := time.NewTicker(*interval), time.After(*warmup)
	var end <-chan time.Time
	if *duration > 0 {
		end = time.After(*duration)
	}
	for {
		select {
		case <-ticker.C:
			report()
		case <-steady:
			emit(map[string]string{"phase": "steady"})
		case <-end:
			report()
			emit(map[string]string{"phase": "done"})
			return
		}
	}
}
