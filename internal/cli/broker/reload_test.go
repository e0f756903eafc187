package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/config"
)

func loadConf(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mamori.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEffectiveConfig: a reload takes the live options from the new file
// and keeps everything else, so that the next reload reports again what
// still needs a restart.
func TestEffectiveConfig(t *testing.T) {
	old := loadConf(t, "listener 1883 127.0.0.1\nallow_anonymous true\nmax_keepalive 60\nconnection_messages true\n")
	cur := loadConf(t, "listener 1883 127.0.0.1\nallow_anonymous false\nmax_keepalive 30\nconnection_messages false\nlog_type all\n"+
		"listener 1884 127.0.0.1\n")
	eff := effectiveConfig(old, cur)
	if eff.AnonymousAllowed(nil) {
		t.Errorf("allow_anonymous not applied")
	}
	if eff.Log.Types != config.LogAll {
		t.Errorf("log_type not applied")
	}
	if eff.Limits.MaxKeepalive != 30 || eff.Log.ConnectionMessages {
		t.Errorf("live limits not applied: keepalive %d, connection_messages %v",
			eff.Limits.MaxKeepalive, eff.Log.ConnectionMessages)
	}
	if len(eff.Listeners) != 1 {
		t.Errorf("a new listener was applied on reload: %d listeners", len(eff.Listeners))
	}
	d := config.Diff(eff, cur)
	restart := 0
	for _, ch := range d.Changes {
		if _, ok := describeChange(ch); ok {
			t.Errorf("already applied but reported again: %v", ch)
		} else {
			restart++
		}
	}
	if restart != 1 { // the new listener
		t.Errorf("%d changes need a restart, want 1: %v", restart, d.Changes)
	}
}

func TestDescribeChange(t *testing.T) {
	tests := []struct {
		ch   config.Change
		want string
		live bool
	}{
		{config.Change{Option: "password_file", Old: "/a", New: "/b"}, `password_file: "/a" -> "/b" (applied)`, true},
		{config.Change{Option: "max_qos", Listener: "listener 1883", Old: "2", New: "1"}, `listener 1883: max_qos: "2" -> "1" (needs a restart)`, false},
		{config.Change{Option: "listener", Listener: "listener 1884", New: ":1884"}, "listener 1884: added (needs a restart)", false},
		{config.Change{Option: "listener", Listener: "listener 1884", Old: ":1884"}, "listener 1884: removed (needs a restart)", false},
	}
	for _, tt := range tests {
		got, live := describeChange(tt.ch)
		if got != tt.want || live != tt.live {
			t.Errorf("describeChange(%+v) = %q, %v; want %q, %v", tt.ch, got, live, tt.want, tt.live)
		}
	}
}
