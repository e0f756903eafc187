package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// TestRereadFilesListsEveryReloadedFile (issue 20, item 5): the start-up
// check covers every file a running broker opens again: the configuration
// and its include_dir, each security block's files, each TLS listener's
// files, and the log file.
func TestRereadFilesListsEveryReloadedFile(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(inc, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("conf.d/extra.conf", "listener 1884 127.0.0.1\nacl_file "+filepath.Join(dir, "acl2")+"\n")
	main := write("m.conf", strings.Join([]string{
		"per_listener_settings true",
		"log_dest file " + filepath.Join(dir, "log"),
		"listener 1883 127.0.0.1",
		"password_file " + filepath.Join(dir, "pw"),
		"listener 8883 127.0.0.1",
		"certfile " + filepath.Join(dir, "c.crt"),
		"keyfile " + filepath.Join(dir, "c.key"),
		"cafile " + filepath.Join(dir, "ca.crt"),
		"capath " + filepath.Join(dir, "certs"),
		"crlfile " + filepath.Join(dir, "crl.pem"),
		"psk_file " + filepath.Join(dir, "psk"),
		"include_dir " + inc,
	}, "\n")+"\n")
	cfg, err := config.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range rereadFiles(cfg) {
		got[f.option+" "+strings.TrimPrefix(f.path, dir+"/")] = true
	}
	for _, want := range []string{"configuration file m.conf", "configuration file conf.d/extra.conf", "include_dir conf.d",
		"password_file pw", "acl_file acl2", "psk_file psk", "certfile c.crt", "keyfile c.key", "cafile ca.crt",
		"capath certs", "crlfile crl.pem", "log_dest file log"} {
		if !got[want] {
			t.Errorf("not checked: %s (checked: %v)", want, got)
		}
	}
	// The local CA of the no-configuration listener is the broker's own.
	for _, f := range rereadFiles(config.Default()) {
		t.Errorf("default configuration checks %s %s", f.option, f.path)
	}
}

// TestAccessAsUser (issue 20, item 5): the check opens files with the
// user's identity, so a 0600 file of root's is refused and a 0644 one in a
// searchable directory is not, while the process itself stays root.
func TestAccessAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	du, _, err := lookupDropUser("nobody", false)
	if err != nil || du == nil {
		t.Skipf("no user nobody: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	private := filepath.Join(dir, "private")
	public := filepath.Join(dir, "public")
	os.WriteFile(private, []byte("x"), 0o600)
	os.WriteFile(public, []byte("x"), 0o644)
	errs := accessAs(du, []rereadFile{{path: private}, {path: public}, {path: public, write: true}, {path: dir, dir: true}})
	if errs[0] == nil || !os.IsPermission(errs[0]) {
		t.Errorf("root's 0600 file: %v", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("a 0644 file: %v", errs[1])
	}
	if errs[2] == nil {
		t.Error("root's 0644 file is writable by nobody")
	}
	if errs[3] == nil {
		t.Error("a directory holding a 0600 file passes as readable")
	}
	if os.Geteuid() != 0 || os.Getuid() != 0 {
		t.Fatal("the check changed the process's identity")
	}
	if _, err := os.ReadFile(private); err != nil {
		t.Fatalf("root lost access after the check: %v", err)
	}
}
