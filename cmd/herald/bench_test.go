package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldproject/herald/internal/testauth"
)

// TestBenchSmoke runs `herald bench` briefly against a child Herald: it must
// work (every scenario delivers what it accepted), not be fast.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := startChild(t, buildBinary(t), t.TempDir())
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	env := []string{"HERALD_SERVER=" + c.base, "HERALD_TOKEN=" + testauth.AdminToken}
	if code := run([]string{"bench", "--concurrency", "4", "--requests", "200", "--duration", "20s", "--fanout", "5",
		"--json", out}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("bench: %s %s", stdout.String(), stderr.String())
	}
	t.Log("\n" + stdout.String())
	var res struct {
		Results []struct {
			Scenario      string
			Requests      int
			Errors        int
			Notifications int
		}
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &res); err != nil || len(res.Results) != 4 {
		t.Fatalf("results %s: %v", b, err)
	}
	for _, r := range res.Results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Scenario, r.Requests, r.Errors)
		}
		want := r.Requests
		if strings.Contains(r.Scenario, "fan-out") {
			want *= 5
		}
		if !strings.Contains(r.Scenario, "bare HTTP") && r.Notifications != want {
			t.Errorf("%s: %d notifications for %d requests", r.Scenario, r.Notifications, r.Requests)
		}
	}
}
