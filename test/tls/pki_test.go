package tls

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// caPass protects the CA keys ("openssl genrsa -des3") and every bundle.
const caPass = "capass"

// openssl runs the openssl command in dir, failing the test on error.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// seedCA makes NAME.key with "openssl genrsa -des3" and a self-signed
// NAME.crt with "openssl req -new -x509 -days 3650", as seed 001 does.
func seedCA(t *testing.T, dir, name, subj string) {
	t.Helper()
	openssl(t, dir, "genrsa", "-des3", "-passout", "pass:"+caPass, "-out", name+".key", "2048")
	openssl(t, dir, "req", "-new", "-x509", "-days", "3650", "-key", name+".key", "-passin", "pass:"+caPass,
		"-out", name+".crt", "-subj", subj)
}

// seedLeaf makes NAME.key (openssl genrsa 2048), a CSR and NAME.crt signed
// by ca with "openssl x509 -req -CAcreateserial": an X.509 v1 certificate
// with no SAN, as seeds 000 and 001 make their server certificates.
func seedLeaf(t *testing.T, dir, name, subj, ca string) {
	t.Helper()
	openssl(t, dir, "genrsa", "-out", name+".key", "2048")
	openssl(t, dir, "req", "-new", "-key", name+".key", "-out", name+".csr", "-subj", subj)
	openssl(t, dir, "x509", "-req", "-in", name+".csr", "-CA", ca+".crt", "-CAkey", ca+".key", "-passin", "pass:"+caPass,
		"-CAcreateserial", "-out", name+".crt", "-days", "3650")
}

// caDB is an "openssl ca" database, the way a private CA such as seed
// 002's issues certificates, revokes them and publishes CRLs.
type caDB struct {
	dir string
}

const caConf = `[ ca ]
default_ca = CA_default

[ CA_default ]
dir              = .
database         = $dir/index.txt
new_certs_dir    = $dir/newcerts
certificate      = $dir/ca.crt
private_key      = $dir/ca.key
serial           = $dir/serial
crlnumber        = $dir/crlnumber
default_md       = sha256
default_days     = 365
default_crl_days = 30
policy           = policy_any
unique_subject   = no

[ policy_any ]
commonName = supplied
`

// newCADB makes the CA (key from "openssl genrsa -des3") and its database.
func newCADB(t *testing.T, dir, cn string) *caDB {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "newcerts"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"ca.cnf": caConf, "index.txt": "", "serial": "1000\n", "crlnumber": "01\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seedCA(t, dir, "ca", "/CN="+cn)
	return &caDB{dir: dir}
}

// path is a file of the CA directory.
func (c *caDB) path(name string) string { return filepath.Join(c.dir, name) }

// issue makes NAME.key and NAME.crt for CN=cn with "openssl ca".
func (c *caDB) issue(t *testing.T, name, cn string) {
	t.Helper()
	openssl(t, c.dir, "genrsa", "-out", name+".key", "2048")
	openssl(t, c.dir, "req", "-new", "-key", name+".key", "-out", name+".csr", "-subj", "/CN="+cn)
	openssl(t, c.dir, "ca", "-config", "ca.cnf", "-batch", "-notext", "-passin", "pass:"+caPass,
		"-in", name+".csr", "-out", name+".crt")
}

// revoke revokes NAME.crt in the database.
func (c *caDB) revoke(t *testing.T, name string) {
	t.Helper()
	openssl(t, c.dir, "ca", "-config", "ca.cnf", "-passin", "pass:"+caPass, "-revoke", name+".crt")
}

// crl writes the CA's current CRL (PEM) to out.
func (c *caDB) crl(t *testing.T, out string) {
	t.Helper()
	openssl(t, c.dir, "ca", "-config", "ca.cnf", "-passin", "pass:"+caPass, "-gencrl", "-out", out)
}

// exportPKCS12 bundles NAME.crt, NAME.key and the CA certificate into
// NAME.p12, as the private CA hands out the server's credentials.
func (c *caDB) exportPKCS12(t *testing.T, name string) {
	t.Helper()
	openssl(t, c.dir, "pkcs12", "-export", "-in", name+".crt", "-inkey", name+".key", "-certfile", "ca.crt",
		"-passout", "pass:"+caPass, "-out", name+".p12")
}

// splitPKCS12 splits NAME.p12 as seed 002 does: the certificate with
// "-clcerts -nokeys", the key with "-nocerts -nodes" (then chmod 400).
func (c *caDB) splitPKCS12(t *testing.T, name, crt, key string) {
	t.Helper()
	openssl(t, c.dir, "pkcs12", "-in", name+".p12", "-clcerts", "-nokeys", "-passin", "pass:"+caPass, "-out", crt)
	openssl(t, c.dir, "pkcs12", "-in", name+".p12", "-nocerts", "-nodes", "-passin", "pass:"+caPass, "-out", key)
	if err := os.Chmod(filepath.Join(c.dir, key), 0o400); err != nil {
		t.Fatal(err)
	}
}
