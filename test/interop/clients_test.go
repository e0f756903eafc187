package interop

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// msg is one application message a test publishes or expects.
type msg struct {
	Topic          string      `json:"topic"`
	Payload        string      `json:"payload"`
	QoS            int         `json:"qos"`
	Retain         bool        `json:"retain,omitempty"`
	UserProperties [][2]string `json:"user_properties,omitempty"`
}

// subscription is one topic filter of a SUBSCRIBE.
type subscription struct {
	Topic string `json:"topic"`
	QoS   int    `json:"qos"`
}

// session describes one client connection from CONNECT to its end. The
// Paho and MQTT.js helper scripts take it as JSON; for the mosquitto
// clients it is turned into command-line flags.
type session struct {
	Host          string         `json:"host"`
	Port          int            `json:"port"`
	Version       int            `json:"version"` // protocol level: 3 (3.1), 4 (3.1.1), 5
	ID            string         `json:"id"`
	Clean         bool           `json:"clean"`                    // clean session (3.1.1) / clean start (5)
	SessionExpiry int            `json:"session_expiry,omitempty"` // seconds; 5 only
	Will          *msg           `json:"will,omitempty"`
	Subscribe     []subscription `json:"subscribe,omitempty"`
	Publish       []msg          `json:"publish,omitempty"`
	Burst         bool           `json:"burst,omitempty"` // MQTT.js only: publish without waiting for each acknowledgement
	Count         int            `json:"count"`           // messages to receive before ending
	End           string         `json:"end"`             // "disconnect", "abort" (no DISCONNECT) or "hold"
	Timeout       int            `json:"timeout"`
	Username      *string        `json:"username,omitempty"`
	Password      string         `json:"password,omitempty"`
	ExpectRefused bool           `json:"expect_refused,omitempty"` // report a refused CONNECT as an event
	CAFile        string         `json:"cafile,omitempty"`         // TLS (Paho only): trust this CA
	CertFile      string         `json:"certfile,omitempty"`       // and present this client certificate
	KeyFile       string         `json:"keyfile,omitempty"`
}

// family is a client implementation.
type family string

const (
	mosquitto family = "mosquitto" // mosquitto_pub / mosquitto_sub
	paho      family = "paho"      // Eclipse Paho Python
	mqttjs    family = "mqttjs"    // MQTT.js
)

// client is one client implementation speaking one protocol version.
type client struct {
	family  family
	version int // protocol level: 3 (3.1), 4 (3.1.1), 5
}

// allClients is every client and protocol version the issue asks for.
var allClients = []client{
	{mosquitto, 3}, {mosquitto, 4}, {mosquitto, 5},
	{paho, 4}, {paho, 5},
	{mqttjs, 4}, {mqttjs, 5},
}

func (c client) String() string {
	return fmt.Sprintf("%s-%s", c.family, versionName(c.version))
}

func versionName(v int) string {
	switch v {
	case 3:
		return "v31"
	case 4:
		return "v311"
	}
	return "v5"
}

// reportsSessionPresent says whether the client shows the CONNACK's
// session present flag (mosquitto_sub does not print it).
func (c client) reportsSessionPresent() bool { return c.family != mosquitto }

// require skips the test when the client is not installed.
func (c client) require(t *testing.T) {
	t.Helper()
	var err error
	switch c.family {
	case mosquitto:
		err = mosquittoAvailable()
	case paho:
		_, err = pahoPython()
	case mqttjs:
		err = mqttjsAvailable()
	}
	if err != nil {
		t.Skipf("%s not installed: %v", c.family, err)
	}
}

// mosquittoAvailable checks for mosquitto_pub and mosquitto_sub, and for
// coreutils' stdbuf: mosquitto_sub only flushes its output when a message
// arrives, so without line buffering the test could not see "Subscribed".
var mosquittoAvailable = sync.OnceValue(func() error {
	for _, p := range []string{"mosquitto_pub", "mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(p); err != nil {
			return err
		}
	}
	return nil
})

// pahoPython finds a Python that imports paho.mqtt: Debian's
// /usr/bin/python3 first (python3-paho-mqtt installs there, while a python3
// earlier in PATH, such as pyenv's, may lack it), then python3 from PATH.
var pahoPython = sync.OnceValues(func() (string, error) {
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	var errs []error
	for _, py := range cands {
		out, err := exec.Command(py, "-c", "import paho.mqtt.client").CombinedOutput()
		if err == nil {
			return py, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v: %s", py, err, strings.TrimSpace(string(out))))
	}
	return "", errors.Join(errs...)
})

// mqttjsAvailable checks for node and for MQTT.js in test/node.
var mqttjsAvailable = sync.OnceValue(func() error {
	if _, err := exec.LookPath("node"); err != nil {
		return err
	}
	pkg := filepath.Join(testdataDir, "..", "..", "node", "node_modules", "mqtt", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		return fmt.Errorf("%w (run npm ci in test/node)", err)
	}
	return nil
})

// start runs one session and returns its process. The session must not
// publish when the client is a mosquitto one (see publish).
func (c client) start(t *testing.T, b *broker, s session) *proc {
	t.Helper()
	c.require(t)
	s.Host, s.Port, s.Version = b.host, b.port, c.version
	if s.End == "" {
		s.End = "disconnect"
	}
	s.Timeout = int(awaitTimeout.Seconds())
	name := fmt.Sprintf("%s %s", c, s.ID)
	switch c.family {
	case mosquitto:
		return startClient(t, name, parseMosquittoSub, c.mosquittoSubArgs(t, s))
	case paho:
		py, _ := pahoPython()
		return startClient(t, name, parseJSONEvent,
			[]string{py, filepath.Join(testdataDir, "paho_client.py"), mustJSON(t, s)})
	default:
		return startClient(t, name, parseJSONEvent,
			[]string{"node", filepath.Join(testdataDir, "mqttjs_client.js"), mustJSON(t, s)})
	}
}

// publish publishes msgs in order, each acknowledged (for QoS > 0) before
// the next is sent, and returns when the client has disconnected.
func (c client) publish(t *testing.T, b *broker, id string, msgs ...msg) {
	t.Helper()
	c.require(t)
	if c.family != mosquitto {
		c.start(t, b, session{ID: id, Clean: true, Publish: msgs}).wait()
		return
	}
	// mosquitto_pub sends one message per run; it exits once the message
	// is acknowledged and it has disconnected.
	for i, m := range msgs {
		args := []string{"mosquitto_pub", "-h", b.host, "-p", b.portString(),
			"-V", mosquittoVersion(c.version), "-i", fmt.Sprintf("%s-%d", id, i),
			"-t", m.Topic, "-q", strconv.Itoa(m.QoS)}
		if m.Payload == "" {
			args = append(args, "-n") // a zero-length payload
		} else {
			args = append(args, "-m", m.Payload)
		}
		if m.Retain {
			args = append(args, "-r")
		}
		for _, up := range m.UserProperties {
			args = append(args, "-D", "publish", "user-property", up[0], up[1])
		}
		startClient(t, fmt.Sprintf("%s %s-%d", c, id, i), nil, args).wait()
	}
}

// abort ends a session started with End "abort" without an MQTT
// DISCONNECT once it is ready. The helper scripts close their socket
// themselves; mosquitto_sub cannot, so it is killed with SIGKILL and the
// kernel closes its connection.
func (c client) abort(p *proc) {
	p.t.Helper()
	if c.family == mosquitto {
		p.Stop(false)
		return
	}
	p.wait()
}

func mosquittoVersion(v int) string {
	switch v {
	case 3:
		return "mqttv31"
	case 4:
		return "mqttv311"
	}
	return "mqttv5"
}

// mosquittoSubArgs maps a session onto mosquitto_sub flags. -d prints
// CONNACK and SUBACK, -F %j prints each message as JSON; stdbuf makes
// stdout line-buffered so both appear as they happen.
func (c client) mosquittoSubArgs(t *testing.T, s session) []string {
	t.Helper()
	if len(s.Publish) > 0 || len(s.Subscribe) != 1 {
		t.Fatalf("mosquitto_sub takes exactly one subscription and cannot publish: %+v", s)
	}
	args := []string{"stdbuf", "-oL", "mosquitto_sub", "-h", s.Host, "-p", strconv.Itoa(s.Port),
		"-V", mosquittoVersion(s.Version), "-i", s.ID, "-d", "-F", "%j",
		"-t", s.Subscribe[0].Topic, "-q", strconv.Itoa(s.Subscribe[0].QoS)}
	if !s.Clean {
		args = append(args, "-c")
	}
	if s.Version == 5 && !s.Clean {
		// Always explicit: with -c, mosquitto_sub's default is -1, a
		// session that never expires, where the session asks for 0.
		args = append(args, "-x", strconv.Itoa(s.SessionExpiry))
	}
	if w := s.Will; w != nil {
		args = append(args, "--will-topic", w.Topic, "--will-payload", w.Payload,
			"--will-qos", strconv.Itoa(w.QoS))
		if w.Retain {
			args = append(args, "--will-retain")
		}
	}
	switch {
	case s.Count > 0:
		args = append(args, "-C", strconv.Itoa(s.Count))
	case s.End == "disconnect":
		args = append(args, "-E") // exit once subscribed
	}
	// "hold" and "abort": run until killed.
	return args
}

// parseMosquittoSub turns mosquitto_sub -d -F %j output into events.
func parseMosquittoSub(line string) (event, bool) {
	switch {
	case strings.HasPrefix(line, "{"):
		var m struct {
			Topic   string `json:"topic"`
			QoS     int    `json:"qos"`
			Retain  int    `json:"retain"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return event{Event: "error", Error: fmt.Sprintf("bad mosquitto_sub line %q: %v", line, err)}, true
		}
		return event{Event: "message", Topic: m.Topic, QoS: m.QoS, Retain: m.Retain != 0, Payload: m.Payload}, true
	case strings.HasPrefix(line, "Subscribed (mid: "):
		// "Subscribed (mid: 1): 2" — the granted QoS of each filter.
		_, list, _ := strings.Cut(line, "): ")
		ev := event{Event: "subscribed"}
		for _, f := range strings.Split(list, ",") {
			g, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return event{Event: "error", Error: fmt.Sprintf("bad SUBACK line %q", line)}, true
			}
			ev.Granted = append(ev.Granted, g)
		}
		return ev, true
	case strings.Contains(line, " received CONNACK ("):
		return event{Event: "connected"}, true
	}
	return event{}, false
}

// parseJSONEvent reads the helper scripts' JSON lines; anything else on
// stdout (a library's warning) is kept for the log but is not an event.
func parseJSONEvent(line string) (event, bool) {
	if !strings.HasPrefix(line, "{") {
		return event{}, false
	}
	var ev event
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		return event{Event: "error", Error: fmt.Sprintf("bad line %q: %v", line, err)}, true
	}
	return ev, true
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newID returns a client identifier that is unique and short enough for
// MQTT 3.1, which allows at most 23 characters.
func newID(role string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return role + "-" + hex.EncodeToString(b[:])
}
