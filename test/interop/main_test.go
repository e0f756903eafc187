// Package interop runs real MQTT clients — mosquitto_pub/mosquitto_sub,
// Eclipse Paho Python and MQTT.js — against the real mamori binary
// (SPEC §11). The broker's own package tests speak the protocol in process;
// these tests prove that the clients people actually use work with it.
//
// Each test starts its own broker process on a free 127.0.0.1 port, runs
// every client with a deadline, and stops everything it started by PID. A
// client family whose program or module is missing is skipped; CI installs
// all of them (.ci/run).
package interop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mamoriBin is the broker binary TestMain builds once for the package.
var mamoriBin string

// testdataDir is the absolute path of the helper scripts, so client
// processes can run from any working directory.
var testdataDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mamori-interop-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if testdataDir, err = filepath.Abs("testdata"); err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	mamoriBin = filepath.Join(dir, "mamori")
	if err := buildMamori(mamoriBin); err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	return m.Run()
}

// buildMamori builds ./cmd/mamori into out. When the tests run under the
// race detector the broker is built with it too: real clients drive the
// broker's concurrent paths harder than in-process tests, and a race the
// broker reports fails the test that provoked it (see broker.stop).
func buildMamori(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	// `go test` puts its own GOROOT/bin first in PATH, so this is the same
	// toolchain that built the test.
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

// moduleRoot finds the directory holding go.mod, walking up from the
// test's working directory (the package directory under `go test`).
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
