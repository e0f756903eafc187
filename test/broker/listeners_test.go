package brokercmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// runBroker runs the broker on a configuration it is expected to refuse,
// and returns its output once it has exited.
func runBroker(t *testing.T, conf string) (*brokertest.Proc, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mamori.conf")
	if err := os.WriteFile(path, []byte("user root\n"+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "mamori broker", []string{mamoriBin, "broker", "-c", path}, brokertest.BrokerEnv(dir)...)
	return p, p.Wait()
}

// makeStaleSocket leaves a socket file at path with nobody listening, as a
// broker killed with SIGKILL does.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// mosquittoSub starts mosquitto_sub with -d, line-buffered, and waits until
// it has its SUBACK.
func mosquittoSub(t *testing.T, args ...string) *brokertest.Proc {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_sub", "stdbuf")
	argv := append([]string{"stdbuf", "-oL", "mosquitto_sub", "-d"}, args...)
	p := startProc(t, "mosquitto_sub", argv)
	p.WaitLine("SUBACK")
	return p
}

// mosquittoPub runs mosquitto_pub to completion.
func mosquittoPub(t *testing.T, args ...string) {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_pub")
	p := startProc(t, "mosquitto_pub", append([]string{"mosquitto_pub"}, args...))
	if err := p.Wait(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v", args, err)
	}
}

func TestUnixSocket(t *testing.T) {
	brokertest.RequireTools(t, "mosquitto_sub", "mosquitto_pub")
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	// A broker killed with SIGKILL leaves its socket file behind; the next
	// one must start anyway.
	makeStaleSocket(t, sock)
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nlistener 0 %s\nallow_anonymous true\n", port, sock)
	})
	b.WaitLine("Opening unix listen socket on " + sock)

	sub := mosquittoSub(t, "--unix", sock, "-t", "u/#", "-v", "-C", "2")
	mosquittoPub(t, "--unix", sock, "-t", "u/unix", "-m", "over the socket")
	mosquittoPub(t, "-h", "127.0.0.1", "-p", b.PortString(), "-t", "u/tcp", "-m", "over tcp")
	if err := sub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	for _, want := range []string{"u/unix over the socket", "u/tcp over tcp"} {
		if !sub.HasLine(want) {
			t.Errorf("mosquitto_sub did not print %q", want)
		}
	}
}

func TestUnixSocketRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := runBroker(t, fmt.Sprintf("listener 0 %s\nallow_anonymous true\n", path))
	if err == nil {
		t.Fatal("broker started on a path that is a regular file")
	}
	if !p.HasLine("is not a socket") {
		t.Errorf("no explanation in the output")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("the file was replaced")
	}
}

// TestWebSockets serves MQTT over WebSockets to MQTT.js (as browsers and
// Node applications use it) and to mamori's own clients. Debian's
// mosquitto_pub/mosquitto_sub are built without WebSocket support, so they
// cannot take part.
func TestWebSockets(t *testing.T) {
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("<h1>mqtt page</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(www, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\nhttp_dir %s\nallow_anonymous true\n", port, www)
	})
	b.WaitLine("Opening websockets listen socket on " + b.Addr())
	url := "ws://" + b.Addr() + "/mqtt"

	// mamori's client library over WebSockets, as a subscriber.
	goSub := dial(t, client.Options{ClientID: "go-ws", Dial: func(ctx context.Context) (net.Conn, error) {
		return client.DialWebSocket(ctx, url, nil, nil)
	}})
	if code := goSub.subscribe("ws/#"); code != packet.ReasonCode(1) {
		t.Fatalf("SUBACK %v", code)
	}

	var js *brokertest.Proc
	if mqttjsAvailableErr() == nil {
		js = startProc(t, "MQTT.js", []string{"node", filepath.Join(testdataDir, "mqttjs_ws.js"), url, "ws/#", "2"})
		js.WaitLine(`"subscribed"`)
	} else {
		t.Logf("MQTT.js part skipped: %v", mqttjsAvailableErr())
	}

	// mamori pub --ws, the mosquitto_pub-compatible command line client.
	pub := startProc(t, "mamori pub --ws", []string{mamoriBin, "pub", "--ws", "-h", "127.0.0.1", "-p", b.PortString(),
		"-t", "ws/cli", "-m", "from mamori pub", "-q", "1"})
	if err := pub.Wait(); err != nil {
		t.Fatalf("mamori pub --ws: %v", err)
	}
	goSub.expect("ws/cli", "from mamori pub")
	goSub.publish("ws/go", "from go")
	goSub.expect("ws/go", "from go")

	if js != nil {
		if err := js.Wait(); err != nil {
			t.Fatalf("MQTT.js: %v", err)
		}
		got := map[string]string{}
		for _, e := range events(js) {
			if e.Event == "message" {
				got[e.Topic] = e.Payload
			}
		}
		if got["ws/cli"] != "from mamori pub" || got["ws/go"] != "from go" {
			t.Errorf("MQTT.js received %v", got)
		}
	}

	// http_dir: files are served, directory listings are not.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + b.Addr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "mqtt page") {
		t.Errorf("GET / = %d %q", code, body)
	}
	if code, _ := get("/private/"); code != 404 {
		t.Errorf("GET /private/ = %d, want 404 (no listings)", code)
	}
}

// mqttjsAvailableErr says why MQTT.js cannot run, or nil.
func mqttjsAvailableErr() error {
	if _, err := os.Stat(filepath.Join(testdataDir, "..", "..", "node", "node_modules", "mqtt", "package.json")); err != nil {
		return fmt.Errorf("MQTT.js not installed (npm ci in test/node): %w", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return err
	}
	return nil
}

func TestIPv6AndBindInterface(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	port6 := freePort(t, "::1")
	var portLo int
	b := startBroker(t, func(port int) string {
		portLo = freePort(t, "127.0.0.1")
		return fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\nlistener %d ::1\nsocket_domain ipv6\nlistener %d\nbind_interface lo\n",
			port, port6, portLo)
	})
	b.WaitLine(fmt.Sprintf("Opening ipv6 listen socket on [::1]:%d.", port6))

	sub := mosquittoSub(t, "-h", "::1", "-p", strconv.Itoa(port6), "-t", "v6/#", "-v", "-C", "1")
	mosquittoPub(t, "-h", "127.0.0.1", "-p", b.PortString(), "-t", "v6/x", "-m", "hello ipv6")
	if err := sub.Wait(); err != nil {
		t.Fatal(err)
	}
	if !sub.HasLine("v6/x hello ipv6") {
		t.Errorf("mosquitto_sub over ::1 did not get the message")
	}

	// bind_interface lo binds the interface's addresses only: 127.0.0.1
	// and ::1 on the same port.
	for _, host := range []string{"127.0.0.1", "::1"} {
		c := dial(t, client.Options{Address: net.JoinHostPort(host, strconv.Itoa(portLo)), ClientID: "lo-" + host})
		c.Disconnect(packet.Success, nil)
	}
	if b.Count(fmt.Sprintf("listen socket on 127.0.0.1:%d.", portLo)) != 1 || b.Count(fmt.Sprintf("listen socket on [::1]:%d.", portLo)) != 1 {
		t.Errorf("bind_interface lo did not open 127.0.0.1 and ::1")
	}
}

func TestMaxConnections(t *testing.T) {
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nmax_connections 2\nallow_anonymous true\n", port)
	})
	c1 := dial(t, client.Options{Address: b.Addr(), ClientID: "c1"})
	dial(t, client.Options{Address: b.Addr(), ClientID: "c2"})
	if _, err := tryDial(t, client.Options{Address: b.Addr(), ClientID: "c3", ConnectTimeout: 5 * time.Second}); err == nil {
		t.Fatal("a third client connected with max_connections 2")
	}
	b.WaitLine("max_connections reached")
	c1.Disconnect(packet.Success, nil)
	// The broker frees the slot when it has seen c1 go.
	deadline := time.Now().Add(awaitTimeout)
	for {
		_, err := tryDial(t, client.Options{Address: b.Addr(), ClientID: "c4"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a client left: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPerListenerSettings runs two listeners with different settings: the
// second has a mount point, max_qos 0 and use_username_as_clientid.
func TestPerListenerSettings(t *testing.T) {
	var port2 int
	b := startBroker(t, func(port int) string {
		port2 = freePort(t, "127.0.0.1")
		return fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\nlistener %d 127.0.0.1\nmount_point tenant/\nmax_qos 0\nuse_username_as_clientid true\n",
			port, port2)
	})
	addr2 := net.JoinHostPort("127.0.0.1", strconv.Itoa(port2))

	plain := dial(t, client.Options{Address: b.Addr(), ClientID: "plain"})
	if code := plain.subscribe("tenant/#"); code != packet.ReasonCode(1) {
		t.Fatalf("SUBACK on the plain listener %v", code)
	}
	tenant := dial(t, client.Options{Address: addr2, ClientID: "ignored", Username: strp("carol")})
	if code := tenant.subscribe("in"); code != packet.Success {
		t.Fatalf("SUBACK on the max_qos 0 listener = %v, want granted QoS 0", code)
	}
	b.WaitLine("as carol (")

	// A publish on the mounted listener lands under the mount point.
	tenant.Publish(context.Background(), &client.Message{Topic: "out", Payload: []byte("from tenant")})
	plain.expect("tenant/out", "from tenant")

	// Its subscription is under the mount point too: only tenant/in
	// reaches it. Mosquitto removes the mount point from the topic it
	// delivers to the mounted client.
	plain.publish("elsewhere", "not for tenant")
	plain.publish("tenant/in", "to tenant")
	select {
	case m := <-tenant.Messages():
		if m == nil {
			t.Fatalf("tenant connection ended: %v", tenant.Err())
		}
		if string(m.Payload) != "to tenant" {
			t.Fatalf("tenant got %s %q", m.Topic, m.Payload)
		}
		if m.Topic != "in" {
			t.Fatalf("tenant got topic %q, want \"in\"", m.Topic)
		}
	case <-time.After(awaitTimeout):
		t.Fatal("tenant got nothing")
	}
}

// TestSecureWebSockets: a TLS listener with `protocol websockets` serves
// wss, with http/1.1 negotiated by ALPN as browsers require.
func TestSecureWebSockets(t *testing.T) {
	loc, _, err := pki.EnsureLocal(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\ncertfile %s\nkeyfile %s\nallow_anonymous true\n",
			port, loc.CertFile, loc.KeyFile)
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(mustRead(t, loc.CAFile)) {
		t.Fatal("no CA certificate")
	}
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}
	c := dial(t, client.Options{ClientID: "wss", Dial: func(ctx context.Context) (net.Conn, error) {
		return client.DialWebSocket(ctx, "wss://"+b.Addr()+"/mqtt", tc, nil)
	}})
	c.subscribe("wss/#")
	c.publish("wss/1", "over tls")
	c.expect("wss/1", "over tls")
}

// TestSecureWebSocketsClientCertificate: on wss, as on TLS over TCP, a
// required client certificate is verified and its CN becomes the user
// name (use_identity_as_username), which the ACL then sees.
func TestSecureWebSocketsClientCertificate(t *testing.T) {
	loc, _, err := pki.EnsureLocal(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Open(loc.Dir, pki.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ca.Issue(pki.IssueRequest{Kind: pki.ClientCert, CommonName: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("user device1\ntopic readwrite devices/device1/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\ncertfile %s\nkeyfile %s\ncafile %s\n"+
			"require_certificate true\nuse_identity_as_username true\nacl_file %s\n",
			port, loc.CertFile, loc.KeyFile, loc.CAFile, acl)
	})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(mustRead(t, loc.CAFile)) {
		t.Fatal("no CA certificate")
	}
	cert, err := tls.LoadX509KeyPair(dev.CertFile, dev.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	wss := func(ctx context.Context) (net.Conn, error) {
		return client.DialWebSocket(ctx, "wss://"+b.Addr()+"/mqtt", tc, nil)
	}
	c := dial(t, client.Options{ClientID: "dev", Dial: wss})
	c.subscribe("devices/device1/#")
	c.publish("devices/device1/t", "allowed by the ACL for CN device1")
	c.expect("devices/device1/t", "allowed by the ACL for CN device1")
	b.WaitLine("u'device1'")
	// connection_messages names the TLS version and the certificate.
	b.WaitLine(`tls="TLS 1.3"`)
	b.WaitLine(`certificate="CN=device1`)

	// Without a certificate the handshake is refused.
	noCert := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if nc, err := tryDial(t, client.Options{ClientID: "anon", ConnectTimeout: 5 * time.Second, Dial: func(ctx context.Context) (net.Conn, error) {
		return client.DialWebSocket(ctx, "wss://"+b.Addr()+"/mqtt", noCert, nil)
	}}); err == nil {
		nc.Close()
		t.Fatal("a wss client without a certificate was let in")
	}
}
