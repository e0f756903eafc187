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
	"os"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// mamoriBin is the binary TestMain builds once for the package (with the
// race detector when the tests run under it).
var mamoriBin string

// testdataDir holds the helper scripts, as an absolute path, so processes
// can run from any working directory.
var testdataDir string

func TestMain(m *testing.M) {
	os.Exit(brokertest.Main(m, "tls", &mamoriBin, &testdataDir))
}
