package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/heraldproject/herald/config"
	"github.com/heraldproject/herald/internal/testauth"
	"github.com/heraldproject/herald/server"
)

// testLogger logs to the test when -v is given, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is the configuration of a Herald on loopback with random ports
// and a data dir of its own; extra are HERALD_* variables.
func testConfig(t testing.TB, dataDir string, extra ...string) *config.Config {
	t.Helper()
	env := append([]string{
		"HERALD_DATA_DIR=" + dataDir,
		"HERALD_HTTP_ADDR=127.0.0.1:0",
		"HERALD_KAFKA_ADDR=127.0.0.1:0",
		"HERALD_RETRY_DELAYS=50ms,100ms",
		"HERALD_SHUTDOWN_TIMEOUT=10s",
		"HERALD_HTTP_DRAIN_DELAY=0s",
		"HERALD_ADMIN_TOKEN=" + testauth.AdminToken,
	}, extra...)
	cfg, err := config.Load("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// instance is a running server under test with a small HTTP client.
type instance struct {
	t    testing.TB
	srv  *server.Server
	base string
}

func start(t testing.TB, cfg *config.Config) *instance {
	t.Helper()
	s, err := server.Start(context.Background(), cfg, testLogger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	h := &instance{t: t, srv: s, base: "http://" + s.Addr()}
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *instance) stop() {
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.Close(ctx); err != nil {
		h.t.Errorf("close: %v", err)
	}
	h.srv = nil
}

// do sends a request with a JSON body (or raw bytes) and decodes the JSON
// answer into out (if not nil). It returns the status and the raw body.
func (h *instance) do(method, path string, body any, out any) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.base+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil && len(raw) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// must is do that fails the test unless the status is want.
func (h *instance) must(want int, method, path string, body any, out any) []byte {
	h.t.Helper()
	code, raw := h.do(method, path, body, out)
	if code != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
	}
	return raw
}

type idOut struct {
	ID        string `json:"id"`
	UserCount int    `json:"userCount"`
}

func (h *instance) createUser(body map[string]any) string {
	h.t.Helper()
	var out idOut
	h.must(http.StatusCreated, "POST", "/v1/users", body, &out)
	return out.ID
}

func (h *instance) createGroup(name string, members ...string) string {
	h.t.Helper()
	var out idOut
	h.must(http.StatusCreated, "POST", "/v1/groups", map[string]any{"name": name}, &out)
	for _, m := range members {
		h.must(http.StatusNoContent, "PUT", "/v1/groups/"+out.ID+"/members/"+m, nil, nil)
	}
	return out.ID
}

type delivery struct {
	ID        string     `json:"id"`
	Recipient string     `json:"recipient"`
	Channel   string     `json:"channel"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"lastError"`
	SentAt    *time.Time `json:"sentAt"`
	NextAt    *time.Time `json:"nextAttemptAt"`
	DeadID    string     `json:"deadLetterId"`
}

type alertOut struct {
	ID         string         `json:"id"`
	UserCount  int            `json:"userCount"`
	Counts     map[string]int `json:"counts"`
	Deliveries []delivery     `json:"deliveries"`
}

// waitAlert polls GET /v1/alerts/{id} until done says the alert is finished.
func (h *instance) waitAlert(id string, done func(*alertOut) bool) *alertOut {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		var a alertOut
		code, raw := h.do("GET", "/v1/alerts/"+id, nil, &a)
		last = raw
		if code == http.StatusOK && done(&a) {
			return &a
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("alert %s did not finish: %s", id, last)
	return nil
}

func allFinal(a *alertOut) bool {
	for _, d := range a.Deliveries {
		if d.Status != "sent" && d.Status != "dead" {
			return false
		}
	}
	return len(a.Deliveries) > 0
}

// testOut is where tests print their measurements: stdout under -v, else
// nowhere.
func testOut(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stdout
	}
	return io.Discard
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// expectProblem sends req and checks that the answer is status with an RFC
// 9457 problem document (application/problem+json, title and status set);
// it returns the body.
func expectProblem(t *testing.T, req *http.Request, status int) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, truncate(raw))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Status != status || p.Title == "" {
		t.Errorf("not a problem document: %s (%v)", truncate(raw), err)
	}
	return raw
}
