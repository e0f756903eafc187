package brokercmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// writePasswords writes a Mosquitto password file ($6$ hashes: quick to
// verify, which keeps the test fast; the format is what matters here).
func writePasswords(t *testing.T, path string, users map[string]string) {
	t.Helper()
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := auth.NewHash(auth.SHA512, users[u], 0)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + h + "\n")
	}
	writeFile(t, path, b.String())
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// login connects as user with password.
func login(b *brokertest.Broker, t *testing.T, name, password string) *mqttClient {
	t.Helper()
	return dial(t, client.Options{Address: b.Addr(), ClientID: name, Username: strp(name), Password: []byte(password)})
}

// TestReloadRechecksConnectedClients changes the password file and the ACL
// while clients are connected and sends SIGHUP: a user deleted from the
// password file is disconnected, and a subscription the new ACL no longer
// allows stops delivering (issue 5, item 7).
func TestReloadRechecksConnectedClients(t *testing.T) {
	dir := t.TempDir()
	pw, acl := dir+"/passwd", dir+"/acl"
	writePasswords(t, pw, map[string]string{"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"})
	writeFile(t, acl, "user alice\ntopic read secret/#\ntopic readwrite public/#\n\nuser bob\ntopic readwrite #\n\nuser admin\ntopic readwrite #\n")
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\npassword_file %s\nacl_file %s\n", port, pw, acl)
	})

	alice := login(b, t, "alice", "alice-pw")
	for _, f := range []string{"secret/#", "public/#"} {
		if code := alice.subscribe(f); code != packet.ReasonCode(1) {
			t.Fatalf("alice: SUBACK %s = %v", f, code)
		}
	}
	bob := login(b, t, "bob", "bob-pw")
	admin := login(b, t, "admin", "admin-pw")
	admin.publish("secret/1", "before")
	alice.expect("secret/1", "before")

	// New rules: bob is deleted, alice may no longer read secret/#.
	writePasswords(t, pw, map[string]string{"alice": "alice-pw", "admin": "admin-pw"})
	writeFile(t, acl, "user alice\ntopic readwrite public/#\n\nuser admin\ntopic readwrite #\n")
	b.Signal(syscall.SIGHUP)
	b.WaitLine("1 client(s) disconnected and 1 subscription(s) removed")

	bob.disconnectedWith(packet.ErrNotAuthorized)
	admin.publish("secret/2", "after")
	admin.publish("public/1", "marker")
	// Messages arrive in order, so the marker coming first proves that
	// secret/2 was not delivered.
	alice.expect("public/1", "marker")
	if code := alice.subscribe("secret/#"); code != packet.ErrNotAuthorized {
		t.Errorf("alice re-subscribing to secret/# after reload: %v, want not authorized", code)
	}
	if _, err := tryDial(t, client.Options{Address: b.Addr(), ClientID: "bob2", Username: strp("bob"), Password: []byte("bob-pw")}); err == nil {
		t.Errorf("bob could connect after being deleted")
	}
}

// TestBrokenReloadKeepsRunningConfiguration sends SIGHUP after breaking the
// configuration file, then the password file, then removing the password
// file: each time the broker logs why (file and line) and goes on with the
// configuration it had.
func TestBrokenReloadKeepsRunningConfiguration(t *testing.T) {
	dir := t.TempDir()
	pw := dir + "/passwd"
	writePasswords(t, pw, map[string]string{"alice": "alice-pw"})
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\npassword_file %s\n", port, pw)
	})
	alice := login(b, t, "alice", "alice-pw")
	stillRuns := func(step string) {
		t.Helper()
		if _, err := tryDial(t, client.Options{Address: b.Addr(), ClientID: "new-" + step, Username: strp("alice"), Password: []byte("alice-pw")}); err != nil {
			t.Fatalf("%s: alice cannot connect after the failed reload: %v", step, err)
		}
		select {
		case <-alice.Done():
			t.Fatalf("%s: alice was disconnected: %v", step, alice.Err())
		default:
		}
	}
	good := string(mustRead(t, b.Conf)) // as written, with `user root`
	lines := strings.Count(good, "\n")
	failures := 0
	reload := func() {
		t.Helper()
		failures++
		b.Signal(syscall.SIGHUP)
		b.WaitLines("failed; the running configuration stays in force", failures)
	}

	// 1. A configuration file with an unknown option.
	writeFile(t, b.Conf, good+"no_such_option 1\n")
	reload()
	b.WaitLine(fmt.Sprintf(`mamori.conf:%d: unknown option "no_such_option"`, lines+1))
	stillRuns("bad-option")

	// 2. A password file that cannot be loaded: a user defined twice (a
	// malformed line is only skipped with a warning, as in Mosquitto).
	writeFile(t, b.Conf, good)
	entry := string(mustRead(t, pw))
	writeFile(t, pw, entry+entry)
	reload()
	b.WaitLine(pw + ":2:")
	stillRuns("bad-passwd")

	// 3. A password file that is gone.
	if err := os.Remove(pw); err != nil {
		t.Fatal(err)
	}
	reload()
	b.WaitLine("password_file")
	stillRuns("no-passwd")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReloadReportsListenerChangesAsNeedingRestart changes listeners and a
// broker-wide limit: the listener changes are not applied and are named as
// needing a restart; the limit is applied live.
func TestReloadReportsListenerChangesAsNeedingRestart(t *testing.T) {
	b := startBroker(t, func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)
	})
	port2 := freePort(t, "127.0.0.1")
	conf := string(mustRead(t, b.Conf))
	writeFile(t, b.Conf, conf+"max_connections 1\nlistener "+fmt.Sprint(port2)+" 127.0.0.1\nmax_keepalive 30\n")
	b.Signal(syscall.SIGHUP)
	b.WaitLine("need a restart")
	for _, want := range []string{
		fmt.Sprintf("listener %d 127.0.0.1: added (needs a restart)", port2),
		"max_connections: \"-1\" -> \"1\" (needs a restart)",
		"max_keepalive: \"65535\" -> \"30\" (applied)",
	} {
		if !b.HasLine(want) {
			t.Errorf("no log line containing %q", want)
		}
	}
	// Not half-applied: max_connections 1 is not in force, and the new
	// listener is not open.
	// The new max_keepalive is in force: a client asking for no keep alive
	// is told 30 s (MQTT 5 Server Keep Alive).
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	kc, ack, err := client.Dial(ctx, client.Options{Network: "tcp", Address: b.Addr(), ClientID: "ka", Version: packet.V5, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	kc.Close()
	if !ack.Props.Present(packet.PropServerKeepAlive) || ack.Props.ServerKeepAlive != 30 {
		t.Errorf("max_keepalive 30 not in force after reload: CONNACK %+v", ack.Props)
	}
	dial(t, client.Options{Address: b.Addr(), ClientID: "one"})
	dial(t, client.Options{Address: b.Addr(), ClientID: "two"})
	if c, err := tryDial(t, client.Options{Address: fmt.Sprintf("127.0.0.1:%d", port2), ClientID: "x", ConnectTimeout: 2 * time.Second}); err == nil {
		c.Close()
		t.Errorf("the added listener was opened")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Logf("dial to the added listener: %v", err)
	}
}
