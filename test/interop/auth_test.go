package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// authBroker starts a broker that refuses anonymous clients and reads a
// password file written by Debian's mosquitto_passwd and an ACL in
// Mosquitto's syntax (issue 5).
func authBroker(t *testing.T) *broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto_passwd"); err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	for _, u := range [][2]string{{"alice", "secret"}, {"bob", "hunter2"}} {
		args := []string{"-b", pw, u[0], u[1]}
		if u[0] == "alice" {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	acl := filepath.Join(dir, "acl")
	aclText := "user alice\ntopic readwrite alice/#\ntopic read shared/#\n\nuser bob\ntopic write shared/#\n\npattern readwrite users/%u/#\n"
	if err := os.WriteFile(acl, []byte(aclText), 0o600); err != nil {
		t.Fatal(err)
	}
	return startBroker(t, "allow_anonymous false", "password_file "+pw, "acl_file "+acl)
}

func runOut(t *testing.T, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	rc := 0
	if ee, ok := err.(*exec.ExitError); ok {
		rc = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return string(out), rc
}

func TestAuthRefusedConnect(t *testing.T) {
	b := authBroker(t)
	p := b.portString()
	cases := []struct {
		name string
		args []string
		want string
		rc   int
	}{
		{"v311 wrong password", []string{"-u", "alice", "-P", "wrong"}, "Connection error: Connection Refused: not authorised.", 5},
		{"v311 anonymous", nil, "Connection error: Connection Refused: not authorised.", 5},
		{"v5 wrong password", []string{"-u", "alice", "-P", "wrong", "-V", "5"}, "Connection error: Not authorized", 135},
		{"v311 unknown user", []string{"-u", "mallory", "-P", "x"}, "Connection error: Connection Refused: not authorised.", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, rc := runOut(t, append([]string{"mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-t", "alice/x", "-W", "5"}, tc.args...)...)
			if rc != tc.rc || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d output %q; want exit %d and %q", rc, out, tc.rc, tc.want)
			}
		})
	}
	for _, c := range []client{{paho, 4}, {paho, 5}} {
		t.Run(c.String(), func(t *testing.T) {
			user := "alice"
			pr := c.start(t, b, session{ID: newID("refused"), Username: &user, Password: "wrong", ExpectRefused: true})
			ev := pr.await("refused")
			want := 5
			if c.version == 5 {
				want = 135 // 0x87 not authorized, as Mosquitto 2.0 answers
			}
			if ev.RC != want {
				t.Fatalf("refused with %d, want %d", ev.RC, want)
			}
		})
	}
}

func TestAuthACL(t *testing.T) {
	b := authBroker(t)
	p := b.portString()
	// Subscriptions outside the ACL are refused with a failure code:
	// 0x80 in MQTT 3.1.1, 0x87 in MQTT 5.
	out, _ := runOut(t, "mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-u", "bob", "-P", "hunter2",
		"-t", "alice/secret", "-d", "-W", "5")
	if !strings.Contains(out, "Subscribed (mid: 1): 128") {
		t.Fatalf("v3.1.1 denied subscribe: %s", out)
	}
	out, _ = runOut(t, "mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-u", "bob", "-P", "hunter2", "-V", "5",
		"-t", "alice/secret", "-d", "-W", "5")
	if !strings.Contains(out, "Subscribed (mid: 1): 135") {
		t.Fatalf("v5 denied subscribe: %s", out)
	}
	user := "alice"
	pr := (client{paho, 4}).start(t, b, session{ID: newID("alice"), Username: &user, Password: "secret",
		Subscribe: []subscription{{Topic: "shared/#", QoS: 1}, {Topic: "users/alice/#", QoS: 1}}, Count: 2, End: "disconnect"})
	ev := pr.await("subscribed")
	ev2 := pr.await("subscribed")
	if len(ev.Granted) != 1 || ev.Granted[0] != 1 || len(ev2.Granted) != 1 || ev2.Granted[0] != 1 {
		t.Fatalf("alice's subscriptions: %v %v", ev.Granted, ev2.Granted)
	}
	// bob may write shared/#, but not alice/#: v5 gets PUBACK 0x87, and
	// the message is not delivered; pattern %u lets alice use users/alice.
	out, _ = runOut(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", p, "-u", "bob", "-P", "hunter2", "-V", "5", "-q", "1",
		"-t", "alice/inbox", "-m", "denied", "-d")
	if !strings.Contains(out, "RC:135") {
		t.Fatalf("denied publish not answered with 0x87: %s", out)
	}
	for _, m := range [][]string{{"bob", "hunter2", "shared/news", "from bob"}, {"alice", "secret", "users/alice/note", "mine"}} {
		if out, rc := runOut(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", p, "-u", m[0], "-P", m[1], "-q", "1",
			"-t", m[2], "-m", m[3]); rc != 0 {
			t.Fatalf("publish %v: %d %s", m, rc, out)
		}
	}
	msgs := pr.messages(2)
	got := map[string]string{}
	for _, e := range msgs {
		got[e.Topic] = e.Payload
	}
	if got["shared/news"] != "from bob" || got["users/alice/note"] != "mine" || len(got) != 2 {
		t.Fatalf("alice received %v", got)
	}
}
