//go:build unix

package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir (creating it) that lasts until
// the returned file is closed or the process ends. Two brokers persisting
// to one directory overwrite each other's segments and lose records that
// were acknowledged, so the second is refused.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: embedded broker: %w", err)
	}
	path := filepath.Join(dir, "herald.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded broker: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("bus: embedded broker: its data directory %s is in use by another process "+
				"(a herald serve or herald broker with the same --data-dir); give each its own data directory, "+
				"or share one broker (herald broker, kafka.brokers)", dir)
		}
		return nil, fmt.Errorf("bus: embedded broker: lock %s: %w", path, err)
	}
	return f, nil
}
