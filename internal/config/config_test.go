package config

import (
	"slices"
	"strings"
	"testing"
)

// The example of mosquitto.conf(5) for include_dir.
func TestIncludeOrder(t *testing.T) {
	names := []string{"b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"}
	slices.SortFunc(names, compareIncludeNames)
	want := []string{"00.conf", "01.conf", "A.conf", "a.conf", "B.conf", "b.conf"}
	if !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if _, err := Validate(c); err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || c.Listeners[0].Addr() != "127.0.0.1:1883" ||
		c.Listeners[1].Addr() != "127.0.0.1:8883" || !c.Listeners[1].AutoCert {
		t.Errorf("listeners: %v", c.Listeners)
	}
	for _, l := range c.Listeners {
		if !c.AnonymousAllowed(l) {
			t.Errorf("%s: anonymous must be allowed without -c", l)
		}
	}
}

func TestParseCases(t *testing.T) {
	tests := []struct {
		name, conf string
		check      func(t *testing.T, c *Config)
		wantErr    string
	}{
		{
			name: "anonymous defaults to false with a listener",
			conf: "listener 1883\npassword_file /p\n",
			check: func(t *testing.T, c *Config) {
				if c.Security.AllowAnonymous != nil || c.AnonymousAllowed(c.Listeners[0]) {
					t.Error("allow_anonymous must be unset and effectively false")
				}
			},
		},
		{
			name: "keyfile before certfile pairs in order",
			conf: "listener 8883\nkeyfile k1\nkeyfile k2\ncertfile c1\ncertfile c2\npassword_file /p\n",
			check: func(t *testing.T, c *Config) {
				cs := c.Listeners[0].TLS.Certs
				if len(cs) != 2 || cs[0].CertFile.Path != "c1" || cs[0].KeyFile.Path != "k1" ||
					cs[1].CertFile.Path != "c2" || cs[1].KeyFile.Path != "k2" {
					t.Errorf("pairs: %+v", cs)
				}
			},
		},
		{
			name: "port after a listener still configures the default listener",
			conf: "listener 8883\nport 1884\nmax_connections 5\nallow_anonymous true\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Listeners) != 2 || c.Listeners[0].MaxConnections != 5 || c.Listeners[1].Port != 1884 || !c.Listeners[1].Default {
					t.Errorf("listeners: %+v %+v", c.Listeners[0], c.Listeners[1])
				}
			},
		},
		{
			name: "booleans accept 1 and 0 as Mosquitto does",
			conf: "listener 1883\nallow_anonymous 1\nretain_available 0\n",
			check: func(t *testing.T, c *Config) {
				if !c.AnonymousAllowed(c.Listeners[0]) || c.RetainAvailable {
					t.Error("1/0 not read as true/false")
				}
			},
		},
		{
			name:    "repeated string option is an error, as in Mosquitto",
			conf:    "password_file /a\npassword_file /b\n",
			wantErr: "t.conf:2: password_file: set twice (first at t.conf:1)",
		},
		{
			name:    "include_dir needs Load",
			conf:    "include_dir /etc/mosquitto/conf.d\n",
			wantErr: "t.conf:1: include_dir: include_dir \"/etc/mosquitto/conf.d\" cannot be read here",
		},
		{
			name:    "indented comments and tabs",
			conf:    "\t# comment\n  listener\t1883  \r\nallow_anonymous\ttrue\nmax_qos 9\n",
			wantErr: "t.conf:4: max_qos: value \"9\" is out of range 0..2",
		},
		{
			name:    "bridge option without connection",
			conf:    "listener 1883\nbridge_cafile /ca\n",
			wantErr: "t.conf:2: bridge_cafile: this bridge option needs a `connection NAME` line before it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.conf))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestDiff(t *testing.T) {
	const base = `listener 1883
listener 8883
certfile /a.crt
keyfile /a.key
password_file /p
log_type error
max_queued_messages 100
`
	parse := func(s string) *Config {
		t.Helper()
		c, err := Parse("t.conf", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(base)
	if d := Diff(old, parse(base)); !d.Empty() {
		t.Fatalf("identical files differ: %v", d.Changes)
	}
	changed := strings.NewReplacer("/a.crt", "/b.crt", "/p\n", "/p2\n", "log_type error", "log_type all",
		"max_queued_messages 100", "max_queued_messages 5", "listener 1883", "listener 1884\nsocket_domain ipv4").Replace(base)
	d := Diff(old, parse(changed))
	if !d.Auth || !d.Log || !d.Limits || d.Restart {
		t.Errorf("flags: auth %v log %v limits %v restart %v", d.Auth, d.Log, d.Limits, d.Restart)
	}
	if len(d.TLS) != 1 || d.TLS[0].Port != 8883 || len(d.Added) != 1 || d.Added[0].Port != 1884 ||
		len(d.Removed) != 1 || d.Removed[0].Port != 1883 || len(d.Reopen) != 0 {
		t.Errorf("listeners: tls %v added %v removed %v reopen %v", d.TLS, d.Added, d.Removed, d.Reopen)
	}
	for _, ch := range d.Changes {
		t.Log(ch)
	}
	d = Diff(old, parse(strings.Replace(base, "listener 8883\n", "listener 8883\nprotocol websockets\n", 1)))
	if len(d.Reopen) != 1 || len(d.TLS) != 0 {
		t.Errorf("protocol change must reopen the listener: %+v", d)
	}
}
