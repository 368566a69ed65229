package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapToken: the first start on an empty store makes an admin
// token, prints it once and writes it to <data-dir>/admin.token (0600); the
// API refuses requests without it; the CLI creates scoped tokens with it.
func TestBootstrapToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	c := startChild(t, bin, dir, "HERALD_ADMIN_TOKEN=")
	path := filepath.Join(dir, "admin.token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	admin := strings.TrimSpace(string(b))
	if !strings.HasPrefix(admin, "hrl_") || strings.Count(c.stderr.String(), admin) != 1 {
		t.Fatalf("admin token %q should be logged exactly once:\n%s", admin, c.stderr)
	}
	plain := &http.Client{}
	resp, err := plain.Get(c.base + "/v1/users")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.StatusCode)
	}
	env := []string{"HERALD_SERVER=" + c.base, "HERALD_TOKEN=" + admin}
	var out, errOut bytes.Buffer
	if code := run([]string{"token", "create", "--scope", "ingest", "--name", "ci"}, env, &out, &errOut); code != 0 {
		t.Fatalf("token create: %s", errOut.String())
	}
	ingest := strings.TrimSpace(out.String())
	req, _ := http.NewRequest("GET", c.base+"/v1/users", nil)
	req.Header.Set("Authorization", "Bearer "+ingest)
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ingest token on the directory: %d, want 403", resp.StatusCode)
	}
	out.Reset()
	if code := run([]string{"token", "list"}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ci") ||
		strings.Contains(out.String(), ingest) {
		t.Fatalf("token list: %d %s", code, out.String())
	}
	// A restart makes no new token.
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-c.exited
	c = startChild(t, bin, dir, "HERALD_ADMIN_TOKEN=")
	if strings.Contains(c.stderr.String(), "created the first admin token") {
		t.Fatal("a second admin token was made on restart")
	}
}
