// Package brokercmd tests the `mamori broker` process end to end: each
// listener kind with a real client (mosquitto_sub over a unix socket,
// MQTT.js and mamori's own client over WebSockets, IPv6), per-listener
// settings, SIGHUP reloads that change the password and ACL files under
// connected clients, a broken reload, SIGTERM, pid_file, logging, -d and
// the privilege drop of `user`.
//
// TestMain builds cmd/mamori once. Every broker listens on 127.0.0.1 or ::1
// only, on a port picked at run time; every process has a deadline and is
// stopped by its PID.
package brokercmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mamoriBin is the binary TestMain builds for the package.
var mamoriBin string

// testdataDir is the absolute path of the helper scripts.
var testdataDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mamori-brokercmd-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "brokercmd: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if testdataDir, err = filepath.Abs("testdata"); err != nil {
		fmt.Fprintf(os.Stderr, "brokercmd: %v\n", err)
		return 1
	}
	mamoriBin = filepath.Join(dir, "mamori")
	if err := buildMamori(mamoriBin); err != nil {
		fmt.Fprintf(os.Stderr, "brokercmd: %v\n", err)
		return 1
	}
	return m.Run()
}

// buildMamori builds ./cmd/mamori into out, with the race detector when the
// tests run under it, so a race in the broker fails the test that caused it.
func buildMamori(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	// `go test` puts its own GOROOT/bin first in PATH.
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
