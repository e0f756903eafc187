// Package brokertest holds what the end-to-end test suites (test/interop,
// test/broker, test/tls and the command tests) share: building the mamori
// binary once per test binary — with the race detector when the tests run
// under it, so that a race in the broker fails the test that provoked it —,
// finding free loopback ports, running child processes whose output the
// test waits on (Proc), running brokers on a free port (StartBroker) and
// running one in the test's own process (InProcess).
package brokertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main builds ./cmd/mamori into a temporary directory, stores its path in
// *bin and the absolute path of the package's testdata directory in
// *testdata (when testdata is not nil), runs the tests and removes the
// directory. It returns the exit code for os.Exit. name labels messages.
func Main(m *testing.M, name string, bin, testdata *string) int {
	dir, err := os.MkdirTemp("", "mamori-"+name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if testdata != nil {
		if *testdata, err = filepath.Abs("testdata"); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	*bin = filepath.Join(dir, "mamori")
	if err := Build(*bin); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return m.Run()
}

// Build builds ./cmd/mamori into out with the toolchain running the test
// (`go test` puts its own GOROOT/bin first in PATH), adding -race when the
// test itself runs under the race detector.
func Build(out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build mamori: %w", err)
	}
	args := []string{"build", "-o", out}
	if RaceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, "./cmd/mamori")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", cmd.Args[1:], err, b)
	}
	return nil
}

// ModuleRoot finds the directory holding go.mod, walking up from the
// working directory (the package directory under `go test`).
func ModuleRoot() (string, error) {
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

// FreePort returns a TCP port on host that was free a moment ago. Another
// process may take it before the caller binds it; the suites retry with a
// new port when the broker reports the address in use.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RequireTools skips the test when a program it drives is not installed
// (.ci/run installs them all, so in CI nothing is skipped).
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}
