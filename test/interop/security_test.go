package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

// Regression tests of issue 20 through real clients, each named after the
// item it shows.

// passwordFile writes a password file with Debian's mosquitto_passwd; each
// user's password is the user name followed by "-pw".
func passwordFile(t *testing.T, dir string, users ...string) string {
	t.Helper()
	if _, err := exec.LookPath("mosquitto_passwd"); err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	pw := filepath.Join(dir, "passwd")
	for i, u := range users {
		args := []string{"-b", pw, u, u + "-pw"}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	return pw
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pubAs publishes one QoS 1 message with mosquitto_pub as user (password
// user-pw) and fails the test unless it exits 0.
func pubAs(t *testing.T, b *broker, user, topic, payload string, extra ...string) {
	t.Helper()
	args := append([]string{"mosquitto_pub", "-h", b.host, "-p", b.portString(), "-u", user, "-P", user + "-pw",
		"-q", "1", "-t", topic, "-m", payload}, extra...)
	if out, rc := runOut(t, args...); rc != 0 {
		t.Fatalf("mosquitto_pub %s as %s: exit %d\n%s", topic, user, rc, out)
	}
}

// aliceSub runs the issue's persistent subscriber:
// mosquitto_sub -u alice -i al -c -q 1 -t '#', with extra flags.
func aliceSub(t *testing.T, b *broker, extra ...string) *proc {
	t.Helper()
	args := append([]string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", b.portString(),
		"-u", "alice", "-P", "alice-pw", "-i", "al", "-c", "-q", "1", "-t", "#", "-v"}, extra...)
	return startClient(t, "mosquitto_sub alice", nil, args)
}

// TestOfflineQueueReadACL (issue 20, item 1): the issue's reproduction with
// Debian's clients. alice may only read a/public/#; her persistent session
// subscribed to "#" must not be handed, on reconnecting, the QoS 1 message
// published on "secret" while she was away.
func TestOfflineQueueReadACL(t *testing.T) {
	dir := t.TempDir()
	pw := passwordFile(t, dir, "alice", "pub")
	acl := filepath.Join(dir, "acl")
	writeText(t, acl, "user alice\ntopic read a/public/#\n\nuser pub\ntopic readwrite #\n")
	b := startBroker(t, "allow_anonymous false", "password_file "+pw, "acl_file "+acl)

	aliceSub(t, b, "-E").wait() // subscribes, then disconnects: the session stays
	pubAs(t, b, "pub", "secret", "not for alice")
	pubAs(t, b, "pub", "a/public/news", "for alice")
	// Queued messages come in order: the first one is the one she may read.
	back := aliceSub(t, b, "-C", "1")
	back.wait()
	if out := strings.TrimSpace(back.Stdout()); out != "a/public/news for alice" {
		t.Fatalf("alice received %q on reconnecting, want only a/public/news", out)
	}
}

// TestOfflineQueueReadACLAfterSIGHUP (issue 20, item 1): a message queued
// while alice could read it is not delivered once a reload (SIGHUP) has
// taken that right away.
func TestOfflineQueueReadACLAfterSIGHUP(t *testing.T) {
	dir := t.TempDir()
	pw := passwordFile(t, dir, "alice", "pub")
	acl := filepath.Join(dir, "acl")
	writeText(t, acl, "user alice\ntopic read a/public/#\ntopic read secret/#\n\nuser pub\ntopic readwrite #\n")
	// As root, the broker would drop to the mosquitto user and could not
	// read the test's private files again on SIGHUP.
	b := startBroker(t, "user root", "allow_anonymous false", "password_file "+pw, "acl_file "+acl)

	aliceSub(t, b, "-E").wait()
	pubAs(t, b, "pub", "secret/plan", "queued while allowed")
	writeText(t, acl, "user alice\ntopic read a/public/#\n\nuser pub\ntopic readwrite #\n")
	b.p.Signal(syscall.SIGHUP)
	b.p.WaitLine("Reload: password, ACL and PSK files re-read")
	pubAs(t, b, "pub", "a/public/marker", "after the reload")
	back := aliceSub(t, b, "-C", "1")
	back.wait()
	if out := strings.TrimSpace(back.Stdout()); out != "a/public/marker after the reload" {
		t.Fatalf("alice received %q after the reload, want only the marker", out)
	}
}

// TestUseUsernameAsClientIDCertificate (issue 20, item 2): with
// use_identity_as_username, use_username_as_clientid takes the client id
// from the certificate. A client with CN=dev1 that sends user name "dev2"
// neither becomes dev2 (taking over its session) nor gets dev2's %c
// rights.
func TestUseUsernameAsClientIDCertificate(t *testing.T) {
	loc, _, err := pki.EnsureLocal(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Open(loc.Dir, pki.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*pki.Issued{}
	for _, cn := range []string{"dev1", "dev2", "ops"} {
		if certs[cn], err = ca.Issue(pki.IssueRequest{Kind: pki.ClientCert, CommonName: cn}); err != nil {
			t.Fatal(err)
		}
	}
	acl := filepath.Join(t.TempDir(), "acl")
	writeText(t, acl, "pattern readwrite dev/%c/#\n\nuser ops\ntopic readwrite #\n")
	tlsPort := freePort(t)
	b := startBroker(t,
		"user root", // the CA directory is private; the broker must not drop privileges here
		fmt.Sprintf("listener %d 127.0.0.1", tlsPort),
		"cafile "+loc.CAFile, "certfile "+loc.CertFile, "keyfile "+loc.KeyFile,
		"require_certificate true", "use_identity_as_username true", "use_username_as_clientid true",
		"acl_file "+acl)
	tlsArgs := func(cn string) []string {
		return []string{"-h", "localhost", "-p", strconv.Itoa(tlsPort), "--cafile", loc.CAFile,
			"--cert", certs[cn].CertFile, "--key", certs[cn].KeyFile}
	}
	dev2 := startClient(t, "mosquitto_sub dev2", nil, append(append([]string{"stdbuf", "-oL", "mosquitto_sub"},
		tlsArgs("dev2")...), "-q", "1", "-t", "dev/dev2/#", "-v", "-d", "-C", "1"))
	dev2.WaitLine("SUBACK")

	// dev1 claims to be dev2, by user name and client id.
	out, rc := runOut(t, append(append([]string{"mosquitto_pub"}, tlsArgs("dev1")...),
		"-u", "dev2", "-i", "dev2", "-q", "1", "-t", "dev/dev2/cmd", "-m", "forged")...)
	if rc != 0 {
		t.Fatalf("mosquitto_pub as dev1: exit %d\n%s", rc, out)
	}
	b.p.WaitLine("as dev1 (")
	out, rc = runOut(t, append(append([]string{"mosquitto_pub"}, tlsArgs("ops")...),
		"-q", "1", "-t", "dev/dev2/cmd", "-m", "from ops")...)
	if rc != 0 {
		t.Fatalf("mosquitto_pub as ops: exit %d\n%s", rc, out)
	}
	dev2.wait()
	if got := dev2.Stdout(); !strings.Contains(got, "dev/dev2/cmd from ops") || strings.Contains(got, "forged") {
		t.Fatalf("dev2 received:\n%s\nwant only the message from ops", got)
	}
	if b.p.HasLine("Client dev2 already connected") {
		t.Fatal("dev1's certificate took over dev2's session")
	}
}

// TestUseUsernameAsClientIDNeedsUserName (issue 20, item 2): a client
// without a user name on a use_username_as_clientid listener is refused,
// as Mosquitto does.
func TestUseUsernameAsClientIDNeedsUserName(t *testing.T) {
	b := startBroker(t, "use_username_as_clientid true")
	out, rc := runOut(t, "mosquitto_sub", "-h", b.host, "-p", b.portString(), "-t", "x", "-W", "5")
	if rc != 5 || !strings.Contains(out, "Connection Refused: not authorised.") {
		t.Fatalf("exit %d, output %q; want exit 5, not authorised", rc, out)
	}
	out, rc = runOut(t, "mosquitto_sub", "-h", b.host, "-p", b.portString(), "-t", "x", "-u", "named", "-E")
	if rc != 0 {
		t.Fatalf("with a user name: exit %d\n%s", rc, out)
	}
}

// TestWillToSysRefused (issue 20, item 8): a will on $SYS is accepted at
// CONNECT, as Mosquitto does, but is neither published nor retained.
func TestWillToSysRefused(t *testing.T) {
	b := startBroker(t)
	port := b.portString()
	watch := startClient(t, "mosquitto_sub watch", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", port,
		"-t", "$SYS/forged/#", "-t", "marker", "-v", "-d", "-C", "1"})
	watch.WaitLine("SUBACK")
	willy := startClient(t, "mosquitto_sub willy", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", port,
		"-i", "willy", "-t", "idle", "-d", "--will-topic", "$SYS/forged/state", "--will-payload", "forged",
		"--will-qos", "1", "--will-retain"})
	willy.WaitLine("SUBACK")
	willy.Stop(false) // SIGKILL: no DISCONNECT, the will is due
	b.p.WaitLine("Will of willy to $SYS/forged/state not published")
	if out, rc := runOut(t, "mosquitto_pub", "-h", b.host, "-p", port, "-q", "1", "-r", "-t", "marker", "-m", "marker"); rc != 0 {
		t.Fatalf("marker: %d %s", rc, out)
	}
	watch.wait()
	if got := watch.Stdout(); !strings.Contains(got, "marker marker") || strings.Contains(got, "forged/state") {
		t.Fatalf("watcher got %q, want the marker only", got)
	}
	// A new subscriber gets retained messages in the order of its filters:
	// a retained will would come before the retained marker.
	late, _ := runOut(t, "mosquitto_sub", "-h", b.host, "-p", port, "-t", "$SYS/forged/#", "-t", "marker", "-v", "-C", "1", "-W", "10")
	if strings.TrimSpace(late) != "marker marker" {
		t.Fatalf("late subscriber got %q, want the retained marker only", late)
	}
}

// TestQoS2BurstMQTT311 (issue 20, item 9): MQTT.js publishing 30 QoS 2
// messages at once over MQTT 3.1.1 — more than max_inflight_messages left
// unreleased — is not disconnected, and every message arrives.
func TestQoS2BurstMQTT311(t *testing.T) {
	js := client{mqttjs, 4}
	js.require(t)
	b := startBroker(t, "max_inflight_messages 20")
	sub := startClient(t, "mosquitto_sub burst", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host,
		"-p", b.portString(), "-q", "2", "-t", "burst/#", "-d", "-C", "30"})
	sub.WaitLine("SUBACK")
	var msgs []msg
	for i := range 30 {
		msgs = append(msgs, msg{Topic: "burst/t", Payload: fmt.Sprintf("m%d", i), QoS: 2})
	}
	pub := js.start(t, b, session{ID: newID("burst"), Clean: true, Publish: msgs, Burst: true})
	for range msgs {
		pub.await("published")
	}
	pub.wait()
	sub.wait()
	if n := strings.Count(sub.Stdout(), "burst/t"); n < 30 {
		t.Fatalf("subscriber printed %d messages, want 30:\n%s", n, sub.Output())
	}
}

// TestStalledSubscriberDoesNotHoldPublisher (issue 20, item 7): a real
// subscriber that stops reading (SIGSTOP) costs its publisher nothing
// beyond its bounded queue. mosquitto_pub sending 60 QoS 1 messages
// finishes within its lifetime (45 s); the old broker held it 5 s per
// message between one and two queues' worth (here 20 × 5 s).
func TestStalledSubscriberDoesNotHoldPublisher(t *testing.T) {
	b := startBroker(t, "max_queued_messages 20", "max_inflight_messages 2")
	port := b.portString()
	sub := startClient(t, "mosquitto_sub stalled", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", port,
		"-i", "stalled", "-q", "1", "-t", "st", "-d"})
	sub.WaitLine("SUBACK")
	sub.Signal(syscall.SIGSTOP)
	t.Cleanup(func() {
		if !sub.Exited() {
			sub.Signal(syscall.SIGCONT)
		}
	})
	pub := startClient(t, "mosquitto_pub -l", nil, []string{"sh", "-c",
		"seq 60 | mosquitto_pub -h 127.0.0.1 -p " + port + " -q 1 -t st -l"})
	pub.wait()
}

// TestMountPointACL (issue 20, item 11): a client of a listener with
// mount_point is checked, on PUBLISH as on SUBSCRIBE, with the topic as
// the mount point makes it — Mosquitto's form — so one ACL rule on
// "mp/dev/#" lets it publish and subscribe there.
func TestMountPointACL(t *testing.T) {
	dir := t.TempDir()
	pw := passwordFile(t, dir, "dev", "watch")
	acl := filepath.Join(dir, "acl")
	writeText(t, acl, "user dev\ntopic readwrite mp/dev/#\n\nuser watch\ntopic readwrite #\n")
	mounted := freePort(t)
	b := startBroker(t, "allow_anonymous false", "password_file "+pw, "acl_file "+acl,
		fmt.Sprintf("listener %d 127.0.0.1", mounted), "mount_point mp/")
	mb := &broker{host: b.host, port: mounted}
	watch := startClient(t, "mosquitto_sub watch", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host,
		"-p", b.portString(), "-u", "watch", "-P", "watch-pw", "-t", "mp/#", "-v", "-d", "-C", "2"})
	watch.WaitLine("SUBACK")
	dev := startClient(t, "mosquitto_sub dev", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", mb.host,
		"-p", mb.portString(), "-u", "dev", "-P", "dev-pw", "-V", "5", "-t", "dev/in", "-v", "-d", "-C", "1"})
	dev.WaitLine("SUBACK")
	// A refused v5 publish would show as reason code 135 in the PUBACK.
	out, rc := runOut(t, "mosquitto_pub", "-h", mb.host, "-p", mb.portString(), "-u", "dev", "-P", "dev-pw",
		"-V", "5", "-q", "1", "-t", "dev/out", "-m", "up", "-d")
	if rc != 0 || strings.Contains(out, "135") {
		t.Fatalf("dev publishing dev/out (mp/dev/out): exit %d\n%s", rc, out)
	}
	pubAs(t, b, "watch", "mp/dev/in", "down")
	dev.wait()
	if got := dev.Stdout(); !strings.Contains(got, "dev/in down") {
		t.Fatalf("dev received %q", got)
	}
	watch.wait()
	if got := watch.Stdout(); !strings.Contains(got, "mp/dev/out up") {
		t.Fatalf("watcher received %q", got)
	}
}

// TestWillExpiryFromPublication (issue 20, item 10): a will's message
// expiry interval counts from when the will is published. The will here
// is published 7 s after the connection ends (will delay) and lives 6 s:
// counted from CONNECT, as before, it was dead on arrival, and its
// retained copy was gone for a subscriber arriving just after it.
func TestWillExpiryFromPublication(t *testing.T) {
	b := startBroker(t)
	port := b.portString()
	watch := startClient(t, "mosquitto_sub watch", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", port,
		"-V", "5", "-t", "will/#", "-v", "-d", "-C", "1"})
	watch.WaitLine("SUBACK")
	willy := startClient(t, "mosquitto_sub willy", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", port,
		"-V", "5", "-i", "willy", "-c", "-x", "30", "-t", "idle", "-d",
		"--will-topic", "will/willy", "--will-payload", "gone", "--will-qos", "1", "--will-retain",
		"-D", "will", "will-delay-interval", "7", "-D", "will", "message-expiry-interval", "6"})
	willy.WaitLine("SUBACK")
	willy.Stop(false) // SIGKILL: the will is due after its delay
	watch.wait()
	if !strings.Contains(watch.Stdout(), "will/willy gone") {
		t.Fatalf("watcher got %q, want the will", watch.Stdout())
	}
	// Just published: its retained copy has most of its 6 s left.
	late, rc := runOut(t, "mosquitto_sub", "-h", b.host, "-p", port, "-V", "5", "-t", "will/willy", "-v", "-C", "1", "-W", "10")
	if rc != 0 || strings.TrimSpace(late) != "will/willy gone" {
		t.Fatalf("late subscriber: exit %d, %q; want the retained will", rc, late)
	}
}
