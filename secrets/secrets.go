// Package secrets encrypts Herald's secrets at rest (users' Slack tokens and
// webhook signing secrets in the database, cached contacts in Redis) with
// AES-256-GCM under a keyring: one current key that seals, and any number of
// previous keys that only open, so keys can be rotated without downtime.
//
// A sealed value is text:
//
//	enc:v2:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>
//
// where the key id (8 hex digits, derived from the key by a one-way hash)
// picks the key that opens it, and the "enc:v2:<key id>:" header is
// authenticated as additional data. Values written by earlier versions,
//
//	enc:v1:<base64 of nonce ‖ ciphertext ‖ tag>
//
// carry no key id; they are opened by trying each configured key, current
// first. Text without an "enc:" prefix is a value stored before encryption
// was turned on and is returned as it is.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

const (
	prefix   = "enc:"
	prefixV1 = "enc:v1:"
	prefixV2 = "enc:v2:"
)

// ErrKey is wrapped by Open's errors when a value cannot be opened with the
// configured keys: no key is configured, the value names a key that is not
// configured, or no configured key opens it (a wrong key, or a corrupted or
// tampered value).
var ErrKey = errors.New("secrets: an encrypted value cannot be opened with the configured secrets key (secrets.key, secrets.previousKeys)")

type key struct {
	id   string
	aead cipher.AEAD
}

// Sealer seals with the current key and opens with the current or any
// previous key. A nil *Sealer is valid: it seals nothing (values are stored
// as they are) and fails to open any sealed value. A Sealer is immutable and
// safe for concurrent use.
type Sealer struct {
	current *key
	byID    map[string]*key
	all     []*key // current first, then previous keys in the order given
}

// New returns a Sealer that seals with current and opens with current or any
// of previous. Every key must be KeySize bytes. With no current key and no
// previous keys it returns nil (encryption off); previous keys without a
// current key are an error. A previous key equal to the current one is
// ignored.
func New(current []byte, previous ...[]byte) (*Sealer, error) {
	if len(current) == 0 {
		if len(previous) > 0 {
			return nil, errors.New("secrets: previous keys need a current key to seal with")
		}
		return nil, nil
	}
	s := &Sealer{byID: make(map[string]*key)}
	for i, raw := range append([][]byte{current}, previous...) {
		k, err := newKey(raw)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("secrets: current key: %w", err)
			}
			return nil, fmt.Errorf("secrets: previous key %d: %w", i, err)
		}
		if _, dup := s.byID[k.id]; dup {
			continue // the same key twice
		}
		s.byID[k.id] = k
		s.all = append(s.all, k)
	}
	s.current = s.all[0]
	return s, nil
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("must be %d bytes, not %d", KeySize, len(raw))
	}
	b, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &key{id: KeyID(raw), aead: a}, nil
}

// KeyID returns the id a sealed value carries for key: 8 hex digits of a
// SHA-256 over a label and the key. It identifies the key without revealing
// anything useful about it.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("herald secrets key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// GenerateKey returns a new random key, base64-encoded as the secrets.key
// setting expects.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("secrets: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// KeyID returns the id of the current key ("" for a nil Sealer).
func (s *Sealer) KeyID() string {
	if s == nil {
		return ""
	}
	return s.current.id
}

// IsSealed reports whether v is a sealed value (of any version).
func IsSealed(v string) bool { return strings.HasPrefix(v, prefix) }

// Seal encrypts v with the current key. The empty string stays empty, and a
// nil Sealer returns v unchanged.
func (s *Sealer) Seal(v string) string {
	if s == nil || v == "" {
		return v
	}
	k := s.current
	header := prefixV2 + k.id + ":"
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	return header + base64.RawStdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(v), []byte(header)))
}

// Open returns the plain text of v. Unsealed text is returned as it is. A
// sealed value that cannot be opened is an error wrapping ErrKey; the error
// names the key id the value asks for, never any part of the value.
func (s *Sealer) Open(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, prefixV2):
		return s.openV2(v)
	case strings.HasPrefix(v, prefixV1):
		return s.openV1(strings.TrimPrefix(v, prefixV1))
	case IsSealed(v):
		return "", fmt.Errorf("%w: unknown format (a newer Herald wrote it?)", ErrKey)
	}
	return v, nil // stored before encryption was turned on
}

func (s *Sealer) openV2(v string) (string, error) {
	id, body, ok := strings.Cut(strings.TrimPrefix(v, prefixV2), ":")
	if !ok {
		return "", fmt.Errorf("%w: malformed value", ErrKey)
	}
	if s == nil {
		return "", fmt.Errorf("%w: it was sealed with key %s and no secrets key is configured", ErrKey, id)
	}
	k := s.byID[id]
	if k == nil {
		return "", fmt.Errorf("%w: it was sealed with key %s, which is neither secrets.key (%s) nor in secrets.previousKeys",
			ErrKey, id, s.current.id)
	}
	p, err := open(k, body, []byte(prefixV2+id+":"))
	if err != nil {
		return "", fmt.Errorf("%w: key %s does not open it (corrupted or tampered)", ErrKey, id)
	}
	return p, nil
}

func (s *Sealer) openV1(body string) (string, error) {
	if s == nil {
		return "", fmt.Errorf("%w: no secrets key is configured", ErrKey)
	}
	for _, k := range s.all {
		if p, err := open(k, body, nil); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of the %d configured keys opens it", ErrKey, len(s.all))
}

func open(k *key, body string, ad []byte) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(b) < k.aead.NonceSize() {
		return "", errors.New("malformed")
	}
	n := k.aead.NonceSize()
	p, err := k.aead.Open(nil, b[:n], b[n:], ad)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// Current reports whether v needs no re-sealing to be under the current key:
// it is empty or sealed (in the current format) with the current key. Plain
// text, values in the old format and values sealed with a previous key are
// not current. A nil Sealer reports every unsealed value as current.
func (s *Sealer) Current(v string) bool {
	if v == "" {
		return true
	}
	if s == nil {
		return !IsSealed(v)
	}
	return strings.HasPrefix(v, prefixV2+s.current.id+":")
}
