package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is a measured system's memory and CPU while a scenario loaded it,
// sampled once a second (and at the scenario's start and end).
type Process struct {
	// From says where the numbers were read: "metrics" (its /metrics) or
	// "proc" (/proc/<pid>).
	From string `json:"from"`
	// PeakRSSMB is the largest resident set seen, in MiB.
	PeakRSSMB float64 `json:"peakRssMB"`
	// CPUCores is CPU time used over wall time: 1.0 is one core busy.
	CPUCores float64 `json:"avgCpuCores"`
	Samples  int     `json:"samples"`
	// Waits is, for Herald, how long records waited before each stage
	// (read from its /metrics at the start and the end; none when it does
	// not export them).
	Waits []StageWait `json:"stageWaits,omitempty"`
}

// procReader reads a process's resident memory in bytes and the CPU time it
// has used in seconds.
type procReader func(ctx context.Context) (rss, cpu float64, err error)

// metricsReader reads process_resident_memory_bytes and
// process_cpu_seconds_total (the Prometheus Go client's process collector,
// which Herald and Alertmanager both register) from a /metrics URL.
func metricsReader(hc *http.Client, url, token string) procReader {
	return func(ctx context.Context) (rss, cpu float64, err error) {
		err = scrape(ctx, hc, url, token, func(r io.Reader) error {
			rss, cpu, err = parseProcessMetrics(r)
			return err
		})
		return rss, cpu, err
	}
}

// scrape GETs a /metrics URL in the Prometheus text format (within 5 s, with
// the token when given) and hands the body to parse.
func scrape(ctx context.Context, hc *http.Client, url, token string, parse func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return parse(resp.Body)
}

// parseProcessMetrics finds the two process metrics in the Prometheus text
// format.
func parseProcessMetrics(r io.Reader) (rss, cpu float64, err error) {
	var haveRSS, haveCPU bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "process_resident_memory_bytes":
			rss, err = strconv.ParseFloat(f[1], 64)
			haveRSS = err == nil
		case "process_cpu_seconds_total":
			cpu, err = strconv.ParseFloat(f[1], 64)
			haveCPU = err == nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !haveRSS || !haveCPU {
		return 0, 0, errors.New("no process_resident_memory_bytes and process_cpu_seconds_total")
	}
	return rss, cpu, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// pidReader reads VmRSS from /proc/<pid>/status and utime + stime from
// /proc/<pid>/stat (Linux).
func pidReader(pid int) procReader {
	dir := "/proc/" + strconv.Itoa(pid)
	return func(context.Context) (float64, float64, error) {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return 0, 0, err
		}
		status, err := os.ReadFile(dir + "/status")
		if err != nil {
			return 0, 0, err
		}
		return parseProc(stat, status)
	}
}

func parseProc(stat, status []byte) (rss, cpu float64, err error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, errors.New("unexpected /proc/<pid>/stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/<pid>/stat: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/<pid>/status VmRSS: %w", err)
			}
			return kb * 1024, (utime + stime) / clockTicks, nil
		}
	}
	return 0, 0, errors.New("/proc/<pid>/status has no VmRSS")
}

// sample reads t's process once a second until the returned stop, which
// reads once more and returns the numbers (nil if t is not sampled or no
// read succeeded twice).
func (t *target) sample(ctx context.Context) (stop func() *Process) {
	if t.proc == nil {
		return func() *Process { return nil }
	}
	var mu sync.Mutex
	p := &Process{From: t.from}
	var first, last struct {
		at  time.Time
		cpu float64
	}
	read := func() {
		rss, cpu, err := t.proc(ctx)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if p.Samples == 0 {
			first.at, first.cpu = now, cpu
		}
		last.at, last.cpu = now, cpu
		p.Samples++
		p.PeakRSSMB = max(p.PeakRSSMB, rss/(1<<20))
	}
	read()
	var before map[string]histogram
	if t.waits != nil {
		before, _ = t.waits(ctx)
	}
	stopTick := every(time.Second, read)
	return func() *Process {
		stopTick()
		read()
		var waits []StageWait
		if before != nil {
			if after, err := settled(ctx, t.waits); err == nil {
				waits = stageWaits(before, after)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Samples < 2 || !last.at.After(first.at) {
			return nil
		}
		p.CPUCores = (last.cpu - first.cpu) / last.at.Sub(first.at).Seconds()
		p.Waits = waits
		return p
	}
}
