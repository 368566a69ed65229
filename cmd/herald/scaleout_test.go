package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testlog"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// redisAddr is the local Redis the fleet shares (HERALD_TEST_REDIS, default
// 127.0.0.1:6379); the test is skipped without one, except in CI.
func redisAddr(t *testing.T) string {
	addr := os.Getenv("HERALD_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is required in CI: %v", addr, err)
		}
		t.Skipf("SKIPPING: no Redis at %s", addr)
	}
	c.Close()
	return addr
}

// TestScaleOut runs Herald as a fleet: one `herald broker`, PostgreSQL, Redis, three
// worker processes (fanout, deliver, retry, dlq) and one api process.
// Thousands of deliveries flow to a webhook receiver while workers are killed
// with SIGKILL and restarted; none may be lost, duplicates are counted, and
// the partition rebalances are shown.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet of processes")
	}
	const (
		alerts     = 1500
		recipients = 4
		kills      = 4
	)
	bin := buildBinary(t)
	dsn := testpg.DSN(t)
	hook := webhooktest.NewReceiver()
	defer hook.Close()

	brokerAddr := freeAddr(t)
	broker := exec.Command(bin, "broker", "--addr", brokerAddr, "--data-dir", t.TempDir())
	brokerLog := &testlog.Buffer{}
	broker.Stderr = brokerLog
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Process.Kill(); _ = broker.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", brokerAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not listen: %s", brokerLog)
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := []string{"HERALD_KAFKA_BROKERS=" + brokerAddr, "HERALD_STORE_DRIVER=postgres", "HERALD_STORE_DSN=" + dsn,
		"HERALD_KAFKA_SESSION_TIMEOUT=6s",
		// kfake (the broker here) can leave a rebalance hanging after
		// members die mid-rebalance until the rebalance timeout; a short
		// one bounds that stall (see docs/SCALING.md).
		"HERALD_KAFKA_REBALANCE_TIMEOUT=10s", "HERALD_RETRY_DELAYS=100ms,500ms", "HERALD_LOG_LEVEL=info",
		"HERALD_OUTBOUND_ALLOW=127.0.0.1", // scaled out refuses private addresses by default
		"HERALD_REDIS_ADDR=" + redisAddr(t), fmt.Sprintf("HERALD_REDIS_PREFIX=fleet-%d:", time.Now().UnixNano())}
	worker := func() *child {
		return startChild(t, bin, t.TempDir(), append(env, "HERALD_ROLES=fanout,deliver,retry,dlq")...)
	}
	apiProc := startChild(t, bin, t.TempDir(), append(env, "HERALD_ROLES=api")...)
	workers := []*child{worker(), worker(), worker()}

	var users []string
	for i := range recipients {
		out := apiProc.post(t, "/v1/users", fmt.Sprintf(`{"name":"w%d","webhookUrl":%q}`, i, hook.URL()))
		users = append(users, out["id"].(string))
	}
	targets, _ := json.Marshal(func() []string {
		var ts []string
		for i := range recipients {
			ts = append(ts, fmt.Sprint("@w", i))
		}
		return ts
	}())

	ids := make([]string, alerts)
	var posted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					body := fmt.Sprintf(`{"target":%s,"severity":"error","message":"fleet %d"}`, targets, i)
					for {
						resp, err := http.Post(apiProc.base+"/v1/alerts", "application/json", strings.NewReader(body))
						if err == nil {
							var out struct{ ID string }
							derr := json.NewDecoder(resp.Body).Decode(&out)
							resp.Body.Close()
							if resp.StatusCode == http.StatusAccepted && derr == nil {
								ids[i] = out.ID
								posted.Add(1)
								break
							}
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
		for i := range alerts {
			next <- i
		}
		close(next)
		wg.Wait()
	}()

	for k := range kills {
		time.Sleep(1500 * time.Millisecond)
		w := workers[k%len(workers)]
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-w.exited
		t.Logf("%s killed worker %d: %d alerts accepted, %d deliveries received", time.Now().UTC().Format("15:04:05.000"), k%len(workers), posted.Load(), hook.Unique())
		workers[k%len(workers)] = worker()
	}
	<-done

	want := webhookDeliveries(ids, users)
	missing := waitDelivered(t, hook, want, 5*time.Minute)
	// The final workers must have taken over partitions. When the fleet
	// was done before they joined (every delivery can arrive within a
	// second or two), their assignment comes once the killed members'
	// sessions end: wait for it, within a bound.
	rebalances := 0
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		rebalances = 0
		for _, w := range workers {
			rebalances += strings.Count(w.stderr.String(), "partitions assigned")
		}
		if rebalances > 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("fleet: 3 workers + 1 api on one broker, PostgreSQL and Redis; %d worker kills; %d deliveries; lost %d; "+
		"duplicates %d; partition assignments logged by the final workers: %d", kills, len(want), missing,
		hook.Duplicates(), rebalances)
	for i, w := range workers {
		for _, line := range strings.Split(w.stderr.String(), "\n") {
			if strings.Contains(line, "partitions ") && strings.Contains(line, "herald-deliver-webhook") {
				t.Logf("worker %d: %s", i, line)
			}
		}
	}
	if missing != 0 {
		for i, w := range append(workers, apiProc) {
			lines := strings.Split(w.stderr.String(), "\n")
			n := 0
			for _, line := range lines {
				if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) && n < 15 {
					t.Logf("process %d: %s", i, line)
					n++
				}
			}
		}
		t.Fatalf("%d of %d deliveries lost", missing, len(want))
	}
	if rebalances == 0 {
		t.Fatal("no partition assignment seen in the workers' logs")
	}
	// A kill can resend only what its worker had begun and not recorded: at
	// most twice deliver.concurrency (64) per channel.
	if d := hook.Duplicates(); d > kills*2*64 {
		t.Fatalf("%d duplicates for %d kills: more than in-flight sends explain", d, kills)
	}
}
