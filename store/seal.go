package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealPrefix marks a value encrypted at rest.
const sealPrefix = "enc:v1:"

// sealer encrypts secrets at rest (Slack tokens) with AES-256-GCM. A nil
// sealer stores them as they are.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) == 0 {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("store: secrets key must be 32 bytes, not %d", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: secrets key: %w", err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("store: secrets key: %w", err)
	}
	return &sealer{aead: a}, nil
}

func (s *sealer) seal(v string) string {
	if s == nil || v == "" {
		return v
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return sealPrefix + base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(v), nil))
}

var errSealed = errors.New("store: a secret is encrypted and no (or another) secrets key is configured")

func (s *sealer) open(v string) (string, error) {
	rest, ok := strings.CutPrefix(v, sealPrefix)
	if !ok {
		return v, nil // stored before encryption was turned on
	}
	if s == nil {
		return "", errSealed
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errSealed
	}
	p, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], nil)
	if err != nil {
		return "", errSealed
	}
	return string(p), nil
}
