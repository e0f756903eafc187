package passwd

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func runMosquitto(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func lookMosquitto(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install mosquitto mosquitto-clients); skipping comparison", name)
	}
	return p
}

// TestSameAsMosquittoPasswd runs both tools with the same arguments and
// compares exit codes and messages (usage text: only that both print one).
func TestSameAsMosquittoPasswd(t *testing.T) {
	bin := lookMosquitto(t, "mosquitto_passwd")
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"no arguments", "", nil},
		{"unknown option", "", []string{"-X", "-b", existing, "u", "p"}},
		{"-b without password", "", []string{"-b", existing, "u"}},
		{"too many arguments", "", []string{"-b", existing, "u", "p", "x"}},
		{"-c missing username", "", []string{"-c", existing}},
		{"-c -b missing password", "", []string{"-c", "-b", existing, "u"}},
		{"-D missing username", "", []string{"-D", existing}},
		{"-U missing file", "", []string{"-U"}},
		{"-U extra argument", "", []string{"-U", existing, "x"}},
		{"-H without value", "", []string{"-H"}},
		{"-I without value", "", []string{"-I"}},
		{"unknown hash", "", []string{"-H", "md5", "-b", existing, "u", "p"}},
		{"zero iterations", "", []string{"-I", "0", "-b", existing, "u", "p"}},
		{"bad iterations", "", []string{"-I", "abc", "-b", existing, "u", "p"}},
		{"-c and -D", "", []string{"-c", "-D", existing, "u"}},
		{"-c and -U", "", []string{"-c", "-U", existing}},
		{"-D and -b", "", []string{"-D", "-b", existing, "u"}},
		{"colon in username", "", []string{"-b", existing, "a:b", "p"}},
		{"control character in username", "", []string{"-b", existing, "a\x01b", "p"}},
		{"missing file", "", []string{"-b", missing, "u", "p"}},
		{"delete missing file", "", []string{"-D", missing, "u"}},
		{"delete unknown user", "", []string{"-D", existing, "nobody"}},
		{"passwords differ", "one\ntwo\n", []string{existing, "u"}},
		{"empty password", "\n\n", []string{existing, "u"}},
		{"no input", "", []string{existing, "u"}},
		{"second password missing", "one\n", []string{existing, "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []string{existing, missing} {
				os.Remove(f)
			}
			os.WriteFile(existing, []byte("alice:$7$101$D8mj9xbJRyJsBdhF$ACE1PRcFrp8tvukUUl5JaP7bwD4XZNRA7bErBNYv6JdiLBPRkAqQ8RhMSIwhntMTLCl4Xfp7hFr8eL28Hv5Dxg==\n"), 0o600)
			want := runMosquitto(t, bin, tt.stdin, tt.args...)
			os.WriteFile(existing, []byte("alice:$7$101$D8mj9xbJRyJsBdhF$ACE1PRcFrp8tvukUUl5JaP7bwD4XZNRA7bErBNYv6JdiLBPRkAqQ8RhMSIwhntMTLCl4Xfp7hFr8eL28Hv5Dxg==\n"), 0o600)
			got := run(tt.stdin, tt.args...)
			if got.code != want.code {
				t.Errorf("exit code %d, mosquitto_passwd %d", got.code, want.code)
			}
			if got.stderr != want.stderr {
				t.Errorf("stderr:\n got %q\nwant %q", got.stderr, want.stderr)
			}
			if strings.Contains(want.stdout, "Usage:") {
				if !strings.Contains(got.stdout, "Usage:") {
					t.Errorf("no usage on stdout: %q", got.stdout)
				}
			} else if got.stdout != want.stdout {
				t.Errorf("stdout:\n got %q\nwant %q", got.stdout, want.stdout)
			}
		})
	}
}

var line7 = regexp.MustCompile(`^([^:]+):\$7\$(\d+)\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$`)

// TestFileFormatLikeMosquitto: both tools write the same line shape, and
// mamori reads what mosquitto_passwd writes and the other way round.
func TestFileFormatLikeMosquitto(t *testing.T) {
	bin := lookMosquitto(t, "mosquitto_passwd")
	dir := t.TempDir()
	theirs, ours := filepath.Join(dir, "theirs"), filepath.Join(dir, "ours")
	if r := runMosquitto(t, bin, "", "-c", "-b", theirs, "u", "pw"); r.code != 0 {
		t.Fatal(r)
	}
	if r := run("", "-c", "-b", ours, "u", "pw"); r.code != 0 {
		t.Fatal(r)
	}
	for name, f := range map[string]string{"mosquitto_passwd": theirs, "mamori": ours} {
		data, _ := os.ReadFile(f)
		m := line7.FindStringSubmatch(strings.TrimSuffix(string(data), "\n"))
		if m == nil || !strings.HasSuffix(string(data), "\n") {
			t.Errorf("%s wrote %q", name, data)
			continue
		}
		want := "101"
		if name == "mamori" {
			want = fmt.Sprint(auth.DefaultIterations)
		}
		if m[2] != want {
			t.Errorf("%s iterations = %s, want %s", name, m[2], want)
		}
	}
	// mosquitto_passwd adds a user to our file and deletes from it.
	if r := runMosquitto(t, bin, "", "-b", ours, "v", "pw2"); r.code != 0 {
		t.Fatal(r)
	}
	pf, err := auth.LoadPasswordFile(ours)
	if err != nil || !pf.Check("u", "pw") || !pf.Check("v", "pw2") {
		t.Fatalf("file shared with mosquitto_passwd unreadable: %v", err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "ours")); info.Mode().Perm()&0o077 != 0 {
		t.Errorf("mode %v", info.Mode())
	}
}

func TestCreateModeAndInteractive(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	r := run("secret\nsecret\n", "-c", f, "alice")
	if r.code != 0 || r.stdout != "Password: \nReenter password: \n" || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	info, err := os.Stat(f)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", info.Mode(), err)
	}
	pf, err := auth.LoadPasswordFile(f)
	if err != nil || !pf.Check("alice", "secret") {
		t.Fatal("interactive password not stored", err)
	}
	// Existing group-readable file keeps group read, loses the rest.
	os.Chmod(f, 0o664)
	if r := run("", "-b", f, "bob", "pw"); r.code != 0 {
		t.Fatal(r)
	}
	if info, _ := os.Stat(f); info.Mode().Perm() != 0o640 {
		t.Errorf("mode after update = %v, want 0640", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(f))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestUpdateKeepsHashedLinesAndComments(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	hashed, _ := auth.NewHash(auth.SHA512, "old", 0)
	orig := "# users\n\nplain:secret\nhashed:" + hashed + "\n"
	os.WriteFile(f, []byte(orig), 0o600)
	if r := run("", "-U", f); r.code != 0 {
		t.Fatal(r)
	}
	data, _ := os.ReadFile(f)
	lines := strings.Split(string(data), "\n")
	if lines[0] != "# users" || lines[1] != "" || lines[3] != "hashed:"+hashed {
		t.Errorf("-U changed lines it should keep:\n%s", data)
	}
	pf, err := auth.LoadPasswordFile(f)
	if err != nil || !pf.Check("plain", "secret") || !pf.Check("hashed", "old") {
		t.Fatalf("after -U: %v\n%s", err, data)
	}
	// Running it again changes nothing.
	if r := run("", "-U", f); r.code != 0 {
		t.Fatal(r)
	}
	if again, _ := os.ReadFile(f); !bytes.Equal(again, data) {
		t.Error("second -U rewrote hashed lines")
	}
	// A damaged hash is reported, not hashed as a password.
	os.WriteFile(f, []byte("x:$7$101$AAAA\n"), 0o600)
	if r := run("", "-U", f); r.code != 1 || !strings.Contains(r.stderr, "Damaged password hash for user x at line 1") {
		t.Errorf("%+v", r)
	}
}

func TestUpdateReplacesAndDeletes(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	run("", "-c", "-b", f, "a", "1")
	run("", "-b", f, "b", "2")
	run("", "-H", "sha512", "-b", f, "a", "3")
	run("", "-H", "argon2id", "-b", f, "c", "4")
	run("", "-I", "500", "-b", f, "d", "5")
	pf, err := auth.LoadPasswordFile(f)
	if err != nil || pf.Len() != 4 || !pf.Check("a", "3") || !pf.Check("b", "2") || !pf.Check("c", "4") || !pf.Check("d", "5") {
		data, _ := os.ReadFile(f)
		t.Fatalf("%v\n%s", err, data)
	}
	data, _ := os.ReadFile(f)
	if !strings.HasPrefix(string(data), "a:$6$") || !strings.Contains(string(data), "d:$7$500$") || !strings.Contains(string(data), "c:$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Errorf("file:\n%s", data)
	}
	if r := run("", "-D", f, "b"); r.code != 0 {
		t.Fatal(r)
	}
	if pf, _ := auth.LoadPasswordFile(f); pf.Has("b") || pf.Len() != 3 {
		t.Error("-D did not delete")
	}
	if r := run("", "--help"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprint(auth.DefaultIterations)) {
		t.Errorf("--help: %+v", r)
	}
	if r := run("", "-b", f, "", "p"); r.code != 1 || r.stderr != "Error: Username must not be empty.\n" {
		t.Errorf("empty username: %+v", r)
	}
}

// TestMosquittoBrokerAcceptsOurFile starts Debian's mosquitto with a
// password file written by mamori passwd and logs in with mosquitto_pub.
func TestMosquittoBrokerAcceptsOurFile(t *testing.T) {
	broker := lookMosquitto(t, "mosquitto")
	pub := lookMosquitto(t, "mosquitto_pub")
	dir := t.TempDir()
	pwfile := filepath.Join(dir, "pw")
	if r := run("", "-c", "-b", pwfile, "alice", "s3cret"); r.code != 0 {
		t.Fatal(r)
	}
	if r := run("", "-H", "sha512", "-b", pwfile, "bob", "b0b"); r.code != 0 {
		t.Fatal(r)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// "user" keeps a root-run mosquitto from switching to the mosquitto
	// account, which could not read the 0600 file; ignored when not root.
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nuser %s\n", port, pwfile, me.Username)
	confFile := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(confFile, []byte(conf), 0o600)
	var logb bytes.Buffer
	cmd := exec.Command(broker, "-c", confFile)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start: %s", logb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tests := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "s3cret", true},
		{"bob", "b0b", true},
		{"alice", "wrong", false},
		{"eve", "s3cret", false},
	}
	for _, tt := range tests {
		out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-u", tt.user, "-P", tt.pass, "-t", "t", "-m", "x").CombinedOutput()
		if (err == nil) != tt.ok {
			t.Errorf("mosquitto_pub -u %s: err=%v out=%s\nbroker log:\n%s", tt.user, err, out, logb.String())
		}
		if !tt.ok && !strings.Contains(string(out), "not authorised") {
			t.Errorf("mosquitto_pub -u %s: unexpected output %s", tt.user, out)
		}
	}
}
