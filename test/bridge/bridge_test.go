package bridge

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// TestBridgePairs bridges an edge broker to a remote one for every pair of
// programs, plain and over TLS with a client certificate, and checks the
// three kinds of topic lines with real clients at both ends: out (with a
// remote prefix), in (with the prefix removed), and both — where each
// message must arrive exactly once on the other side and never come back
// (loop prevention: try_private on MQTT 3.1.1 bridges). The bridge's state
// is published retained on the remote ($SYS/broker/connection/NAME/state).
func TestBridgePairs(t *testing.T) {
	cases := []struct {
		edge, remote kind
		tls          bool
		// mamori's own bridge options: a PKCS#12 client certificate, and
		// bridge_servername with a certificate that has no IP address.
		p12, servername bool
		v5              bool // bridge_protocol_version mqttv50 (loops prevented by No Local)
	}{
		{mamori, mamori, false, false, false, false},
		{mamori, mamori, true, false, false, false},
		{mamori, mamori, true, true, true, false},
		{mamori, mamori, false, false, false, true},
		{mamori, mosquitto, false, false, false, false},
		{mamori, mosquitto, true, false, false, false},
		{mamori, mosquitto, false, false, false, true},
		{mosquitto, mamori, false, false, false, false},
		{mosquitto, mamori, true, false, false, false},
		{mosquitto, mamori, false, false, false, true},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s_to_%s", tc.edge, tc.remote)
		if tc.tls {
			name += "_tls"
		}
		if tc.p12 {
			name += "_p12_servername"
		}
		if tc.v5 {
			name += "_mqttv50"
		}
		t.Run(name, func(t *testing.T) {
			remoteConf := "allow_anonymous true\n"
			extraV5 := ""
			var certs testPKI
			tlsPort := 0
			if tc.v5 {
				extraV5 = "bridge_protocol_version mqttv50"
			}
			if tc.tls {
				certs = newPKI(t)
				var block string
				block, tlsPort = certs.tlsListener(t, tc.servername)
				remoteConf += block
			}
			remote := startNode(t, tc.remote, remoteConf)
			addr := remote.addr()
			extra := []string{
				`topic sensors/# out 1 "" edge1/`,
				`topic cmd/# in 1 "" edge1/`,
				"topic both/# both 1",
				extraV5,
			}
			switch {
			case tc.p12:
				addr = "127.0.0.1:" + strconv.Itoa(tlsPort)
				extra = append(extra, "bridge_cafile "+certs.ca, "bridge_certfile "+certs.clientP12,
					"bridge_keyfile_password "+p12Pass, "bridge_servername broker.test")
			case tc.tls:
				addr = "127.0.0.1:" + strconv.Itoa(tlsPort)
				extra = append(extra, certs.bridgeTLS())
			}
			edge := startNode(t, tc.edge, "allow_anonymous true\n"+
				fmt.Sprintf("connection edge1\naddress %s\nremote_clientid edge1\nrestart_timeout 1\n%s\n", addr, strings.Join(extra, "\n")))
			waitConnected(edge, 2, 1) // two subscriptions: cmd/# and both/#

			state := sub(t, remote, "-v", "-t", "$SYS/broker/connection/edge1/state")
			state.WaitLine("$SYS/broker/connection/edge1/state 1")

			// out, with the remote prefix added.
			outSub := sub(t, remote, "-v", "-q", "1", "-t", "edge1/sensors/#")
			pub(t, edge, "-q", "1", "-t", "sensors/t1", "-m", "21.5")
			outSub.WaitLine("edge1/sensors/t1 21.5")

			// in, with the remote prefix removed.
			inSub := sub(t, edge, "-v", "-q", "1", "-t", "cmd/#")
			pub(t, remote, "-q", "1", "-t", "edge1/cmd/valve", "-m", "open")
			inSub.WaitLine("cmd/valve open")

			// both: once across, never back.
			remoteBoth := sub(t, remote, "-v", "-q", "1", "-t", "both/#")
			edgeBoth := sub(t, edge, "-v", "-q", "1", "-t", "both/#")
			pub(t, edge, "-q", "1", "-t", "both/a", "-m", "from-edge")
			remoteBoth.WaitLine("both/a from-edge")
			pub(t, remote, "-q", "1", "-t", "both/b", "-m", "from-remote")
			edgeBoth.WaitLine("both/b from-remote")
			// Markers sent after: an echo of either message would travel the
			// same FIFO path ahead of them.
			pub(t, remote, "-q", "1", "-t", "both/m1", "-m", "marker")
			edgeBoth.WaitLine("both/m1 marker")
			pub(t, edge, "-q", "1", "-t", "both/m2", "-m", "marker")
			remoteBoth.WaitLine("both/m2 marker")
			for _, c := range []struct {
				p    *brokertest.Proc
				line string
			}{
				{remoteBoth, "both/a from-edge"}, {remoteBoth, "both/b from-remote"}, {remoteBoth, "both/m1 marker"},
				{edgeBoth, "both/a from-edge"}, {edgeBoth, "both/b from-remote"}, {edgeBoth, "both/m2 marker"},
			} {
				c.p.WaitLine(c.line) // local deliveries too, before counting
				if n := countStdout(c.p, c.line); n != 1 {
					t.Errorf("%s received %q %d times, want once (a loop?)\n%s", c.p.Name(), c.line, n, c.p.Stdout())
				}
			}
		})
	}
}

// countStdout counts the lines of p's standard output equal to line.
func countStdout(p *brokertest.Proc, line string) int {
	n := 0
	for _, l := range strings.Split(p.Stdout(), "\n") {
		if l == line {
			n++
		}
	}
	return n
}

// persistentRemote starts a mosquitto with persistence, so that the
// session of a subscriber survives its restart.
func persistentRemote(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	return startNode(t, mosquitto, fmt.Sprintf("allow_anonymous true\npersistence true\npersistence_location %s/\n", dir))
}

// waitAll waits until a `mosquitto_sub -v` subscriber has printed every
// number 1..n on topic (duplicates are allowed at QoS 1, losses are not).
func waitAll(t *testing.T, p *brokertest.Proc, topic string, n int) {
	t.Helper()
	missing := func() []int {
		seen := map[int]bool{}
		for _, l := range strings.Split(p.Stdout(), "\n") {
			if v, ok := strings.CutPrefix(l, topic+" "); ok {
				if i, err := strconv.Atoi(v); err == nil {
					seen[i] = true
				}
			}
		}
		var out []int
		for i := 1; i <= n; i++ {
			if !seen[i] {
				out = append(out, i)
			}
		}
		return out
	}
	p.WaitFor(fmt.Sprintf("all %d messages on %s", n, topic), func() bool { return len(missing()) == 0 })
}

// TestRemoteRestartMidStream restarts the remote broker while a stream of
// QoS 1 messages crosses the bridge: every message reaches the persistent
// subscriber on the remote (those in flight are resent with DUP, those
// published meanwhile wait in the bridge's queue).
func TestRemoteRestartMidStream(t *testing.T) {
	remote := persistentRemote(t)
	edge := startNode(t, mamori, "allow_anonymous true\n"+bridgeConf("edge1", remote, "topic t/# out 1", "cleansession false"))
	waitConnected(edge, 0, 1)
	s := sub(t, remote, "-v", "-q", "1", "-c", "-i", "persistent-sub", "-t", "t/#")

	// A paced stream of 300 messages (about 3 s), so that the restart falls
	// in its middle.
	brokertest.RequireTools(t, "sh", "seq")
	stream := brokertest.Start(t, "mosquitto_pub -l", []string{"sh", "-c",
		fmt.Sprintf("for i in $(seq 1 300); do echo $i; sleep 0.01; done | mosquitto_pub -l -q 1 -h 127.0.0.1 -p %d -t t/stream", edge.port)})
	s.WaitFor("50 messages before the restart", func() bool { return countPrefix(s, "t/stream ") >= 50 })
	remote.stop()
	remote.start()
	waitConnected(edge, 0, 2)
	if err := stream.Wait(); err != nil {
		t.Fatalf("publisher: %v\n%s", err, stream.Output())
	}
	waitAll(t, s, "t/stream", 300)
}

// TestCleanSessionFalseQueued is the case: with cleansession false
// the remote is stopped, 100 QoS 1 messages are published locally, the
// remote comes back, and a persistent subscriber there gets all 100.
func TestCleanSessionFalseQueued(t *testing.T) {
	remote := persistentRemote(t)
	edge := startNode(t, mamori, "allow_anonymous true\n"+bridgeConf("edge1", remote, "topic q/# out 1", "cleansession false"))
	waitConnected(edge, 0, 1)
	s := sub(t, remote, "-v", "-q", "1", "-c", "-i", "persistent-sub", "-t", "q/#")
	remote.stop()
	edge.proc.WaitLine("Bridge edge1 disconnected")
	brokertest.RequireTools(t, "sh", "seq")
	p := brokertest.Start(t, "mosquitto_pub -l", []string{"sh", "-c",
		fmt.Sprintf("seq 1 100 | mosquitto_pub -l -q 1 -h 127.0.0.1 -p %d -t q/held", edge.port)})
	if err := p.Wait(); err != nil {
		t.Fatalf("publisher: %v\n%s", err, p.Output())
	}
	if countPrefix(s, "q/held ") != 0 {
		t.Fatalf("messages arrived while the remote was stopped:\n%s", s.Stdout())
	}
	remote.start()
	waitConnected(edge, 0, 2)
	waitAll(t, s, "q/held", 100)
}

// countPrefix counts stdout lines of p that start with prefix.
func countPrefix(p *brokertest.Proc, prefix string) int {
	n := 0
	for _, l := range strings.Split(p.Stdout(), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestBridgeTLSFailureExplained: a bridge whose remote presents a
// certificate for another name says so in its log, in the words of
// `mamori pub`, with the bridge option that fixes it.
func TestBridgeTLSFailureExplained(t *testing.T) {
	certs := newPKI(t)
	block, port := certs.tlsListener(t, true) // valid for broker.test only
	startNode(t, mamori, "allow_anonymous true\n"+block)
	edge := startNode(t, mamori, "allow_anonymous true\n"+
		fmt.Sprintf("connection edge1\naddress 127.0.0.1:%d\nrestart_timeout 1\ntopic a/# out\n%s", port, certs.bridgeTLS()))
	edge.proc.WaitLine("broker.test")
	out := edge.proc.Output()
	for _, l := range edge.proc.Lines() {
		if strings.Contains(l, "cannot connect") {
			t.Log(l)
			break
		}
	}
	if !strings.Contains(out, "Bridge edge1: cannot connect to 127.0.0.1:") || !strings.Contains(out, "bridge_servername broker.test") {
		t.Errorf("the failure is not explained with the option that fixes it:\n%s", out)
	}
}
