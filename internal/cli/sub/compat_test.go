package sub_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/cli/pub"
	"github.com/mamori-mqtt/mamori/internal/cli/rr"
	"github.com/mamori-mqtt/mamori/internal/cli/sub"
)

// The compatibility tests run each scenario twice — once with
// mosquitto_pub/mosquitto_sub, once with mamori's commands in-process — and
// compare output and exit codes. Every scenario runs against Debian's
// mosquitto broker and against mamori's broker (the real binary, with the
// same configuration file), so both the clients and the broker are held to
// mosquitto's behaviour.

const mosquittoBin = "/usr/sbin/mosquitto"

type broker struct {
	port, authPort int
	dir            string
}

func freePort(t *testing.T) int { return brokertest.FreePort(t, "127.0.0.1") }

// brokerKinds are the brokers every compatibility scenario runs against.
var brokerKinds = []string{"mosquitto", "mamori"}

var (
	buildOnce sync.Once
	mamoriBin string
	buildErr  error
)

// mamoriBinary builds ./cmd/mamori once for the test binary.
func mamoriBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mamori-compat-")
		if err != nil {
			buildErr = err
			return
		}
		mamoriBin = filepath.Join(dir, "mamori")
		buildErr = brokertest.Build(mamoriBin)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mamoriBin
}

// startBroker runs the broker of the given kind with an anonymous listener
// and one that requires a password (alice/secret), stopped by PID when the
// test ends.
func startBroker(t *testing.T, kind string) *broker {
	t.Helper()
	for _, bin := range []string{mosquittoBin, "mosquitto_pub", "mosquitto_sub", "mosquitto_passwd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	b := &broker{port: freePort(t), authPort: freePort(t), dir: t.TempDir()}
	pw := filepath.Join(b.dir, "pw")
	os.WriteFile(pw, nil, 0o600)
	if out, err := exec.Command("mosquitto_passwd", "-b", pw, "alice", "secret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	conf := fmt.Sprintf(`user root
per_listener_settings true
listener %d 127.0.0.1
allow_anonymous true
listener %d 127.0.0.1
allow_anonymous false
password_file %s
`, b.port, b.authPort, pw)
	cf := filepath.Join(b.dir, "mosquitto.conf")
	os.WriteFile(cf, []byte(conf), 0o600)
	cmd := exec.Command(mosquittoBin, "-c", cf)
	if kind == "mamori" {
		cmd = exec.Command(mamoriBinary(t), "broker", "-c", cf)
		cmd.Env = append(os.Environ(), "MAMORI_DATA_DIR="+filepath.Join(b.dir, "data"))
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range []int{b.port, b.authPort} {
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start: %s", kind, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return b
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines and the
// test polling it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	stdout, stderr string
	rc             int
}

// running is a command started in the background.
type running struct {
	stdout, stderr *syncBuffer
	done           chan int
}

func (r *running) wait(t *testing.T) result {
	t.Helper()
	select {
	case rc := <-r.done:
		return result{r.stdout.String(), r.stderr.String(), rc}
	case <-time.After(15 * time.Second):
		t.Fatalf("command did not finish; output so far: %q %q", r.stdout.String(), r.stderr.String())
	}
	return result{}
}

// start runs prog ("mosquitto_sub"...) either as the real binary or as
// mamori's in-process command. A real process still running when the test
// ends (it failed waiting) is killed by its PID.
func start(t *testing.T, impl, prog string, args []string, stdin string) *running {
	t.Helper()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	if impl == "mosquitto" {
		// stdbuf makes mosquitto's stdout line-buffered, so -d lines can be
		// awaited while it runs.
		cmd := exec.Command("stdbuf", append([]string{"-oL", prog}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		t.Cleanup(func() {
			select {
			case <-exited:
			default:
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		go func() {
			err := cmd.Wait()
			close(exited)
			rc := 0
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else if err != nil {
				rc = -1
			}
			r.done <- rc
		}()
		return r
	}
	go func() {
		in := strings.NewReader(stdin)
		switch prog {
		case "mosquitto_pub":
			r.done <- pub.Run(args, in, r.stdout, r.stderr)
		case "mosquitto_sub":
			r.done <- sub.Run(args, in, r.stdout, r.stderr)
		default:
			r.done <- rr.Run(args, in, r.stdout, r.stderr)
		}
	}()
	return r
}

func runCmd(t *testing.T, impl, prog string, args []string, stdin string) result {
	t.Helper()
	return start(t, impl, prog, args, stdin).wait(t)
}

// waitFor polls out until it contains s.
func waitFor(t *testing.T, r *running, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stdout.String(), s) {
		select {
		case rc := <-r.done:
			t.Fatalf("command exited (%d) before %q: %q %q", rc, s, r.stdout.String(), r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in %q", s, r.stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func subst(args []string, repl map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range repl {
			a = strings.ReplaceAll(a, k, v)
		}
		out[i] = a
	}
	return out
}

func TestCompatPubSub(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run("broker="+kind, func(t *testing.T) { compatPubSub(t, startBroker(t, kind)) })
	}
}

func compatPubSub(t *testing.T, b *broker) {
	host := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.port)}
	cases := []struct {
		name  string
		pub   []string
		stdin string
		sub   []string
		// retained: publish first, then subscribe; otherwise subscribe
		// first. Retained cases publish at QoS 1: a QoS 0 publisher can
		// exit before the broker has stored its message, which a
		// subscriber then receives as a live one (retain flag clear).
		retained bool
	}{
		{"qos0", []string{"-t", "{T}", "-m", "hello"}, "", []string{"-t", "{T}", "-C", "1"}, false},
		{"qos1", []string{"-t", "{T}", "-m", "hello", "-q", "1"}, "", []string{"-t", "{T}", "-C", "1", "-q", "1", "-v"}, false},
		{"qos2", []string{"-t", "{T}", "-m", "hello", "-q", "2"}, "", []string{"-t", "{T}", "-C", "1", "-q", "2", "-v"}, false},
		{"qos2 down to 1", []string{"-t", "{T}", "-m", "x", "-q", "2"}, "", []string{"-t", "{T}", "-C", "1", "-q", "1", "-F", "%q %r %l %t %p"}, false},
		{"v5 qos1", []string{"-t", "{T}", "-m", "hello", "-q", "1", "-V", "5"}, "", []string{"-t", "{T}", "-C", "1", "-q", "1", "-V", "mqttv5", "-v"}, false},
		{"v31", []string{"-t", "{T}", "-m", "old", "-V", "31", "-i", "p31"}, "", []string{"-t", "{T}", "-C", "1", "-V", "31", "-v", "-i", "s31"}, false},
		{"retained qos1", []string{"-t", "{T}", "-m", "kept", "-r", "-q", "1"}, "", []string{"-t", "{T}", "-C", "1", "-F", "%t|%p|%r|%q|%l"}, true},
		{"retained v5 -v", []string{"-t", "{T}/a", "-m", "kept", "-r", "-V", "5", "-q", "1"}, "", []string{"-t", "{T}/#", "-C", "1", "-v", "-V", "5"}, true},
		{"-R skips retained", []string{"-t", "{T}", "-m", "kept", "-r", "-q", "1"}, "", []string{"-t", "{T}", "-R", "-W", "1"}, true},
		{"retained-only", []string{"-t", "{T}", "-m", "kept", "-r", "-q", "1"}, "", []string{"-t", "{T}", "--retained-only", "-W", "3", "-v"}, true},
		{"-T filters", []string{"-t", "{T}/x", "-m", "kept", "-r", "-q", "1"}, "", []string{"-t", "{T}/#", "-T", "{T}/x", "-W", "1"}, true},
		{"-N", []string{"-t", "{T}", "-m", "a", "-r", "-q", "1"}, "", []string{"-t", "{T}", "-C", "1", "-N", "-v"}, true},
		{"-n null -v", []string{"-t", "{T}", "-n"}, "", []string{"-t", "{T}", "-C", "1", "-v"}, false},
		{"-s stdin", []string{"-t", "{T}", "-s"}, "line1\nline2\n", []string{"-t", "{T}", "-C", "1", "-F", "%l:%p"}, false},
		{"-l lines", []string{"-t", "{T}", "-l", "-q", "1"}, "one\ntwo\n\nthree", []string{"-t", "{T}", "-C", "4", "-F", "[%p]"}, false},
		{"--repeat", []string{"-t", "{T}", "-m", "r", "--repeat", "3"}, "", []string{"-t", "{T}", "-C", "3", "-v"}, false},
		{"-F hex and widths", []string{"-t", "{T}", "-m", `he said "hi"\`}, "", []string{"-t", "{T}", "-C", "1", "-F", `%x|%X|%10x|%-10X|%010p|%-20p|%3p|%5.2t|%-6t|\t%%`}, false},
		{"-F json", []string{"-t", "{T}", "-m", "a\tb\"c"}, "", []string{"-t", "{T}", "-C", "1", "-F", `%j`}, false},
		{"-F props", []string{"-t", "{T}", "-m", "p", "-q", "1", "-V", "5", "-D", "publish", "user-property", "k", "v",
			"-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "r/t", "-D", "publish", "correlation-data", "cd",
			"-D", "publish", "payload-format-indicator", "1"},
			"", []string{"-t", "{T}", "-C", "1", "-V", "5", "-q", "1", "-F", `%A|%C|%D|%F|%P|%R|%5S|%m|%-5F|`}, false},
		{"debug qos2", []string{"-t", "{T}", "-m", "d", "-q", "2", "-i", "dp", "-d"}, "", []string{"-t", "{T}", "-C", "1", "-q", "2", "-i", "ds", "-d"}, false},
		{"-E", nil, "", []string{"-t", "{T}", "-E", "-d", "-i", "e"}, true},
		{"-U", nil, "", []string{"-t", "{T}", "-U", "{T}", "-E"}, true},
		// Not -C 2 for the message and the echo of its removal: mosquitto_sub
		// then never exits. -W 3 leaves the echo time under load.
		{"remove-retained", []string{"-t", "{T}", "-m", "gone", "-r", "-q", "1"}, "", []string{"-t", "{T}", "--remove-retained", "-W", "3", "-v"}, true},
		{"-L url", []string{"-L", "mqtt://127.0.0.1:{PORT}/{T}", "-m", "url"}, "", []string{"-L", "mqtt://127.0.0.1:{PORT}/{T}", "-C", "1", "-v"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]result
			var pubRC [2]int
			for i, impl := range []string{"mosquitto", "mamori"} {
				topic := fmt.Sprintf("compat/%s/%s", strings.ReplaceAll(tc.name, " ", "_"), impl)
				repl := map[string]string{"{T}": topic, "{PORT}": strconv.Itoa(b.port)}
				pubArgs := append(append([]string{}, host...), subst(tc.pub, repl)...)
				subArgs := append(append([]string{}, host...), subst(tc.sub, repl)...)
				if tc.pub == nil {
					pubArgs = nil
				}
				if tc.retained {
					if pubArgs != nil {
						r := runCmd(t, impl, "mosquitto_pub", pubArgs, tc.stdin)
						pubRC[i] = r.rc
					}
					got[i] = runCmd(t, impl, "mosquitto_sub", subArgs, "")
					// Leave no retained message behind for the next run.
					runCmd(t, "mosquitto", "mosquitto_pub", append(append([]string{}, host...), "-t", topic, "-r", "-n"), "")
				} else {
					s := start(t, impl, "mosquitto_sub", append(subArgs, "-d"), "")
					waitFor(t, s, "Subscribed (mid")
					r := runCmd(t, impl, "mosquitto_pub", pubArgs, tc.stdin)
					pubRC[i] = r.rc
					got[i] = s.wait(t)
					if !containsArg(tc.sub, "-d") {
						got[i].stdout = stripDebug(got[i].stdout)
					}
				}
				got[i].stdout = strings.ReplaceAll(got[i].stdout, topic, "TOPIC")
				got[i].stderr = strings.ReplaceAll(got[i].stderr, topic, "TOPIC")
			}
			if tc.name == "-F json" {
				got[0].stdout, got[1].stdout = dropTimestamp(got[0].stdout), dropTimestamp(got[1].stdout)
			}
			if got[0] != got[1] || pubRC[0] != pubRC[1] {
				t.Errorf("mosquitto: %+v pub rc %d\nmamori:    %+v pub rc %d", got[0], pubRC[0], got[1], pubRC[1])
			}
		})
	}
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// stripDebug removes the -d lines the test added to learn when the
// subscription is in place.
func stripDebug(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "Client ") || strings.HasPrefix(l, "Subscribed (mid") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func dropTimestamp(s string) string {
	if i := strings.Index(s, `"tst":"`); i >= 0 {
		if j := strings.Index(s[i+7:], `"`); j >= 0 {
			return s[:i+7] + s[i+7+j:]
		}
	}
	return s
}

func TestCompatErrors(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run("broker="+kind, func(t *testing.T) { compatErrors(t, startBroker(t, kind)) })
	}
}

func compatErrors(t *testing.T, b *broker) {
	p, ap := strconv.Itoa(b.port), strconv.Itoa(b.authPort)
	closed := strconv.Itoa(freePort(t))
	cases := []struct {
		name        string
		prog        string
		args        []string
		skipStdout  bool // the help text differs by design
		skipMessage bool
	}{
		{"sub no topic", "mosquitto_sub", []string{"-p", p}, false, false},
		{"sub missing -t value", "mosquitto_sub", []string{"-t"}, false, false},
		{"sub unknown option", "mosquitto_sub", []string{"--bogus", "-t", "a"}, false, false},
		{"sub bad qos", "mosquitto_sub", []string{"-q", "3", "-t", "a"}, false, false},
		{"sub bad version", "mosquitto_sub", []string{"-t", "a", "-V", "7"}, false, false},
		{"sub bad format", "mosquitto_sub", []string{"-t", "a", "-F", "%z"}, false, false},
		{"sub incomplete format", "mosquitto_sub", []string{"-t", "a", "-F", "%-"}, false, false},
		{"sub bad filter", "mosquitto_sub", []string{"-t", "a/#/b"}, false, false},
		{"sub bad count", "mosquitto_sub", []string{"-t", "a", "-C", "0"}, false, false},
		{"sub -R and retained-only", "mosquitto_sub", []string{"-t", "a", "-R", "--retained-only"}, false, false},
		{"sub -c without id", "mosquitto_sub", []string{"-t", "a", "-c"}, false, false},
		{"sub bad property", "mosquitto_sub", []string{"-t", "a", "-D", "connect", "foo", "1"}, false, false},
		{"sub property not allowed", "mosquitto_sub", []string{"-t", "a", "-D", "publish", "session-expiry-interval", "1"}, false, false},
		{"sub property short", "mosquitto_sub", []string{"-t", "a", "-D", "publish"}, false, false},
		{"sub will payload without topic", "mosquitto_sub", []string{"-t", "a", "--will-payload", "x"}, false, false},
		{"sub bad url", "mosquitto_sub", []string{"-L", "foo://x/y"}, false, false},
		{"sub url without topic", "mosquitto_sub", []string{"-L", "mqtt://x"}, false, false},
		{"sub bad proxy", "mosquitto_sub", []string{"-t", "a", "--proxy", "http://x"}, false, false},
		{"sub refused v311", "mosquitto_sub", []string{"-p", ap, "-t", "a"}, false, false},
		{"sub refused v5", "mosquitto_sub", []string{"-p", ap, "-t", "a", "-V", "5"}, false, false},
		{"sub refused bad password", "mosquitto_sub", []string{"-p", ap, "-t", "a", "-u", "alice", "-P", "wrong"}, false, false},
		{"sub unreachable", "mosquitto_sub", []string{"-h", "127.0.0.1", "-p", closed, "-t", "a"}, false, false},
		{"sub unreachable quiet", "mosquitto_sub", []string{"-h", "127.0.0.1", "-p", closed, "-t", "a", "--quiet"}, false, false},
		{"sub timeout", "mosquitto_sub", []string{"-p", p, "-t", "nothing/here", "-W", "1"}, false, false},
		{"sub auth ok", "mosquitto_sub", []string{"-p", ap, "-t", "a", "-u", "alice", "-P", "secret", "-E"}, false, false},
		{"pub no message", "mosquitto_pub", []string{"-t", "a"}, true, false},
		{"pub wildcard topic", "mosquitto_pub", []string{"-t", "a/#", "-m", "x"}, false, false},
		{"pub two modes", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-n"}, false, false},
		{"pub missing file", "mosquitto_pub", []string{"-t", "a", "-f", "/nonexistent/file"}, false, false},
		{"pub -i and -I", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-i", "a", "-I", "b"}, false, false},
		{"pub bad keepalive", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-k", "2"}, false, false},
		{"pub cert without key", "mosquitto_pub", []string{"-t", "a", "-m", "x", "--cert", "c.pem"}, false, false},
		{"pub psk without identity", "mosquitto_pub", []string{"-t", "a", "-m", "x", "--psk", "aa"}, false, false},
		{"pub bad port", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-p", "70000"}, false, false},
		{"pub sub-only flag", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-v"}, false, false},
		{"pub repeat 0", "mosquitto_pub", []string{"-t", "a", "-m", "x", "--repeat", "0"}, false, false},
		{"pub expiry not a number", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-x", "abc"}, false, false},
		{"pub property out of range", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-D", "publish", "payload-format-indicator", "300"}, false, false},
		{"pub duplicate property", "mosquitto_pub", []string{"-t", "a", "-m", "x", "-D", "publish", "content-type", "a", "-D", "publish", "content-type", "b"}, false, false},
		{"pub refused v311", "mosquitto_pub", []string{"-p", ap, "-t", "a", "-m", "x"}, false, false},
		{"pub refused v5", "mosquitto_pub", []string{"-p", ap, "-t", "a", "-m", "x", "-V", "5"}, false, false},
		{"pub unreachable", "mosquitto_pub", []string{"-h", "127.0.0.1", "-p", closed, "-t", "a", "-m", "x"}, false, false},
		{"pub auth ok", "mosquitto_pub", []string{"-p", ap, "-t", "a", "-m", "x", "-u", "alice", "-P", "secret"}, false, false},
		{"rr missing response topic", "mosquitto_rr", []string{"-t", "a", "-m", "x"}, false, false},
		{"rr refused", "mosquitto_rr", []string{"-p", ap, "-t", "a", "-m", "x", "-e", "r"}, false, false},
		{"rr timeout", "mosquitto_rr", []string{"-p", p, "-t", "a", "-m", "x", "-e", "r", "-W", "1"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]result
			for i, impl := range []string{"mosquitto", "mamori"} {
				args := tc.args
				if !containsArg(args, "-h") && !containsArg(args, "-L") {
					args = append([]string{"-h", "127.0.0.1"}, args...)
				}
				got[i] = runCmd(t, impl, tc.prog, args, "")
				if tc.skipStdout {
					got[i].stdout = ""
				}
			}
			if got[0] != got[1] {
				t.Errorf("mosquitto: %q\nmamori:    %q", fmt.Sprint(got[0]), fmt.Sprint(got[1]))
			}
		})
	}
}

func TestCompatRR(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run("broker="+kind, func(t *testing.T) { compatRR(t, startBroker(t, kind)) })
	}
}

func compatRR(t *testing.T, b *broker) {
	host := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.port)}
	var got [2]result
	for i, impl := range []string{"mosquitto", "mamori"} {
		req, resp := "rr/req/"+impl, "rr/resp/"+impl
		// A responder: answer the first request on its response topic.
		responder := start(t, "mosquitto", "mosquitto_sub", append(append([]string{}, host...), "-t", req, "-C", "1", "-V", "5", "-F", "%R", "-d"), "")
		waitFor(t, responder, "Subscribed (mid")
		r := start(t, impl, "mosquitto_rr", append(append([]string{}, host...), "-t", req, "-e", resp, "-m", "ping", "-W", "5", "-v"), "")
		res := responder.wait(t)
		lines := strings.Split(strings.TrimSpace(stripDebug(res.stdout)), "\n")
		runCmd(t, "mosquitto", "mosquitto_pub", append(append([]string{}, host...), "-t", lines[len(lines)-1], "-m", "pong"), "")
		got[i] = r.wait(t)
		got[i].stdout = strings.ReplaceAll(got[i].stdout, resp, "RESP")
	}
	if got[0] != got[1] {
		t.Errorf("mosquitto: %+v\nmamori:    %+v", got[0], got[1])
	}
}
