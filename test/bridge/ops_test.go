package bridge

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// TestBridgeMetrics scrapes metrics_listener: the bridge is connected and
// has counted the message it forwarded.
func TestBridgeMetrics(t *testing.T) {
	remote := startNode(t, mamori, "allow_anonymous true\n")
	mport := brokertest.FreePort(t, "127.0.0.1")
	edge := startNode(t, mamori, fmt.Sprintf("allow_anonymous true\nmetrics_listener 127.0.0.1:%d\n", mport)+
		bridgeConf("edge1", remote, "topic m/# out 1"))
	waitConnected(edge, 0, 1)
	s := sub(t, remote, "-v", "-t", "m/#")
	pub(t, edge, "-q", "1", "-t", "m/1", "-m", "x")
	s.WaitLine("m/1 x")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`mamori_bridge_connected{bridge="edge1"} 1`,
		`mamori_bridge_messages_out_total{bridge="edge1"} 1`,
		`mamori_bridge_reconnects_total{bridge="edge1"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// TestBridgeReload: as in Mosquitto 2.0, SIGHUP does not change a running
// bridge; the log names the changed connection and says a restart applies
// it, and the bridge keeps working.
func TestBridgeReload(t *testing.T) {
	remote := startNode(t, mamori, "allow_anonymous true\n")
	edge := startNode(t, mamori, "allow_anonymous true\n"+bridgeConf("edge1", remote, "topic r/# out 1"))
	waitConnected(edge, 0, 1)
	edge.conf = "allow_anonymous true\n" + bridgeConf("edge1", remote, "topic r/# both 1")
	body := fmt.Sprintf("user root\nlistener %d 127.0.0.1\n%s\n", edge.port, edge.conf)
	if err := os.WriteFile(filepath.Join(edge.dir, "broker.conf"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	edge.proc.Signal(syscall.SIGHUP)
	edge.proc.WaitLine("Reload: connection edge1:")
	if !strings.Contains(edge.proc.Output(), "(needs a restart)") {
		t.Errorf("the changed bridge is not reported as needing a restart:\n%s", edge.proc.Output())
	}
	s := sub(t, remote, "-v", "-t", "r/#")
	pub(t, edge, "-q", "1", "-t", "r/1", "-m", "still")
	s.WaitLine("r/1 still")
}

// TestPlainBridgeToTLSPortExplained: a bridge without bridge_cafile
// pointed at a TLS port is told that the port speaks TLS and which option
// to add.
func TestPlainBridgeToTLSPortExplained(t *testing.T) {
	certs := newPKI(t)
	block, port := certs.tlsListener(t, false)
	startNode(t, mamori, "allow_anonymous true\n"+block)
	edge := startNode(t, mamori, "allow_anonymous true\n"+
		fmt.Sprintf("connection edge1\naddress 127.0.0.1:%d\nrestart_timeout 1\ntopic a/# out\n", port))
	edge.proc.WaitLine("speaks TLS")
	if !strings.Contains(edge.proc.Output(), "add bridge_cafile") {
		t.Errorf("no advice to add bridge_cafile:\n%s", edge.proc.Output())
	}
}
