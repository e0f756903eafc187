package broker

import (
	"fmt"
	"os"
	"sync"
)

// keyLogFile is --tls-keylog: lines appended to a file created 0600,
// one write per line so concurrent handshakes do not interleave.
type keyLogFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func newKeyLogFile(path string) (*keyLogFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &keyLogFile{path: path, f: f}, nil
}

// Write implements io.Writer for tlspsk.Config.KeyLogWriter.
func (k *keyLogFile) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, err := k.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("--tls-keylog %s: %w", k.path, err)
	}
	return n, nil
}
