package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestBridgeDefaults checks the values Mosquitto 2 gives a bridge that sets
// only what it must: the client ids derive from the host name and the
// connection name, and restart_timeout is a 5..30 s backoff.
func TestBridgeDefaults(t *testing.T) {
	c, err := Parse("t.conf", []byte("listener 1883\nconnection edge\naddress 127.0.0.1:1884\ntopic a/#\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bridges) != 1 {
		t.Fatalf("want one bridge, got %d", len(c.Bridges))
	}
	b := c.Bridges[0]
	host, _ := os.Hostname()
	checks := []struct {
		name      string
		got, want any
	}{
		{"remote_clientid", b.RemoteClientID, host + ".edge"},
		{"local_clientid", b.LocalClientID, "local." + host + ".edge"},
		{"notification_topic", b.NotificationTopic, "$SYS/broker/connection/" + host + ".edge/state"},
		{"protocol", b.ProtocolVersion, byte(4)},
		{"cleansession", b.CleanSession, false},
		{"local_cleansession", b.LocalCleanSession, false},
		{"keepalive", b.Keepalive, 60 * time.Second},
		{"restart base", b.RestartBase, 5 * time.Second},
		{"restart cap", b.RestartCap, 30 * time.Second},
		{"try_private", b.TryPrivate, true},
		{"notifications", b.Notifications, true},
		{"outgoing retain", b.OutgoingRetain, true},
		{"attempt unsubscribe", b.AttemptUnsubscribe, true},
		{"topic direction", b.Topics[0].Direction, BridgeOut},
		{"topic qos", b.Topics[0].QoS, byte(0)},
		{"tls", b.TLS.Enabled(), false},
		{"start type", b.StartType, StartAutomatic},
		{"threshold", b.Threshold, 10},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestBridgeOptions covers single rules of bridge blocks.
func TestBridgeOptions(t *testing.T) {
	const head = "listener 1883\nconnection b\naddress 127.0.0.1:1884\ntopic a/#\n"
	tests := []struct {
		name    string
		conf    string
		check   func(*Bridge) bool
		wantErr string
	}{
		{name: "local_cleansession follows cleansession", conf: "cleansession true\n",
			check: func(b *Bridge) bool { return b.CleanSession && b.LocalCleanSession }},
		{name: "local_cleansession overrides", conf: "cleansession true\nlocal_cleansession false\n",
			check: func(b *Bridge) bool { return b.CleanSession && !b.LocalCleanSession }},
		{name: "restart_timeout constant", conf: "restart_timeout 7\n",
			check: func(b *Bridge) bool { return b.RestartBase == 7*time.Second && b.RestartCap == 0 }},
		{name: "several address lines add up", conf: "addresses 127.0.0.2 [::1]:1885\n",
			check: func(b *Bridge) bool {
				return len(b.Addresses) == 3 && b.Addresses[1].Port == 1883 && b.Addresses[2].Host == "::1"
			}},
		{name: "TLS with PKCS#12 and no key file", conf: "bridge_cafile /ca.crt\nbridge_certfile /c.p12\n",
			check: func(b *Bridge) bool { return b.TLS.Enabled() && b.TLS.CertFile.Path == "/c.p12" }},
		{name: "TLS option without CA", conf: "bridge_insecure true\n",
			wantErr: "t.conf:2: connection: bridge \"b\" has TLS options but neither bridge_cafile nor bridge_capath"},
		{name: "PEM certificate needs a key", conf: "bridge_cafile /ca\nbridge_certfile /c.pem\n",
			wantErr: "bridge_certfile needs bridge_keyfile"},
		{name: "PSK refused for now", conf: "bridge_identity me\nbridge_psk 00ff\n",
			wantErr: "TLS-PSK bridges need the PSK support"},
		{name: "PSK must be hex", conf: "bridge_identity me\nbridge_psk 0xzz\n",
			wantErr: "t.conf:6: bridge_psk: value is not a hexadecimal key"},
		{name: "same client ids", conf: "remote_clientid x\nlocal_clientid x\n",
			wantErr: "they must differ"},
		{name: "string option twice", conf: "remote_username a\nremote_username b\n",
			wantErr: "t.conf:6: remote_username: set twice (first at t.conf:5)"},
		{name: "typo suggestion", conf: "bridge_cafil /ca\n",
			wantErr: `unknown bridge option "bridge_cafil" (did you mean "bridge_cafile"?)`},
		{name: "notification topic wildcard", conf: "notification_topic a/#\n",
			wantErr: "cannot contain the wildcards"},
		{name: "ocsp refused", conf: "bridge_cafile /ca\nbridge_require_ocsp true\n",
			wantErr: "bridge_require_ocsp is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(head+tt.conf))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c.Bridges[0]) {
				t.Errorf("unexpected bridge: %+v", c.Bridges[0])
			}
		})
	}
}

// TestBridgeBlockPerFile: a bridge block ends with its file, as in
// Mosquitto, so a bridge option at the top of an included file is an error.
func TestBridgeBlockPerFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/b.conf", []byte("topic x/#\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := dir + "/m.conf"
	conf := "listener 1883\nconnection b\naddress 127.0.0.1\ntopic a/#\ninclude_dir " + dir + "\nremote_clientid after-include\n"
	if err := os.WriteFile(main, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(main)
	if err == nil || !strings.Contains(err.Error(), "b.conf:1: topic: this bridge option needs a `connection NAME` line") {
		t.Fatalf("error %v", err)
	}
}

// TestBridgeReloadNeedsRestart: Mosquitto 2.0 does not reload bridges on
// SIGHUP; the diff says a restart applies the change, and an identical
// bridge is no change.
func TestBridgeReloadNeedsRestart(t *testing.T) {
	a, err := Parse("t.conf", []byte("listener 1883\nconnection b\naddress 127.0.0.1\ntopic a/#\nremote_username u\n"))
	if err != nil {
		t.Fatal(err)
	}
	same, err := Parse("t.conf", []byte("listener 1883\n\nconnection b\naddress 127.0.0.1\ntopic a/#\nremote_username u\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, same); !d.Empty() {
		t.Errorf("moved but identical bridge reported as changed: %v", d.Changes)
	}
	b, err := Parse("t.conf", []byte("listener 1883\nconnection b\naddress 127.0.0.1\ntopic a/# both\nremote_username u\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(a, b)
	if d.Empty() || !d.Restart || d.Changes[0].Live || d.Changes[0].Option != "connection b" {
		t.Errorf("changed bridge: want a restart-only change, got %+v", d)
	}
	pw, err := Parse("t.conf", []byte("listener 1883\nconnection b\naddress 127.0.0.1\ntopic a/#\nremote_username u\nremote_password s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range Diff(a, pw).Changes {
		if strings.Contains(ch.String(), "s3cret") {
			t.Errorf("a change shows the password: %s", ch)
		}
	}
	none, err := Parse("t.conf", []byte("listener 1883\n"))
	if err != nil {
		t.Fatal(err)
	}
	removed := Diff(a, none)
	if len(removed.Changes) != 1 || removed.Changes[0].Option != "connection b" || removed.Changes[0].New != "" {
		t.Errorf("removed bridge: %+v", removed.Changes)
	}
}
