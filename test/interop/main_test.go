// Package interop runs real MQTT clients — mosquitto_pub/mosquitto_sub,
// Eclipse Paho Python and MQTT.js — against the real mamori binary
// (SPEC §11). The broker's own package tests speak the protocol in process;
// these tests prove that the clients people actually use work with it.
//
// Each test starts its own broker process on a free 127.0.0.1 port, runs
// every client with a deadline, and stops everything it started by PID. A
// client family whose program or module is missing is skipped; CI installs
// all of them (.ci/run).
package interop

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
	os.Exit(brokertest.Main(m, "interop", &mamoriBin, &testdataDir))
}
