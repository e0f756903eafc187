// Package bridge runs Mosquitto-style bridges between real broker
// processes: two mamori brokers, and mamori with Debian's mosquitto in each
// direction, plain and over TLS with client certificates, with
// mosquitto_pub and mosquitto_sub at both ends. It also restarts the
// remote broker in the middle of a stream and checks that no QoS 1
// message is lost.
//
// Every process is started on a free 127.0.0.1 port and stopped by PID at
// the end of its test. Waits are for log lines and client output, each
// bounded by brokertest.AwaitTimeout.
package bridge

import (
	"os"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// mamoriBin is the binary TestMain builds once for the package (with the
// race detector when the tests run under it).
var mamoriBin string

func TestMain(m *testing.M) {
	os.Exit(brokertest.Main(m, "bridge", &mamoriBin, nil))
}
