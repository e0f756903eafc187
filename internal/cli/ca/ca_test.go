package ca

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// run calls the command in-process with stdin and returns its output.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// mustRun fails the test unless the command exits 0.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("mamori ca %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("the openssl CLI is needed for this test (apt-get install openssl): %v", err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func mustOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	out, err := openssl(t, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// clearEnv keeps the developer's own CA settings out of the tests.
func clearEnv(t *testing.T) {
	t.Setenv("MAMORI_CA_PASSWORD", "")
	t.Setenv("MAMORI_CA_DIR", "")
}

func TestWorkflowWithOpenSSL(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ca")
	const pass = "factory-ca-pass"

	// The passphrase comes from stdin when it is not a terminal.
	out := mustRun(t, pass+"\n", "init", "--dir", dir, "--cn", "Factory CA", "--intermediate")
	if !strings.Contains(out, "Created CA \"Factory CA\"") || !strings.Contains(out, "encrypted") {
		t.Errorf("init output:\n%s", out)
	}
	if m := mode(t, dir); m != 0o755 {
		t.Errorf("CA dir mode %o", m)
	}
	ca := filepath.Join(dir, "ca.crt")
	inter := filepath.Join(dir, "intermediate.crt")

	// Server certificate: passphrase from a file. "--dir" before the
	// subcommand works too.
	pwFile := filepath.Join(tmp, "pw")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "", "--dir", dir, "issue", "server", "--dns", "mqtt.example.com,broker.local", "--ip", "192.0.2.7", "--password-file", pwFile)
	if !strings.Contains(out, "certfile "+filepath.Join(dir, "issued", "mqtt.example.com-chain.crt")) {
		t.Errorf("issue server output lacks the mosquitto.conf lines:\n%s", out)
	}
	srvCrt := filepath.Join(dir, "issued", "mqtt.example.com.crt")
	srvKey := filepath.Join(dir, "issued", "mqtt.example.com.key")
	srvChain := filepath.Join(dir, "issued", "mqtt.example.com-chain.crt")
	if m := mode(t, srvKey); m != 0o600 {
		t.Errorf("server key mode %o", m)
	}
	mustOpenSSL(t, "verify", "-CAfile", ca, "-untrusted", srvChain, "-purpose", "sslserver", "-verify_hostname", "broker.local", srvCrt)
	text := mustOpenSSL(t, "x509", "-in", srvCrt, "-noout", "-text")
	for _, want := range []string{"DNS:mqtt.example.com", "DNS:broker.local", "IP Address:192.0.2.7", "TLS Web Server Authentication", "Issuer: CN = Factory CA Intermediate"} {
		if !strings.Contains(text, want) {
			t.Errorf("x509 -text lacks %q", want)
		}
	}

	// Client certificate: passphrase from the environment.
	t.Setenv("MAMORI_CA_PASSWORD", pass)
	mustRun(t, "", "issue", "client", "--dir", dir, "--cn", "sensor-01", "--email", "sensor-01@factory.example", "--rsa", "2048")
	cliCrt := filepath.Join(dir, "issued", "sensor-01.crt")
	mustOpenSSL(t, "verify", "-CAfile", ca, "-untrusted", inter, "-purpose", "sslclient", cliCrt)
	text = mustOpenSSL(t, "x509", "-in", cliCrt, "-noout", "-text")
	for _, want := range []string{"email:sensor-01@factory.example", "TLS Web Client Authentication", "Public-Key: (2048 bit)", "Subject: CN = sensor-01"} {
		if !strings.Contains(text, want) {
			t.Errorf("client x509 -text lacks %q:\n%s", want, text)
		}
	}

	// list shows both, with status, expiry and serial.
	out = mustRun(t, "", "list", "--dir", dir)
	serial := regexp.MustCompile(`valid\s+\S+\s+\d+\s+([0-9a-f]+)\s+client\s+sensor-01`).FindStringSubmatch(out)
	if serial == nil || !strings.Contains(out, "mqtt.example.com") {
		t.Fatalf("list output:\n%s", out)
	}

	// revoke by serial writes a CRL that openssl reads and applies.
	out = mustRun(t, "", "revoke", serial[1], "--reason", "keyCompromise", "--dir", dir)
	if !strings.Contains(out, "CRL number 2") {
		t.Errorf("revoke output:\n%s", out)
	}
	crlOut := filepath.Join(tmp, "published.crl")
	out = mustRun(t, "", "crl", "--dir", dir, "--out", crlOut, "--days", "14")
	if !strings.Contains(out, "CRL number 3") {
		t.Errorf("crl output:\n%s", out)
	}
	crlText := mustOpenSSL(t, "crl", "-in", crlOut, "-noout", "-text")
	if !strings.Contains(crlText, strings.ToUpper(serial[1])) || !strings.Contains(crlText, "Key Compromise") || !regexp.MustCompile(`CRL Number:\s*\n\s*3`).MatchString(crlText) {
		t.Errorf("openssl crl -text:\n%s", crlText)
	}
	if o, err := openssl(t, "verify", "-crl_check", "-CAfile", ca, "-untrusted", inter, "-CRLfile", crlOut, cliCrt); err == nil || !strings.Contains(o, "revoked") {
		t.Errorf("openssl verify -crl_check of the revoked client: %v\n%s", err, o)
	}
	mustOpenSSL(t, "verify", "-crl_check", "-CAfile", ca, "-untrusted", inter, "-CRLfile", crlOut, srvCrt)
	out = mustRun(t, "", "list", "--dir", dir, "--json")
	var items []map[string]any
	if err := json.Unmarshal([]byte(out), &items); err != nil || len(items) != 2 || items[1]["state"] != "revoked" || items[1]["reason"] != "keyCompromise" {
		t.Errorf("list --json (%v):\n%s", err, out)
	}

	// PKCS#12, modern and legacy, read by openssl.
	p12 := filepath.Join(tmp, "server.p12")
	mustRun(t, "", "export", "mqtt.example.com", "--p12", "--out", p12, "--password", "exp0rt", "--dir", dir)
	if m := mode(t, p12); m != 0o600 {
		t.Errorf("p12 mode %o", m)
	}
	info := mustOpenSSL(t, "pkcs12", "-info", "-noout", "-in", p12, "-passin", "pass:exp0rt")
	if !strings.Contains(info, "AES-256-CBC") || !strings.Contains(info, "MAC: sha256") {
		t.Errorf("pkcs12 -info (modern):\n%s", info)
	}
	mustRun(t, "", "export", "mqtt.example.com", "--p12", "--legacy", "--password", "exp0rt", "--dir", dir)
	info = mustOpenSSL(t, "pkcs12", "-info", "-noout", "-in", filepath.Join(dir, "issued", "mqtt.example.com.p12"), "-passin", "pass:exp0rt")
	if !strings.Contains(info, "TripleDES") || !strings.Contains(info, "MAC: sha1") {
		t.Errorf("pkcs12 -info (legacy):\n%s", info)
	}
	// The bundle password can also be piped in.
	mustRun(t, "piped-pw\n", "export", "mqtt.example.com", "--p12", "--out", filepath.Join(tmp, "piped.p12"), "--dir", dir)
	mustOpenSSL(t, "pkcs12", "-info", "-noout", "-in", filepath.Join(tmp, "piped.p12"), "-passin", "pass:piped-pw")

	// inspect reads back what was written.
	out = mustRun(t, "", "inspect", p12, "--password", "exp0rt")
	for _, want := range []string{"PKCS#12, 3 certificates, 1 key", "Certificate 1: CN=mqtt.example.com", "key match       yes", "AES-256-CBC"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect p12 lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "", "inspect", crlOut, "--json")
	var rep struct {
		File string `json:"file"`
		CRLs []struct {
			Number  string `json:"number"`
			Revoked []struct {
				Serial string `json:"serial"`
			} `json:"revoked"`
		} `json:"crls"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.CRLs) != 1 || rep.CRLs[0].Number != "3" || rep.CRLs[0].Revoked[0].Serial != serial[1] {
		t.Errorf("inspect --json of the CRL (%v):\n%s", err, out)
	}
	out = mustRun(t, "", "inspect", srvChain, "--key", srvKey, "--ca", ca)
	if !strings.Contains(out, "verified        yes") || !strings.Contains(out, "key match       yes") {
		t.Errorf("inspect chain --key --ca:\n%s", out)
	}
}

func TestWrongPassphrase(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "right-passphrase\n", "init", "--dir", dir)
	_, errOut, code := run(t, "wrong-passphrase\n", "issue", "server", "--dns", "x.example", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "wrong password for "+filepath.Join(dir, "ca.key")) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// A wrong passphrase stops a revocation before anything changes.
	mustRun(t, "right-passphrase\n", "issue", "client", "--cn", "dev", "--dir", dir)
	if _, _, code := run(t, "wrong-passphrase\n", "revoke", "dev", "--dir", dir); code != 1 {
		t.Errorf("revoke with a wrong passphrase: exit %d", code)
	}
	// Listing never needs the passphrase.
	out := mustRun(t, "", "list", "--dir", dir)
	if !regexp.MustCompile(`(?m)^valid .* dev `).MatchString(out) {
		t.Errorf("dev is not valid after a failed revoke:\n%s", out)
	}
}

func TestSignCSR(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ca")
	mustRun(t, "", "init", "--dir", dir, "--no-password")
	csr := filepath.Join(tmp, "dev.csr")
	mustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(tmp, "dev.key"), "-out", csr, "-subj", "/CN=gateway-3")
	out := filepath.Join(tmp, "dev.crt")
	stdout := mustRun(t, "", "sign", csr, "--dir", dir, "--out", out, "--uri", "urn:dev:gw:3")
	if !strings.Contains(stdout, "URI:urn:dev:gw:3") {
		t.Errorf("sign output:\n%s", stdout)
	}
	mustOpenSSL(t, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), "-purpose", "sslclient", out)
	out2 := mustRun(t, "", "inspect", out, "--key", filepath.Join(tmp, "dev.key"))
	if !strings.Contains(out2, "key match       yes") {
		t.Errorf("inspect of the signed certificate:\n%s", out2)
	}
	// A certificate is not a CSR.
	_, errOut, code := run(t, "", "sign", out, "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "is a certificate, not a certificate request") {
		t.Errorf("sign of a certificate: exit %d, %q", code, errOut)
	}
}

// TestInspectSeedRecipe inspects the files that the openssl recipe of seed
// 001 produces, and a PKCS#12 as a private CA hands it out (seed 002).
func TestInspectSeedRecipe(t *testing.T) {
	clearEnv(t)
	d := t.TempDir()
	p := func(name string) string { return filepath.Join(d, name) }
	for _, args := range [][]string{
		{"genrsa", "-des3", "-passout", "pass:capass", "-out", p("ca.key"), "2048"},
		{"genrsa", "-des3", "-traditional", "-passout", "pass:capass", "-out", p("ca-trad.key"), "2048"},
		{"req", "-new", "-x509", "-days", "3650", "-key", p("ca.key"), "-passin", "pass:capass", "-subj", "/CN=User-PC.local", "-out", p("ca.crt")},
		{"genrsa", "-out", p("server.key"), "2048"},
		{"genrsa", "-out", p("other.key"), "2048"},
		{"req", "-new", "-key", p("server.key"), "-subj", "/CN=User-PC.local", "-out", p("server.csr")},
		{"x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-passin", "pass:capass", "-CAcreateserial", "-days", "365", "-out", p("server.crt")},
		{"pkcs12", "-export", "-in", p("server.crt"), "-inkey", p("server.key"), "-certfile", p("ca.crt"), "-passout", "pass:p12pass", "-out", p("server.p12")},
	} {
		mustOpenSSL(t, args...)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"v1 server certificate with its key", []string{p("server.crt"), "--key", p("server.key"), "--ca", p("ca.crt")}, 0,
			[]string{"Certificate 1: CN=User-PC.local", "X.509 v1", "no subjectAltName", "key match       yes", "verified        yes", "days left"}},
		{"certificate with another key", []string{p("server.crt"), "--key", p("other.key")}, 1,
			[]string{"key match       NO"}},
		{"des3 CA key without password", []string{p("ca.key")}, 0,
			[]string{"unknown until decrypted", "not decrypted: give --password"}},
		{"des3 CA key with password", []string{p("ca.key"), "--password", "capass"}, 0,
			[]string{"RSA 2048", "PBES2"}},
		{"traditional des3 key", []string{p("ca-trad.key"), "--password", "capass"}, 0,
			[]string{"RSA 2048", "legacy PEM, DES-EDE3-CBC", "format          PKCS#1"}},
		{"wrong password", []string{p("ca-trad.key"), "--password", "nope"}, 1, nil},
		{"PKCS#12 without password", []string{p("server.p12")}, 1, nil},
		{"PKCS#12", []string{p("server.p12"), "--password", "p12pass"}, 0,
			[]string{"PKCS#12, 2 certificates, 1 key", "(self-signed)", "key match       yes"}},
		{"CSR", []string{p("server.csr")}, 0, []string{"Certificate request 1: CN=User-PC.local", "signature       yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, "", append([]string{"inspect"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if tt.code != 0 && errOut == "" {
				t.Error("failure without a message on stderr")
			}
		})
	}
	_, errOut, _ := run(t, "", "inspect", p("ca-trad.key"), "--password", "nope")
	if !strings.Contains(errOut, "wrong password for "+p("ca-trad.key")) {
		t.Errorf("wrong password message: %q", errOut)
	}
	_, errOut, _ = run(t, "", "inspect", p("server.crt"), "--key", p("other.key"))
	if !strings.Contains(errOut, "key does not match certificate") {
		t.Errorf("mismatch message: %q", errOut)
	}
	_, errOut, _ = run(t, "", "inspect", p("server.p12"))
	if !strings.Contains(errOut, "give --password") {
		t.Errorf("p12 without password message: %q", errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "", "init", "--dir", dir, "--no-password")
	empty := filepath.Join(t.TempDir(), "none")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"no command", "", nil, 2, "Usage: mamori ca"},
		{"unknown command", "", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown flag", "", []string{"list", "--bogus", "--dir", dir}, 2, "unknown flag"},
		{"bad RSA size", "", []string{"init", "--dir", empty, "--rsa", "1024", "--no-password"}, 2, "2048, 3072 or 4096"},
		{"rsa and ed25519", "", []string{"init", "--dir", empty, "--rsa", "2048", "--ed25519", "--no-password"}, 2, "exclude each other"},
		{"empty passphrase", "\n", []string{"init", "--dir", empty}, 2, "--no-password"},
		{"short passphrase", "abc\n", []string{"init", "--dir", empty}, 2, "at least 8"},
		{"no passphrase on stdin", "", []string{"init", "--dir", empty}, 1, "nothing on standard input"},
		{"init twice", "", []string{"init", "--dir", dir, "--no-password"}, 1, "already exists"},
		{"issue without kind", "", []string{"issue", "--dir", dir}, 2, "expected 1 argument"},
		{"issue unknown kind", "", []string{"issue", "router", "--dir", dir}, 2, "issue server or issue client"},
		{"server without names", "", []string{"issue", "server", "--dir", dir}, 1, "--dns"},
		{"client without CN", "", []string{"issue", "client", "--dir", dir}, 1, "--cn"},
		{"bad IP", "", []string{"issue", "server", "--ip", "300.1.1.1", "--dir", dir}, 2, "not an IP address"},
		{"email on server", "", []string{"issue", "server", "--dns", "a.example", "--email", "a@b.c", "--dir", dir}, 2, "client certificates"},
		{"export without format", "", []string{"export", "x", "--dir", dir}, 2, "--p12"},
		{"export unknown", "", []string{"export", "x", "--p12", "--password", "p", "--dir", dir}, 1, "no certificate"},
		{"revoke unknown", "", []string{"revoke", "abcdef", "--dir", dir}, 1, "no certificate"},
		{"bad reason", "", []string{"revoke", "x", "--reason", "boredom", "--dir", dir}, 2, "unknown revocation reason"},
		{"no CA", "", []string{"list", "--dir", empty}, 1, "mamori ca init"},
		{"inspect missing file", "", []string{"inspect", empty}, 1, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)\nstdout: %s", code, tt.code, errOut, tt.stderr, out)
			}
		})
	}
	// Help goes to stdout and succeeds.
	for _, args := range [][]string{{"--help"}, {"issue", "--help"}} {
		out, _, code := run(t, "", args...)
		if code != 0 || !strings.Contains(out, "Usage: mamori ca") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestDefaultDirFromEnvironment(t *testing.T) {
	clearEnv(t)
	dataHome := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataHome)
	mustRun(t, "", "init", "--no-password", "--ed25519")
	if _, err := os.Stat(filepath.Join(dataHome, "mamori", "ca", "ca.crt")); err != nil {
		t.Errorf("default directory not used: %v", err)
	}
	custom := filepath.Join(t.TempDir(), "custom")
	t.Setenv("MAMORI_CA_DIR", custom)
	mustRun(t, "", "init", "--no-password")
	out := mustRun(t, "", "list")
	if !strings.Contains(out, custom) {
		t.Errorf("MAMORI_CA_DIR not used by list:\n%s", out)
	}
}
