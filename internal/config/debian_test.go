package config

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// debianExample returns the example mosquitto.conf that Debian's mosquitto
// package installs (plain or gzipped, depending on the release). It is read
// at test time and never committed. The test is skipped without the package.
func debianExample(t *testing.T) []byte {
	t.Helper()
	for _, p := range []string{
		"/usr/share/doc/mosquitto/examples/mosquitto.conf",
		"/usr/share/doc/mosquitto/examples/mosquitto.conf.gz",
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		return data
	}
	t.Skip("Debian's mosquitto package is not installed (apt-get install mosquitto)")
	return nil
}

func loadCopy(t *testing.T, name string, data []byte) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("%s does not load:\n%v", name, err)
	}
	for _, w := range c.Warnings {
		t.Logf("warning: %s", w)
	}
	return c
}

// TestDebianExample loads the example as installed: every option is
// commented out, so it is Mosquitto's defaults in local-only mode.
func TestDebianExample(t *testing.T) {
	c := loadCopy(t, "mosquitto.conf", debianExample(t))
	if !c.LocalOnly || len(c.Listeners) != 1 || c.Listeners[0].Addr() != "127.0.0.1:1883" {
		t.Errorf("want local-only mode on 127.0.0.1:1883, got LocalOnly=%v listeners=%v", c.LocalOnly, c.Listeners)
	}
	if !c.AnonymousAllowed(c.Listeners[0]) {
		t.Error("local-only mode must allow anonymous clients")
	}
}

// optionLine matches "#name value" lines: commented-out options that carry
// a value. Prose comments start with "# " and do not match.
var optionLine = regexp.MustCompile(`^#([a-z_0-9.]+) +(\S.*)$`)

// uncommentExample uncomments every "#option value" line of the example
// whose value is meant literally. Kept commented, and why:
//   - bridge options (connection, address, topic, bridge_*, cleansession,
//     ...): uncommented, they would start a bridge to the example's
//     placeholder host;
//   - lines whose value is a placeholder such as "<name>" or "<host>";
//   - options written without a value ("#pid_file", "#listener"): there is
//     nothing to uncomment.
//
// It returns the new file and the option names it uncommented.
func uncommentExample(data []byte) ([]byte, []string) {
	var out bytes.Buffer
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		m := optionLine.FindStringSubmatch(line)
		if m != nil && options[m[1]] != nil && !isBridgeOption(m[1]) && !strings.Contains(m[2], "<") {
			line = line[1:]
			names = append(names, m[1])
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), names
}

// TestDebianExampleUncommented loads the example with its options
// uncommented: the values shown are Mosquitto's defaults, so the result
// must load and equal the defaults.
func TestDebianExampleUncommented(t *testing.T) {
	data, names := uncommentExample(debianExample(t))
	if len(names) < 25 {
		t.Fatalf("only %d options uncommented (%v); has the example's format changed?", len(names), names)
	}
	t.Logf("uncommented: %s", strings.Join(names, " "))
	c := loadCopy(t, "mosquitto.conf", data)
	d := newConfig()
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_inflight_messages", c.Limits.MaxInflightMessages, d.Limits.MaxInflightMessages},
		{"max_queued_messages", c.Limits.MaxQueuedMessages, d.Limits.MaxQueuedMessages},
		{"max_keepalive", c.Limits.MaxKeepalive, d.Limits.MaxKeepalive},
		{"autosave_interval", c.Persistence.AutosaveInterval, d.Persistence.AutosaveInterval},
		{"persistence_file", c.Persistence.File, d.Persistence.File},
		{"log_dest", c.Log.Dest, d.Log.Dest},
		{"log_type", c.Log.Types, d.Log.Types},
		{"sys_interval", c.SysInterval, d.SysInterval},
		{"user", c.User, d.User},
		{"retain_available", c.RetainAvailable, d.RetainAvailable},
		{"allow_anonymous set", c.Security.AllowAnonymous != nil, true},
		{"local only", c.LocalOnly, true},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestDebianMainConfig loads the main file Debian installs in /etc, with
// its include_dir pointed at a temporary conf.d holding a listener, which is
// how Debian users add their configuration.
func TestDebianMainConfig(t *testing.T) {
	data, err := os.ReadFile("/etc/mosquitto/mosquitto.conf")
	if err != nil {
		t.Skip("no /etc/mosquitto/mosquitto.conf:", err)
	}
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	local := "listener 1883\nallow_anonymous true\n"
	if err := os.WriteFile(filepath.Join(confd, "local.conf"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	data = regexp.MustCompile(`(?m)^include_dir .*$`).ReplaceAll(data, []byte("include_dir "+confd))
	c := loadCopy(t, "mosquitto.conf", data)
	if len(c.Files) != 2 || c.LocalOnly || len(c.Listeners) != 1 || !c.AnonymousAllowed(c.Listeners[0]) {
		t.Errorf("want main file + conf.d/local.conf with one anonymous listener, got files %v, listeners %v", c.Files, c.Listeners)
	}
}
