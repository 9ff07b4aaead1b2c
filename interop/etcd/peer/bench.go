package main

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
)

// BenchJSON is what `etcd-peer bench` prints: wall-clock and CPU seconds (user + system, the
// whole process, from getrusage) of the timed Saves, and of the ReadAll after them when asked.
type BenchJSON struct {
	Seconds        float64 `json:"seconds"`
	CPUSeconds     float64 `json:"cpuSeconds"`
	Entries        int     `json:"entries"`
	ScanSeconds    float64 `json:"scanSeconds"`
	ScanCPUSeconds float64 `json:"scanCpuSeconds"`
	ScanEntries    int     `json:"scanEntries"`
}

// cpuSeconds is the process's user + system time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("bench: getrusage: %v", err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// benchCommand parses `bench DIR PER SAVES [BYTES [WARMUP [scan]]]` and runs it.
func benchCommand(dir string, rest []string) BenchJSON {
	if len(rest) < 2 || len(rest) > 5 {
		fail("usage: etcd-peer bench DIR ENTRIES_PER_SAVE SAVES [ENTRY_BYTES [WARMUP_SAVES [scan]]]")
	}
	numbers := []int{0, 0, 100, 50}
	for i, a := range rest {
		if i == 4 {
			if a != "scan" {
				fail("bench: the sixth argument is \"scan\" or nothing")
			}
			break
		}
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 || (i < 2 && n < 1) {
			fail("bench: ENTRIES_PER_SAVE and SAVES must be positive numbers, ENTRY_BYTES and WARMUP_SAVES not negative")
		}
		numbers[i] = n
	}
	return bench(dir, numbers[0], numbers[1], numbers[2], numbers[3], len(rest) == 5)
}

// bench is the write path the engine's bench measures, on etcd's wal: the same payloads,
// batch sizes and warm-up, so the two can be printed side by side; then, if scan, the read
// path (OpenForRead and ReadAll, as etcd's server recovers) on what was written.
func bench(dir string, per, saves, size, warmup int, scan bool) BenchJSON {
	w, err := wal.Create(lg, dir, []byte{1})
	if err != nil {
		fail("bench: %v", err)
	}
	defer os.RemoveAll(dir)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	batch := make([]raftpb.Entry, per)
	index := uint64(0)
	save := func() {
		for i := range batch {
			index++
			batch[i] = raftpb.Entry{Term: 1, Index: index, Data: payload}
		}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: index}, batch); err != nil {
			fail("bench: %v", err)
		}
	}
	for i := 0; i < warmup; i++ {
		save()
	}
	cpu := cpuSeconds()
	start := time.Now()
	for i := 0; i < saves; i++ {
		save()
	}
	out := BenchJSON{Seconds: time.Since(start).Seconds(), CPUSeconds: cpuSeconds() - cpu, Entries: per * saves}
	if err := w.Close(); err != nil {
		fail("bench: %v", err)
	}
	if scan {
		// The faster of two scans, as the .NET contestants report.
		for i := 0; i < 2; i++ {
			cpu = cpuSeconds()
			start = time.Now()
			r, err := wal.OpenForRead(lg, dir, walpb.Snapshot{})
			if err != nil {
				fail("bench: %v", err)
			}
			_, _, ents, err := r.ReadAll()
			if err != nil {
				fail("bench: ReadAll: %v", err)
			}
			seconds := time.Since(start).Seconds()
			if i == 0 || seconds < out.ScanSeconds {
				out.ScanSeconds = seconds
				out.ScanCPUSeconds = cpuSeconds() - cpu
				out.ScanEntries = len(ents)
			}
			r.Close()
		}
	}
	return out
}
