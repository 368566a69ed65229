package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/testauth"
	"github.com/heraldproject/herald/internal/testlog"
	"github.com/heraldproject/herald/internal/testnet"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, flag := range []string{"--data-dir", "--http-addr", "--kafka-addr", "--config", "HERALD_DATA_DIR"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
	out.Reset()
	if code := run([]string{"config", "keys"}, nil, &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	for _, s := range []string{"retry.maxAttempts", "HERALD_RETRY_MAX_ATTEMPTS", "HERALD_RETRY_DELAYS", "HERALD_KAFKA_ADDR"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("config keys does not list %s", s)
		}
	}
}

func TestBadConfigExits(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"serve"}, []string{"HERALD_RETRY_MAX_ATTEMPTS=zero"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "retry.maxAttempts") {
		t.Fatalf("exit %d, stderr %q: want a failure naming retry.maxAttempts", code, errOut.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return testnet.FreeAddr(t)
}

// child is a `herald serve` process.
type child struct {
	cmd       *exec.Cmd
	base      string
	kafka     string
	stderr    *testlog.Buffer
	exited    chan error
	exitError error
}

func startChild(t *testing.T, bin, dataDir string, env ...string) *child {
	t.Helper()
	return startChildAt(t, bin, dataDir, freeAddr(t), freeAddr(t), env...)
}

// startChildAt starts `herald serve` on the given addresses and waits until
// it is ready.
func startChildAt(t *testing.T, bin, dataDir, httpAddr, kafkaAddr string, env ...string) *child {
	t.Helper()
	c := &child{base: "http://" + httpAddr, kafka: kafkaAddr, stderr: &testlog.Buffer{}, exited: make(chan error, 1)}
	c.cmd = exec.Command(bin, "serve", "--data-dir", dataDir, "--http-addr", httpAddr, "--kafka-addr", kafkaAddr)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("herald did not become ready: %s", c.stderr)
	return nil
}

func (c *child) post(t *testing.T, path, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(c.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds herald once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "herald-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "herald")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestBinary builds herald and drives it from outside, as a new user would:
// the flags the README names, HTTP, standard Kafka clients against the
// embedded broker, SIGTERM, and a restart on the same data dir.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	dir := t.TempDir()

	c := startChild(t, bin, dir)
	// The startup log comes once every role has started, which can be just
	// after /readyz answers.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.stderr.String(), "herald started") &&
		time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"herald started", c.base, c.kafka, dir} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("startup log does not say %q:\n%s", want, c.stderr)
		}
	}
	c.post(t, "/v1/users", fmt.Sprintf(`{"name":"alice","webhookUrl":%q}`, hook.URL()))

	// A Kafka client (what kcat does) lists Herald's topics and produces to
	// them: an alert without an id is fanned out like one posted over HTTP;
	// garbage becomes a dead letter and does not block the partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx,
		&kgo.Record{Topic: bus.TopicAlerts, Key: []byte("k"), Value: []byte("this is not json")},
		&kgo.Record{Topic: bus.TopicAlerts, Key: []byte("k"), Value: []byte(`{"target":["@alice"],"severity":"error","message":"from a kafka tool"}`)},
	)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := hook.WaitFor(ctx, 1); err != nil {
		t.Fatalf("alert produced with a Kafka client was not delivered: %v", err)
	}
	if got := hook.Received()[0].Payload.Message; got != "from a kafka tool" {
		t.Errorf("delivered message %q", got)
	}
	dl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka), kgo.ConsumeTopics(bus.TopicDLQ), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	fs := dl.PollFetches(ctx)
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "this is not json" || !strings.Contains(bus.Header(recs[0], bus.HeaderError), "decode alert") {
		t.Fatalf("dead letters = %v (errors %v)", recs, fs.Errors())
	}

	// The CLI lists, shows and replays it through the API.
	env := []string{"HERALD_SERVER=" + c.base, "HERALD_TOKEN=" + testauth.AdminToken}
	var out, errOut bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "decode alert") {
		if time.Now().After(deadline) {
			t.Fatalf("herald dlq list never showed the dead letter: %s %s", out.String(), errOut.String())
		}
		out.Reset()
		if code := run([]string{"dlq", "list"}, env, &out, &errOut); code != 0 {
			t.Fatalf("dlq list: %s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "record") {
		t.Fatalf("dlq list:\n%s", out.String())
	}
	dlID := strings.Fields(lines[1])[0]
	out.Reset()
	if code := run([]string{"dlq", "show", dlID}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "herald.alerts/") {
		t.Fatalf("dlq show: %d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"dlq", "replay", "--all"}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "replayed 1,") {
		t.Fatalf("dlq replay --all: %d %s %s", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"dlq", "replay"}, env, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--all") {
		t.Fatalf("dlq replay without ids or --all: %d %s", code, errOut.String())
	}
	// Replayed, it can no longer be discarded (its replay may be on its way).
	errOut.Reset()
	if code := run([]string{"dlq", "discard", dlID}, env, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "was replayed") {
		t.Fatalf("dlq discard of a replayed dead letter: %d %s", code, errOut.String())
	}

	// SIGTERM: a clean, bounded stop.
	start := time.Now()
	stopChild(t, c)
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	// Same data dir: the user is still there.
	c = startChild(t, bin, dir)
	resp, err := http.Get(c.base + "/v1/users")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"name":"alice"`) {
		t.Fatalf("after restart: %s", raw)
	}
	// The OpenAPI document is served and names every route.
	resp, err = http.Get(c.base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: %v %q", err, doc.OpenAPI)
	}
	for path, methods := range map[string][]string{
		"/v1/users": {"get", "post"}, "/v1/users/{id}": {"get", "patch", "delete"},
		"/v1/groups": {"get", "post"}, "/v1/groups/{id}": {"get", "delete"},
		"/v1/groups/{id}/members/{userId}": {"put", "delete"},
		"/v1/alerts":                       {"get", "post"}, "/v1/alerts/{id}": {"get"}, "/healthz": {"get"}, "/readyz": {"get"},
	} {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("openapi.json lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}
}

// TestHelpHidesToken checks --help of the commands that read HERALD_TOKEN
// does not print it, as a flag default would.
func TestHelpHidesToken(t *testing.T) {
	env := []string{"HERALD_TOKEN=hrl_secret-canary"}
	for _, args := range [][]string{{"dlq", "list", "--help"}, {"token", "create", "--help"}, {"bench", "--help"}} {
		var out, errOut bytes.Buffer
		if code := run(args, env, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), "--token") || strings.Contains(out.String()+errOut.String(), "canary") {
			t.Errorf("%v printed the token, or no --token flag:\n%s", args, out.String())
		}
	}
}
