package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostileInput: deep JSON, invalid UTF-8, huge numbers, header floods,
// slow and abandoned clients. Each is answered 4xx or the connection is
// closed cleanly, and the server stays healthy and keeps accepting alerts.
func TestHostileInput(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir(), "HERALD_HTTP_READ_HEADER_TIMEOUT=500ms", "HERALD_HTTP_READ_TIMEOUT=1s"))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": "http://127.0.0.1:1/x"})
	post := func(path string, body []byte, header map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", h.base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	deep := []byte(`{"target":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`)
	flood := map[string]string{}
	for i := range 200 {
		flood[fmt.Sprintf("X-Flood-%d", i)] = strings.Repeat("a", 1000)
	}
	for _, c := range []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
	}{
		{"deep json", "/v1/alerts", deep, nil},
		{"deep object", "/v1/users", []byte(strings.Repeat(`{"a":`, 50000) + "1" + strings.Repeat("}", 50000)), nil},
		{"invalid utf-8", "/v1/alerts", []byte("{\"target\":[\"@alice\"],\"severity\":\"info\",\"message\":\"\xff\xfe\"}"), nil},
		{"huge number", "/v1/alerts", []byte(`{"target":["@alice"],"severity":1e99999,"message":"m"}`), nil},
		{"huge integer", "/v1/users", []byte(`{"name":"x","department":` + strings.Repeat("9", 5000) + `}`), nil},
		{"nul bytes", "/v1/alerts", []byte("{\"target\":[\"@alice\u0000\"],\"severity\":\"info\",\"message\":\"m\"}"), nil},
		{"header flood", "/v1/alerts", []byte(`{}`), flood},
		{"2 MiB body", "/v1/alerts", bytes.Repeat([]byte("x"), 2<<20), nil},
	} {
		code, body := post(c.path, c.body, c.header)
		if code < 400 || code >= 500 {
			t.Errorf("%s: %d %.200s; want a 4xx", c.name, code, body)
		}
	}
	// A huge limit in the query.
	if code, _ := h.do("GET", "/v1/alerts?limit=999999999999999999999999", nil, nil); code != 422 {
		t.Errorf("huge query number: %d", code)
	}

	// Slowloris: a client that sends headers a byte at a time, and one that
	// never finishes its body, are cut off by the read timeouts.
	addr := strings.TrimPrefix(h.base, "http://")
	slow := func(partial string) time.Duration {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte(partial)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, bufio.NewReader(c)) // returns when the server closes
		return time.Since(start)
	}
	if d := slow("POST /v1/alerts HTTP/1.1\r\nHost: x\r\nX-Slow: "); d > 5*time.Second {
		t.Errorf("a client stuck in its headers was held %v", d)
	}
	if d := slow("POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tar"); d > 5*time.Second {
		t.Errorf("a client stuck in its body was held %v", d)
	}

	// Still healthy, still working.
	h.must(http.StatusOK, "GET", "/healthz", nil, nil)
	h.must(http.StatusOK, "GET", "/readyz", nil, nil)
	id := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "after the storm"})
	h.waitAlert(id, func(*alertOut) bool { return true })
}
