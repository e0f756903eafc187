package bridge

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// kind is the broker program at one end of a bridge.
type kind string

const (
	mamori    kind = "mamori"
	mosquitto kind = "mosquitto"
)

// node is one running broker process on a fixed port, which a test can
// stop and start again on the same port.
type node struct {
	t    *testing.T
	kind kind
	dir  string
	conf string // body of the configuration, without the port line
	port int
	proc *brokertest.Proc
}

// startNode runs kind with conf (the listener line is added) on a free
// port and waits until it runs.
func startNode(t *testing.T, k kind, conf string) *node {
	t.Helper()
	if k == mosquitto {
		if _, err := os.Stat(mosquittoBin); err != nil {
			t.Skip("mosquitto not installed")
		}
	}
	n := &node{t: t, kind: k, dir: t.TempDir(), conf: conf, port: brokertest.FreePort(t, "127.0.0.1")}
	n.start()
	return n
}

func (n *node) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// start (re)starts the broker on n.port.
func (n *node) start() {
	t := n.t
	t.Helper()
	body := fmt.Sprintf("user root\nlistener %d 127.0.0.1\n%s\n", n.port, n.conf)
	if n.kind == mosquitto {
		// -v logs the bridge's CONNACK and SUBACK lines the tests wait for.
		body = "log_dest stderr\nlog_type all\n" + body
	}
	path := filepath.Join(n.dir, "broker.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := []string{mosquittoBin, "-c", path}
	env := []string{}
	if n.kind == mamori {
		argv = []string{mamoriBin, "broker", "-c", path}
		env = brokertest.BrokerEnv(n.dir)
	}
	name := fmt.Sprintf("%s on port %d", n.kind, n.port)
	p := brokertest.Start(t, name, argv, brokertest.Gentle(), brokertest.Env(env...))
	if !brokertest.WaitRunning(t, p, n.addr()) {
		t.Fatalf("%s: port %d taken", name, n.port)
	}
	// Registered after Start's cleanup, so it runs first: a race or panic
	// the broker reports fails the test.
	t.Cleanup(func() {
		p.Stop(true)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if p.HasLine(bad) {
				t.Errorf("%s logged %q:\n%s", name, bad, p.Output())
			}
		}
	})
	n.proc = p
}

// stop stops the broker with SIGTERM (a mosquitto with persistence saves
// its database then) and waits for it.
func (n *node) stop() {
	n.t.Helper()
	n.proc.Stop(true)
}

// sub starts mosquitto_sub against n with args and waits for its SUBACK.
func sub(t *testing.T, n *node, args ...string) *brokertest.Proc {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_sub", "stdbuf")
	argv := append([]string{"stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", strconv.Itoa(n.port)}, args...)
	p := brokertest.Start(t, "mosquitto_sub", argv, brokertest.Gentle())
	p.WaitLine("SUBACK")
	return p
}

// pub runs mosquitto_pub against n to completion.
func pub(t *testing.T, n *node, args ...string) {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_pub")
	argv := append([]string{"mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(n.port)}, args...)
	p := brokertest.Start(t, "mosquitto_pub", argv)
	if err := p.Wait(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, p.Output())
	}
}

// bridgeConf is a bridge block named name to remote; extra lines follow.
func bridgeConf(name string, remote *node, extra ...string) string {
	return fmt.Sprintf("connection %s\naddress %s\nremote_clientid %s\nrestart_timeout 1\n%s\n",
		name, remote.addr(), name, strings.Join(extra, "\n"))
}

// waitConnected waits until the bridging broker n has made its conns-th
// connection and, when the bridge subscribes to subs topics, until the
// remote answered them.
func waitConnected(n *node, subs, conns int) {
	n.t.Helper()
	switch {
	case n.kind == mamori && subs > 0:
		n.proc.WaitLines("the remote answered every subscription", conns)
	case n.kind == mamori:
		n.proc.WaitLines("connected to 127.0.0.1", conns)
	case subs > 0:
		n.proc.WaitLines("Received SUBACK", subs*conns)
	default:
		n.proc.WaitLines("Received CONNACK", conns)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and localhost
// and a client certificate, made with mamori's own CA code.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	// clientP12 is the client certificate, key and chain as a PKCS#12
	// bundle with password p12Pass; namedCert/namedKey a server
	// certificate valid for broker.test only (no IP address).
	clientP12, namedCert, namedKey string
}

const p12Pass = "bundle-pass"

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.Init(dir, pki.InitOptions{CommonName: "bridge test CA", NoPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(pki.IssueRequest{Kind: pki.ServerCert, CommonName: "localhost",
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue(pki.IssueRequest{Kind: pki.ClientCert, CommonName: "edge-bridge"})
	if err != nil {
		t.Fatal(err)
	}
	named, err := ca.Issue(pki.IssueRequest{Kind: pki.ServerCert, CommonName: "broker.test", DNSNames: []string{"broker.test"}})
	if err != nil {
		t.Fatal(err)
	}
	p12, _, err := ca.ExportPKCS12("edge-bridge", pki.ExportOptions{Password: p12Pass})
	if err != nil {
		t.Fatal(err)
	}
	p12Path := filepath.Join(dir, "edge-bridge.p12")
	if err := os.WriteFile(p12Path, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{ca: ca.Path(pki.RootCertFile), serverCert: srv.CertFile, serverKey: srv.KeyFile,
		clientCert: cli.CertFile, clientKey: cli.KeyFile, clientP12: p12Path, namedCert: named.CertFile, namedKey: named.KeyFile}
}

// tlsListener is the remote's TLS listener block (client certificate
// required), on its own port; it returns the block and the port. named
// serves the certificate valid for broker.test only.
func (p testPKI) tlsListener(t *testing.T, named bool) (string, int) {
	port := brokertest.FreePort(t, "127.0.0.1")
	cert, key := p.serverCert, p.serverKey
	if named {
		cert, key = p.namedCert, p.namedKey
	}
	return fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		port, p.ca, cert, key), port
}

// bridgeTLS are the bridge lines that connect with TLS and the client
// certificate.
func (p testPKI) bridgeTLS() string {
	return fmt.Sprintf("bridge_cafile %s\nbridge_certfile %s\nbridge_keyfile %s\n", p.ca, p.clientCert, p.clientKey)
}
