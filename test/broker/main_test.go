// Package brokercmd tests the `mamori broker` process end to end: each
// listener kind with a real client (mosquitto_sub over a unix socket,
// MQTT.js and mamori's own client over WebSockets, IPv6), per-listener
// settings, SIGHUP reloads that change the password and ACL files under
// connected clients, a broken reload, SIGTERM, pid_file, logging, -d and
// the privilege drop of `user`.
//
// TestMain builds cmd/mamori once. Every broker listens on 127.0.0.1 or ::1
// only, on a port picked at run time; every process has a deadline and is
// stopped by its PID.
package brokercmd

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
	os.Exit(brokertest.Main(m, "brokercmd", &mamoriBin, &testdataDir))
}
