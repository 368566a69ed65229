package secrets_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/heraldproject/herald/secrets"
)

var (
	keyA = bytes.Repeat([]byte{'a'}, 32)
	keyB = bytes.Repeat([]byte{'b'}, 32)
	keyC = bytes.Repeat([]byte{'c'}, 32)
)

func mustNew(t *testing.T, current []byte, previous ...[]byte) *secrets.Sealer {
	t.Helper()
	s, err := secrets.New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealV1 seals like Herald did before key ids: "enc:v1:" + base64(nonce ‖
// ciphertext), no additional data.
func sealV1(t *testing.T, key []byte, v string) string {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return "enc:v1:" + base64.RawStdEncoding.EncodeToString(a.Seal(nonce, nonce, []byte(v), nil))
}

func TestSealOpen(t *testing.T) {
	s := mustNew(t, keyA)
	v := s.Seal("xoxb-canary")
	if strings.Contains(v, "xoxb-canary") || !strings.HasPrefix(v, "enc:v2:"+secrets.KeyID(keyA)+":") {
		t.Fatalf("sealed = %q", v)
	}
	if v == s.Seal("xoxb-canary") {
		t.Error("two seals of one value are equal (nonce reused?)")
	}
	if p, err := s.Open(v); err != nil || p != "xoxb-canary" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	if s.Seal("") != "" {
		t.Error("the empty string was sealed")
	}
	if p, err := s.Open("plain-before-encryption"); err != nil || p != "plain-before-encryption" {
		t.Errorf("unsealed text: %q, %v", p, err)
	}
	var none *secrets.Sealer
	if none.Seal("x") != "x" {
		t.Error("a nil sealer changed the value")
	}
	if _, err := none.Open(v); !errors.Is(err, secrets.ErrKey) || !strings.Contains(err.Error(), "secrets key") {
		t.Errorf("nil sealer opening a sealed value: %v", err)
	}
}

func TestRotation(t *testing.T) {
	old := mustNew(t, keyA)
	v2 := old.Seal("whsec-canary")
	v1 := sealV1(t, keyA, "legacy-canary")

	// The new key seals; the old one still opens, found by id (v2) or by
	// trying (v1).
	s := mustNew(t, keyB, keyA)
	if s.KeyID() != secrets.KeyID(keyB) {
		t.Fatalf("KeyID = %s", s.KeyID())
	}
	for v, want := range map[string]string{v2: "whsec-canary", v1: "legacy-canary"} {
		if p, err := s.Open(v); err != nil || p != want {
			t.Errorf("Open(%.20s…) = %q, %v", v, p, err)
		}
		if s.Current(v) {
			t.Errorf("a value under the old key is reported current")
		}
	}
	if !s.Current(s.Seal("x")) || !s.Current("") || s.Current("plain") {
		t.Error("Current is wrong for a fresh seal, the empty string or plain text")
	}

	// Without the old key: an error naming the key it needs, not garbage.
	onlyNew := mustNew(t, keyB)
	_, err := onlyNew.Open(v2)
	if !errors.Is(err, secrets.ErrKey) || !strings.Contains(err.Error(), secrets.KeyID(keyA)) {
		t.Errorf("open under a dropped key: %v", err)
	}
	if _, err := onlyNew.Open(v1); !errors.Is(err, secrets.ErrKey) {
		t.Errorf("v1 under a dropped key: %v", err)
	}
	if _, err := mustNew(t, keyC, keyB).Open(v2); !errors.Is(err, secrets.ErrKey) {
		t.Errorf("wrong keys: %v", err)
	}

	// Tampering: a flipped bit, a changed key id.
	b := []byte(v2)
	b[len(b)-3] ^= 1
	if _, err := s.Open(string(b)); !errors.Is(err, secrets.ErrKey) {
		t.Errorf("tampered value opened: %v", err)
	}
	swapped := strings.Replace(s.Seal("x"), secrets.KeyID(keyB), secrets.KeyID(keyA), 1)
	if _, err := s.Open(swapped); !errors.Is(err, secrets.ErrKey) {
		t.Errorf("value with a swapped key id opened: %v", err)
	}
	for _, bad := range []string{"enc:v2:", "enc:v2:abc", "enc:v2:" + s.KeyID() + ":!!!", "enc:v9:x", "enc:v1:@@"} {
		if _, err := s.Open(bad); !errors.Is(err, secrets.ErrKey) {
			t.Errorf("Open(%q) = %v", bad, err)
		}
	}
}

func TestNew(t *testing.T) {
	if s, err := secrets.New(nil); s != nil || err != nil {
		t.Errorf("no keys = %v, %v; want nil, nil", s, err)
	}
	if _, err := secrets.New(nil, keyA); err == nil {
		t.Error("previous keys without a current key were accepted")
	}
	if _, err := secrets.New([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
	if _, err := secrets.New(keyA, []byte("short")); err == nil || !strings.Contains(err.Error(), "previous key 1") {
		t.Errorf("a short previous key: %v", err)
	}
	if _, err := secrets.New(keyA, keyA); err != nil {
		t.Errorf("the current key repeated as a previous one: %v", err)
	}
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(raw) != secrets.KeySize {
		t.Fatalf("GenerateKey = %q (%d bytes, %v)", k, len(raw), err)
	}
	if k2, _ := secrets.GenerateKey(); k2 == k {
		t.Error("two generated keys are equal")
	}
}
