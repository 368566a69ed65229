package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/notify/webhook"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
	"github.com/heraldproject/herald/secrets"
	"github.com/heraldproject/herald/store"
)

func TestSecretsKeygen(t *testing.T) {
	keygen := func() string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run([]string{"secrets", "keygen"}, nil, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		k := strings.TrimSpace(out.String())
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != secrets.KeySize {
			t.Fatalf("keygen printed %q, want %d bytes in base64", out.String(), secrets.KeySize)
		}
		return k
	}
	if keygen() == keygen() {
		t.Fatal("two keys are equal")
	}
}

// TestSecretsRotate drives a key rotation from outside, as the runbook in
// docs/SECURITY.md does: Herald runs under key A with users whose Slack
// tokens and webhook secrets are encrypted; it restarts with key B and A as a
// previous key; `herald secrets rotate` re-encrypts everything while it runs
// (twice: the second run has nothing to do); then Herald runs with key B
// alone and still signs alice's webhooks with her secret.
func TestSecretsRotate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	dir := t.TempDir()
	keyA, _ := secrets.GenerateKey()
	keyB, _ := secrets.GenerateKey()
	const aliceSecret = "alice-webhook-secret-0123456789"

	c := startChild(t, bin, dir, "HERALD_SECRETS_KEY="+keyA)
	c.post(t, "/v1/users", fmt.Sprintf(`{"name":"alice","webhookUrl":%q,"webhookSecret":%q}`, hook.BaseURL()+"/alice", aliceSecret))
	for i := range 4 {
		c.post(t, "/v1/users", fmt.Sprintf(`{"name":"u%d","webhookUrl":%q,"webhookSecret":"secret-of-user-%d-0123456789",
			"slack":{"channel":"C%d","token":"xoxb-user-%d"}}`, i, hook.BaseURL()+"/u", i, i, i))
	}
	stopChild(t, c)

	rotate := func(env ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, "secrets", "rotate", "--data-dir", dir, "--batch-size", "2")
		cmd.Env = append(os.Environ(), env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errOut.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errOut.String()
	}
	rotated := regexp.MustCompile(`re-encrypted (\d+) secrets under key (\w+); (\d+) already under it; 0 could not be read; 5 users examined`)

	c = startChild(t, bin, dir, "HERALD_SECRETS_KEY="+keyB, "HERALD_SECRETS_PREVIOUS_KEYS="+keyA)
	code, out, errOut := rotate("HERALD_SECRETS_KEY="+keyB, "HERALD_SECRETS_PREVIOUS_KEYS="+keyA)
	m := rotated.FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != "9" || m[2] != secrets.KeyID(mustKey(t, keyB)) || m[3] != "0" {
		t.Fatalf("rotate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"2/5 users", "4/5 users", "5/5 users", "secrets.previousKeys can be emptied"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress does not show %q:\n%s", want, errOut)
		}
	}
	code, out, errOut = rotate("HERALD_SECRETS_KEY="+keyB, "HERALD_SECRETS_PREVIOUS_KEYS="+keyA)
	if m := rotated.FindStringSubmatch(out); code != 0 || m == nil || m[1] != "0" || m[3] != "9" {
		t.Fatalf("second rotate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	stopChild(t, c)

	// Key A is gone: everything is read with B alone.
	c = startChild(t, bin, dir, "HERALD_SECRETS_KEY="+keyB)
	c.post(t, "/v1/alerts", `{"target":["@alice"],"severity":"error","message":"after rotation","channels":["webhook"]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 1); err != nil {
		t.Fatalf("no webhook after rotation: %v\n%s", err, c.stderr)
	}
	r := hook.Received()[0]
	if err := webhook.Verify(aliceSecret, r.Header.Get(webhook.SignatureHeader), r.Body, time.Now(), time.Minute); err != nil {
		t.Fatalf("alice's webhook after rotation: %v", err)
	}
	if strings.Contains(c.stderr.String(), "cannot be opened") {
		t.Errorf("a secret did not open with the new key alone:\n%s", c.stderr)
	}

	// Mistakes are explained.
	emptyPG := testpg.DSN(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "secrets.key (HERALD_SECRETS_KEY) is not set"},
		{[]string{"HERALD_SECRETS_KEY=" + keyA}, "could not be opened"},
		{[]string{"HERALD_SECRETS_KEY=" + keyB, "HERALD_DATA_DIR=" + filepath.Join(dir, "nope")}, "is --data-dir right?"},
		// A PostgreSQL database without Herald's tables (an empty schema) is
		// refused, and left empty.
		{[]string{"HERALD_SECRETS_KEY=" + keyB, "HERALD_STORE_DRIVER=postgres", "HERALD_STORE_DSN=" + emptyPG}, "no Herald tables"},
	} {
		cmd := exec.Command(bin, "secrets", "rotate")
		cmd.Env = append(os.Environ(), append([]string{"HERALD_DATA_DIR=" + dir}, tc.env...)...)
		raw, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(raw), tc.want) {
			t.Errorf("%v: %v\n%s\nwant a failure saying %q", tc.env, err, raw, tc.want)
		}
	}
	if ok, err := store.HasSchema(context.Background(), store.Options{Driver: "postgres", DSN: emptyPG}); err != nil || ok {
		t.Errorf("the refused PostgreSQL schema got tables: %v, %v", ok, err)
	}
}

func mustKey(t *testing.T, b64 string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stopChild stops a `herald serve` with SIGTERM and waits for it.
func stopChild(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit within 20s of SIGTERM")
	}
}
