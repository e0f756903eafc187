package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// tlsConfig builds a listener's TLS configuration. The automatic local CA
// of the no-configuration mode is created here on first start.
func tlsConfig(l *config.Listener) (*tls.Config, string, error) {
	tc := &tls.Config{MinVersion: l.TLS.MinVersion(), NextProtos: []string{"mqtt"}}
	var info string
	if l.AutoCert {
		dir, err := dataDir()
		if err != nil {
			return nil, "", err
		}
		loc, created, err := pki.EnsureLocal(filepath.Join(dir, "local-ca"))
		if err != nil {
			return nil, "", err
		}
		cert, err := tls.LoadX509KeyPair(loc.CertFile, loc.KeyFile)
		if err != nil {
			return nil, "", err
		}
		tc.Certificates = []tls.Certificate{cert}
		verb := "Using"
		if created {
			verb = "Created"
		}
		info = fmt.Sprintf("%s the local CA for TLS on %s: %s\nTry: mamori sub -h localhost -p %d --cafile %s -t '#' -v\n",
			verb, l.Addr(), loc.CAFile, l.Port, loc.CAFile)
		return tc, info, nil
	}
	for _, ck := range l.TLS.Certs {
		if ck.KeyFile.Path == "" {
			return nil, "", errors.New("PKCS#12 certfile needs the TLS layer, which is not available yet")
		}
		cert, err := tls.LoadX509KeyPair(ck.CertFile.Path, ck.KeyFile.Path)
		if err != nil {
			return nil, "", fmt.Errorf("load certfile %s / keyfile %s: %w", ck.CertFile.Path, ck.KeyFile.Path, err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	return tc, "", nil
}

// dataDir is where the broker keeps its own files (the local CA).
func dataDir() (string, error) {
	if d := os.Getenv("MAMORI_DATA_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mamori"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set MAMORI_DATA_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "share", "mamori"), nil
}
