package interop

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// TestNoConfigServesVerifiedTLS starts the broker with no configuration,
// as a new user does: it must create a local CA on first start, print its
// path and a ready command line, and serve TLS on 127.0.0.1:8883 that
// mamori's own client and mosquitto_sub verify with that CA and no
// --insecure (issue 7). A second start reuses the same CA.
func TestNoConfigServesVerifiedTLS(t *testing.T) {
	// The no-argument start is the only one with the built-in TLS
	// listener (-p PORT means exactly that port, as in Mosquitto), so this
	// test needs Mosquitto's fixed ports 1883 and 8883.
	for _, port := range []string{"1883", "8883"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Fatalf("port %s is taken, so the no-configuration broker cannot start: %v", port, err)
		} else {
			ln.Close()
		}
	}
	data := t.TempDir()
	start := func() (*brokertest.Proc, string) {
		p := brokertest.Start(t, "mamori broker (no arguments)", []string{mamoriBin, "broker"},
			brokertest.Env(brokertest.BrokerEnv(data)...), brokertest.Gentle(), brokertest.Lifetime(0))
		if !waitListening(t, p, 1883) {
			t.Fatal("broker could not bind port 1883")
		}
		return p, "1883"
	}
	p, plain := start()
	caLine := regexp.MustCompile(`^Created the local CA for TLS on 127\.0\.0\.1:8883: (\S+)$`)
	var caFile, try string
	for _, l := range p.Lines() {
		if m := caLine.FindStringSubmatch(l); m != nil {
			caFile = m[1]
		}
		if strings.HasPrefix(l, "Try: mamori sub ") {
			try = l
		}
	}
	if caFile == "" || try == "" {
		t.Fatalf("the broker did not print the CA path and a command line; output: %v", p.Lines())
	}
	if !strings.Contains(try, "--cafile "+caFile) || !strings.Contains(try, "-p 8883") {
		t.Fatalf("printed command line %q does not use the CA %s on port 8883", try, caFile)
	}
	if _, err := os.Stat(caFile); err != nil {
		t.Fatal(err)
	}

	// mamori's client, as printed (with a topic and a count), verifies the
	// server by the name localhost without --insecure.
	sub := startClient(t, "mamori sub", nil, []string{mamoriBin, "sub", "-h", "localhost", "-p", "8883",
		"--cafile", caFile, "-t", "tls/check", "-C", "1", "-v", "-d"})
	sub.WaitLine("SUBACK")
	mosq := startClient(t, "mosquitto_sub", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", "localhost",
		"-p", "8883", "--cafile", caFile, "-t", "tls/check", "-C", "1", "-v", "-d"})
	mosq.WaitLine("SUBACK")
	pub := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", plain, "-t", "tls/check", "-m", "verified")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	sub.WaitLine("tls/check verified")
	mosq.WaitLine("tls/check verified")

	// A second start reuses the CA instead of making a new one.
	p.Stop(true)
	sub.Stop(false)
	mosq.Stop(false)
	before, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := start()
	p2.WaitLine("Using the local CA for TLS on 127.0.0.1:8883: " + caFile)
	after, err := os.ReadFile(filepath.Clean(caFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("the local CA changed on the second start")
	}
}
