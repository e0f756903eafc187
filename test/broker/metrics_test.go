package brokercmd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// TestMetricsListener: metrics_listener serves Prometheus metrics of the
// broker and of its TLS listeners (handshake failures by reason,
// certificate expiry), and health and readiness checks.
func TestMetricsListener(t *testing.T) {
	loc, _, err := pki.EnsureLocal(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	mport := freePort(t, "127.0.0.1")
	tlsPort := freePort(t, "127.0.0.1")
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("metrics_listener 127.0.0.1:%d\nlistener %d 127.0.0.1\nallow_anonymous true\n"+
			"listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n", mport, port, tlsPort, loc.CertFile, loc.KeyFile)
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)
	get := func(path string) (int, string) {
		t.Helper()
		// A probe retries a refused connection briefly, as a Kubernetes
		// probe does: the endpoint may not accept in the very first
		// instant after the broker reports that it runs.
		var res *http.Response
		var err error
		for deadline := time.Now().Add(awaitTimeout); ; time.Sleep(20 * time.Millisecond) {
			if res, err = http.Get(base + path); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	c := dial(t, client.Options{Address: b.Addr(), ClientID: "m"})
	c.subscribe("m/#")
	c.publish("m/1", "x")
	c.expect("m/1", "x")
	// Plain MQTT sent to the TLS port: a handshake failure, counted by reason.
	nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'x'})
	io.Copy(io.Discard, nc)
	nc.Close()

	want := []string{
		"mamori_broker_clients_connected 1",
		"mamori_broker_messages_received_total 1",
		fmt.Sprintf(`mamori_tls_handshake_failures_total{listener="%d",reason="not TLS"} 1`, tlsPort),
		"mamori_tls_certificate_expiry_seconds{listener=",
		"go_goroutines",
	}
	deadline := time.Now().Add(awaitTimeout)
	for {
		_, body := get("/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
