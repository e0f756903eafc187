package pki

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runOpenSSL runs the openssl CLI in dir and returns its combined output,
// failing the test when it exits non-zero.
func runOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := openSSL(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// openSSL runs the openssl CLI and returns output and error, for tests that
// expect it to fail.
func openSSL(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("the openssl CLI is needed for this test (apt-get install openssl): %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
	}
}

// newCA makes an unencrypted CA in a temporary directory.
func newCA(t *testing.T, opts InitOptions) *CA {
	t.Helper()
	if len(opts.Password) == 0 {
		opts.NoPassword = true
	}
	if opts.CommonName == "" {
		opts.CommonName = "Test CA"
	}
	c, err := Init(filepath.Join(t.TempDir(), "ca"), opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return c
}
