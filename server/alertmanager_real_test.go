package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testlog"
	"github.com/heraldproject/herald/internal/testnet"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// alertmanagerBinary finds a Prometheus Alertmanager to run: alertmanager,
// or prometheus-alertmanager as Debian names it.
func alertmanagerBinary() string {
	for _, name := range []string{"alertmanager", "prometheus-alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	return testnet.FreePort(t)
}

// TestRealAlertmanager drives a real Prometheus Alertmanager configured with
// the README's webhook_config (an ingest token as credentials) at Herald: an
// alert posted to Alertmanager reaches the on-call group's webhook; while it
// fires, Alertmanager repeats it every second (repeat_interval) and Herald
// tells nobody again; its resolution follows as a [RESOLVED] notice. It is
// skipped unless an alertmanager binary is on PATH (Debian:
// apt-get install prometheus-alertmanager).
func TestRealAlertmanager(t *testing.T) {
	bin := alertmanagerBinary()
	if bin == "" {
		t.Skip("no alertmanager (or prometheus-alertmanager) binary on PATH: skipping the test against a real " +
			"Alertmanager (apt-get install prometheus-alertmanager to run it)")
	}
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	h.createGroup("oncall", alice)
	var tok struct{ Token string }
	h.must(http.StatusCreated, "POST", "/v1/tokens", map[string]any{"name": "alertmanager", "scope": "ingest"}, &tok)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: herald
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1s
receivers:
  - name: herald
    webhook_configs:
      - url: %s/v1/integrations/alertmanager?target=@@oncall
        send_resolved: true
        http_config:
          authorization:
            credentials: %s
`, h.base, tok.Token)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	amURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	var out testlog.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+strings.TrimPrefix(amURL, "http://"),
		"--cluster.listen-address=", "--log.level=debug")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	client := &http.Client{Timeout: 5 * time.Second} // no Herald token for Alertmanager's API
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(amURL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	startsAt := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	post := func(endsAt time.Time) {
		t.Helper()
		body, _ := json.Marshal([]map[string]any{{
			"labels":       map[string]string{"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"},
			"annotations":  map[string]string{"summary": "Disk full on db-1", "description": "/var is 99% full"},
			"startsAt":     startsAt,
			"endsAt":       endsAt,
			"generatorURL": "http://prometheus:9090/graph?g0.expr=node_filesystem_avail_bytes+%3C+1e9",
		}})
		resp, err := client.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("alertmanager refused the alert: %d", resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	post(time.Now().UTC().Add(time.Hour))
	if err := hook.WaitFor(ctx, 1); err != nil {
		t.Fatalf("firing alert not delivered: %v", err)
	}
	// Alertmanager repeats the notification while the alert fires.
	for {
		fams, _ := h.scrape()
		if _, n := value(fams, "herald_ingest_request_duration_seconds", map[string]string{"kind": "alertmanager", "code": "202"}); n >= 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("alertmanager did not repeat the notification")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(hook.Received()); n != 1 {
		t.Fatalf("%d deliveries while the alert fired, want 1: %v", n, received(hook))
	}
	post(time.Now().UTC().Add(-time.Second)) // resolved
	if err := hook.WaitFor(ctx, 2); err != nil {
		t.Fatalf("resolution not delivered: %v", err)
	}
	time.Sleep(2500 * time.Millisecond) // two more intervals: nothing else may arrive
	got := received(hook)
	want := []string{"alice|critical|Disk full on db-1", "alice|info|[RESOLVED] Disk full on db-1"}
	if !slices.Equal(got, want) || hook.Duplicates() != 0 {
		t.Fatalf("received %v (%d duplicates), want %v", got, hook.Duplicates(), want)
	}
	if p := hook.Received()[0].Payload; p.Source != "alertmanager" || p.Message != "/var is 99% full" ||
		p.Labels["instance"] != "db-1:9100" || !strings.HasPrefix(p.Labels["generatorURL"], "http://prometheus:9090/") {
		t.Errorf("firing delivery = %+v", p)
	}
	fmt.Fprintln(testOut(t), "real alertmanager: firing (repeated by Alertmanager) and resolved delivered once each")
}
