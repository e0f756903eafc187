package mosqdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/store"
)

var update = flag.Bool("update", false, "rewrite testdata/mosquitto-2.0.db from a real mosquitto run")

const fixture = "testdata/mosquitto-2.0.db"

// checkContents checks a file made by makeDB (by Debian's mosquitto 2.0).
func checkContents(t *testing.T, f *File) {
	t.Helper()
	if f.Version != 6 {
		t.Fatalf("version %d, want 6 (Mosquitto 2.0)", f.Version)
	}
	if len(f.Retained) != 2 {
		t.Fatalf("%d retained messages, want 2", len(f.Retained))
	}
	retained := map[string]*Message{}
	for _, id := range f.Retained {
		m := f.Messages[id]
		if m == nil {
			t.Fatalf("retained message %d not stored", id)
		}
		retained[m.Topic] = m
	}
	if m := retained["ret/a"]; m == nil || string(m.Payload) != "hello-a" || m.QoS != 1 || m.Props != nil {
		t.Fatalf("ret/a: %+v", m)
	}
	// The MQTT 5 publisher's user property k=v, as a wire property block.
	if m := retained["ret/b"]; m == nil || string(m.Payload) != "hello-b" ||
		!bytes.Equal(m.Props, []byte{7, 0x26, 0, 1, 'k', 0, 1, 'v'}) {
		t.Fatalf("ret/b: %+v", m)
	}
	sessions := map[string]*Session{}
	for _, s := range f.Sessions {
		sessions[s.ClientID] = s
	}
	payloads := func(s *Session) []string {
		var p []string
		for _, cm := range s.Messages {
			m := f.Messages[cm.StoreID]
			if m == nil {
				t.Fatalf("%s: client message refers to missing message %d", s.ClientID, cm.StoreID)
			}
			if !cm.Outgoing || cm.QoS != 1 {
				t.Fatalf("%s: client message %+v", s.ClientID, cm)
			}
			p = append(p, string(m.Payload))
		}
		return p
	}
	s1 := sessions["sess1"]
	if s1 == nil || s1.ExpiryInterval != 0xFFFFFFFF || !slices.Equal(payloads(s1), []string{"m1", "m2", "m3"}) ||
		!slices.Equal(s1.Subscriptions, []Subscription{{Filter: "q/#", QoS: 1}}) {
		t.Fatalf("sess1: %+v", s1)
	}
	s5 := sessions["sess5"]
	if s5 == nil || s5.ExpiryInterval != 3600 || s5.ExpiryTime.IsZero() || !slices.Equal(payloads(s5), []string{"m1", "m2"}) {
		t.Fatalf("sess5: %+v", s5)
	}
	for _, cm := range s5.Messages {
		if cm.SubscriptionID != 42 {
			t.Fatalf("sess5 message without its subscription identifier: %+v", cm)
		}
	}
	subs := slices.Clone(s5.Subscriptions)
	slices.SortFunc(subs, func(a, b Subscription) int { return strings.Compare(a.Filter, b.Filter) })
	if !slices.Equal(subs, []Subscription{{Filter: "other/+", QoS: 2, Identifier: 42}, {Filter: "q/x", QoS: 2, Identifier: 42}}) {
		t.Fatalf("sess5 subscriptions: %+v", subs)
	}
}

// makeDB runs Debian's mosquitto with persistence on a loopback port,
// creates two retained messages and two persistent sessions with queued
// QoS 1 messages with the Mosquitto clients, stops it with SIGTERM (it
// writes the file then) and returns the file's path.
func makeDB(t *testing.T) string {
	t.Helper()
	brokertest.RequireTools(t, "/usr/sbin/mosquitto", "mosquitto_pub", "mosquitto_sub")
	dir := t.TempDir()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var p *brokertest.Proc
	var port string
	for attempt := 0; ; attempt++ {
		port = fmt.Sprint(brokertest.FreePort(t, "127.0.0.1"))
		conf := filepath.Join(dir, "mosquitto.conf")
		// user: as root, mosquitto would switch to user "mosquitto", which
		// cannot write to the test's directory.
		cfg := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nuser %s\n",
			port, dir, u.Username)
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p = brokertest.Start(t, "mosquitto", []string{"/usr/sbin/mosquitto", "-c", conf})
		if brokertest.WaitRunning(t, p, "127.0.0.1:"+port) {
			break
		}
		if attempt == 5 {
			t.Fatal("no free port for mosquitto")
		}
	}
	run := func(args ...string) {
		t.Helper()
		c := brokertest.Start(t, args[0], append(args, "-h", "127.0.0.1", "-p", port), brokertest.Lifetime(20*time.Second))
		if err := c.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, c.Output())
		}
	}
	run("mosquitto_pub", "-r", "-q", "1", "-t", "ret/a", "-m", "hello-a")
	run("mosquitto_pub", "-V", "5", "-r", "-t", "ret/b", "-m", "hello-b", "-D", "publish", "user-property", "k", "v")
	run("mosquitto_sub", "-c", "-i", "sess1", "-q", "1", "-t", "q/#", "-E")
	run("mosquitto_sub", "-V", "5", "-c", "-i", "sess5", "-q", "2", "-t", "q/x", "-t", "other/+", "-x", "3600", "-E",
		"-D", "subscribe", "subscription-identifier", "42")
	run("mosquitto_pub", "-q", "1", "-t", "q/x", "-m", "m1")
	run("mosquitto_pub", "-q", "1", "-t", "q/x", "-m", "m2")
	run("mosquitto_pub", "-q", "2", "-t", "q/y", "-m", "m3")
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Fatalf("mosquitto: %v\n%s", err, p.Output())
	}
	return filepath.Join(dir, "mosquitto.db")
}

// TestRealMosquitto reads a file the installed mosquitto has just written
// (and, with -update, makes it the committed fixture).
func TestRealMosquitto(t *testing.T) {
	path := makeDB(t)
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, f)
	if *update {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixture, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFixture reads the committed file, so the reader is tested where
// mosquitto is not installed.
func TestFixture(t *testing.T) {
	f, err := ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, f)
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	d, err := store.Open("db", store.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func TestImport(t *testing.T) {
	f, err := ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's sess5 expires an hour after it was written: import
	// as of the time it was written.
	var now time.Time
	for _, s := range f.Sessions {
		if s.ClientID == "sess5" {
			now = s.ExpiryTime.Add(-time.Hour)
		}
	}
	path := filepath.Join(t.TempDir(), "mosquitto.db")
	data, _ := os.ReadFile(fixture)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := sum(t, path)

	d := openStore(t)
	st, err := Import(d, path, now)
	if err != nil {
		t.Fatal(err)
	}
	want := ImportStats{Done: true, Retained: 2, Sessions: 2, Subscriptions: 3, Messages: 5, Bodies: 3}
	if st != want {
		t.Fatalf("import stats %+v, want %+v", st, want)
	}
	if sum(t, path) != before {
		t.Fatal("the source file was modified")
	}
	if st, err := Import(d, path, now); err != nil || !st.AlreadyDone || st.Done {
		t.Fatalf("second import: %+v %v", st, err)
	}

	retained := map[string]string{}
	entries := map[string][]string{}
	sessions := map[string]*store.Session{}
	rs, err := d.Recover(store.Recovery{
		Retained: func(m *store.Message) error { retained[m.Topic] = string(m.Payload); return nil },
		Session:  func(s *store.Session, _ []uint16) error { sessions[s.ClientID] = s; return nil },
		Entry: func(e *store.Entry) error {
			m, err := d.Body(e.Body)
			if err != nil {
				return err
			}
			if e.SubscriptionID != 0 && e.SubscriptionID != 42 {
				return fmt.Errorf("entry %+v", e)
			}
			entries[e.ClientID] = append(entries[e.ClientID], string(m.Payload))
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if retained["ret/a"] != "hello-a" || retained["ret/b"] != "hello-b" || len(retained) != 2 {
		t.Fatalf("retained: %v", retained)
	}
	if !slices.Equal(entries["sess1"], []string{"m1", "m2", "m3"}) || !slices.Equal(entries["sess5"], []string{"m1", "m2"}) {
		t.Fatalf("entries: %v", entries)
	}
	s5 := sessions["sess5"]
	if s5 == nil || s5.ExpiryInterval != 3600 || !s5.Disconnected.Equal(now) || len(s5.Subscriptions) != 2 {
		t.Fatalf("sess5: %+v", s5)
	}
	if rs.Bodies != 3 || rs.OrphanBodies != 0 {
		t.Fatalf("recovery stats: %+v", rs)
	}

	// An import interrupted before its marker is done again, replacing
	// what it had written: no duplicate entries, no orphan bodies.
	d3 := openStore(t)
	if _, err := importFile(d3, f, path, now, false); err != nil {
		t.Fatal(err)
	}
	if st, err := Import(d3, path, now); err != nil || !st.Done || st.Messages != 5 {
		t.Fatalf("import after an interrupted one: %+v %v", st, err)
	}
	n := 0
	rs, err = d3.Recover(store.Recovery{Entry: func(*store.Entry) error { n++; return nil }})
	if err != nil || n != 5 || rs.Bodies != 3 || rs.OrphanBodies != 0 {
		t.Fatalf("after a repeated import: %d entries, %+v, %v", n, rs, err)
	}

	// A day later sess5 has expired and is not imported.
	d2 := openStore(t)
	st, err = Import(d2, path, now.Add(24*time.Hour))
	if err != nil || st.Sessions != 1 || st.ExpiredSessions != 1 {
		t.Fatalf("late import: %+v %v", st, err)
	}
	// No file: nothing, and no marker.
	st, err = Import(openStore(t), filepath.Join(t.TempDir(), "none.db"), now)
	if err != nil || st.Done {
		t.Fatalf("import without a file: %+v %v", st, err)
	}
}

// TestParseErrors: every truncation of the fixture and a set of damaged
// headers are reported as errors, never a panic.
func TestParseErrors(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	// A file cut at a chunk boundary is a valid shorter file; cut
	// anywhere else it is an error.
	boundary := map[int]bool{23: true}
	for off := 23; off+8 <= len(data); {
		off += 8 + int(binary.BigEndian.Uint32(data[off+4:]))
		boundary[off] = true
	}
	for n := 0; n < len(data); n++ {
		f, err := Parse(data[:n])
		if (err == nil) != boundary[n] {
			t.Fatalf("file cut at %d bytes: %+v, %v", n, f, err)
		}
	}
	set := func(off int, b ...byte) []byte {
		d := bytes.Clone(data)
		copy(d[off:], b)
		return d
	}
	for name, d := range map[string][]byte{
		"magic":         set(3, 'M'),
		"version":       set(19, 0, 0, 0, 3),
		"chunk length":  set(27, 0xff, 0xff, 0xff, 0xff),
		"dbid size":     set(23+8+9, 4),
		"payload":       set(23+8+16+8+16, 0x7f, 0xff, 0xff, 0xff),
		"topic length":  set(23+8+16+8+16+10, 0xff, 0xff),
		"QoS":           set(23+8+16+8+30, 3),
		"short chunk":   set(23+8+16+4, 0, 0, 0, 4),
		"truncated end": data[:len(data)-1],
	} {
		if f, err := Parse(d); err == nil {
			t.Errorf("%s: damaged file parsed: %+v", name, f)
		}
	}
}

func FuzzMosqDB(f *testing.F) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:100])
	f.Add(append(bytes.Clone(data[:23]), 0, 0, 0, 99, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for id, m := range file.Messages {
			if m.StoreID != id || m.Topic == "" || m.QoS > 2 || len(m.Payload) > len(b) {
				t.Fatalf("message %d: %+v", id, m)
			}
		}
		for _, s := range file.Sessions {
			if s.ClientID == "" {
				t.Fatal("session without a client id")
			}
		}
	})
}
