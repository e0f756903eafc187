package sub_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// writeCA creates a CA and a server certificate for 127.0.0.1/localhost
// signed by it, as PEM files in dir, and returns their paths.
func writeCA(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+"-server.pem"), filepath.Join(dir, name+"-server.key")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, cert, key
}

func TestCompatTLS(t *testing.T) {
	if _, err := exec.LookPath(mosquittoBin); err != nil {
		t.Skip("mosquitto not installed")
	}
	dir := t.TempDir()
	ca, cert, key := writeCA(t, dir, "ca1")
	otherCA, _, _ := writeCA(t, dir, "ca2")
	if _, err := tlsprobe.ClientConfig(tlsprobe.ClientOptions{CAFile: ca}, "127.0.0.1", io.Discard); err != nil &&
		strings.Contains(err.Error(), "not implemented") {
		t.Skipf("tlsprobe: %v", err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "tls.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\n",
		port, ca, cert, key)), 0o600)
	cmd := exec.Command(mosquittoBin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := strconv.Itoa(port)
	cases := []struct {
		name     string
		args     []string
		sameText bool // stderr must match too (TLS explanations differ by design)
	}{
		{"verified", []string{"-h", "127.0.0.1", "-p", p, "--cafile", ca}, true},
		{"verified by name", []string{"-h", "localhost", "-p", p, "--cafile", ca}, true},
		{"unknown CA", []string{"-h", "127.0.0.1", "-p", p, "--cafile", otherCA}, false},
		{"missing CA file", []string{"-h", "127.0.0.1", "-p", p, "--cafile", filepath.Join(dir, "nope.pem")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]result
			for i, impl := range []string{"mosquitto", "mamori"} {
				topic := "tls/" + impl
				got[i] = runCmd(t, impl, "mosquitto_pub", append(tc.args, "-t", topic, "-m", "secret", "-r"), "")
				s := runCmd(t, impl, "mosquitto_sub", append(tc.args, "-t", topic, "-C", "1", "-v"), "")
				got[i].stdout = strings.ReplaceAll(s.stdout, topic, "T") + " sub rc " + strconv.Itoa(s.rc)
				if got[i].rc == 0 {
					runCmd(t, impl, "mosquitto_pub", append(tc.args, "-t", topic, "-n", "-r"), "")
				}
				if !tc.sameText {
					got[i].stderr = ""
				}
			}
			if tc.name == "unknown CA" {
				// mosquitto exits 1 or 8 after a failed handshake depending
				// on when libmosquitto notices it; mamori always exits 8.
				got[0].stdout = strings.Replace(got[0].stdout, "sub rc 1", "sub rc 8", 1)
				if got[0].rc == 1 {
					got[0].rc = 8
				}
			}
			if got[0] != got[1] {
				t.Errorf("mosquitto: %+v\nmamori:    %+v", got[0], got[1])
			}
		})
	}
}
