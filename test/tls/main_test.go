// Package tls runs the seeds' TLS procedures (shared/seeds) against the
// real mamori binary with the real clients people use: mosquitto_pub and
// mosquitto_sub, Eclipse Paho Python and openssl s_client. Certificates
// are made at run time with the openssl command exactly as the seeds make
// them: a CA key from "openssl genrsa -des3", X.509 v1 server certificates
// without SAN from "openssl x509 -req", PKCS#12 bundles exported and split
// with "openssl pkcs12", and an "openssl ca" database to revoke
// certificates and issue CRLs.
//
// Each test starts its own broker on a free 127.0.0.1 port and stops every
// process it started by PID. A missing client program is a skip.
package tls

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mamoriBin is the binary TestMain builds once for the package.
var mamoriBin string

// testdataDir holds the helper scripts, as an absolute path.
var testdataDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mamori-tls-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "tls: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if testdataDir, err = filepath.Abs("testdata"); err != nil {
		fmt.Fprintf(os.Stderr, "tls: %v\n", err)
		return 1
	}
	mamoriBin = filepath.Join(dir, "mamori")
	if err := buildMamori(mamoriBin); err != nil {
		fmt.Fprintf(os.Stderr, "tls: %v\n", err)
		return 1
	}
	return m.Run()
}

// buildMamori builds ./cmd/mamori with the toolchain running the test,
// with the race detector when the test has it.
func buildMamori(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build mamori: %w", err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, "./cmd/mamori")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", cmd.Args[1:], err, b)
	}
	return nil
}

// moduleRoot finds the directory holding go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
