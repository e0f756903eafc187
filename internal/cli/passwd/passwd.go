// Package passwd implements the "mamori passwd" command, a drop-in for
// mosquitto_passwd: same flags, messages and exit codes, plus -H argon2id,
// a stronger default iteration count, -U that leaves hashed lines alone,
// and files written atomically without losing comments.
package passwd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"golang.org/x/term"
)

// usage mirrors mosquitto_passwd's, with mamori's additions.
var usage = `mamori passwd is a tool for managing password files for mosquitto and mamori.

Usage: mamori passwd [-H sha512 | -H sha512-pbkdf2 | -H argon2id] [-I iterations] [-c | -D] passwordfile username
       mamori passwd [-H sha512 | -H sha512-pbkdf2 | -H argon2id] [-I iterations] [-c] -b passwordfile username password
       mamori passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
      sha512 is the weak format of Mosquitto 1.6 and earlier;
      argon2id is read by Mosquitto 2.1 and mamori, not by Mosquitto 2.0.
 -I : iterations for sha512-pbkdf2. Defaults to ` + strconv.Itoa(auth.DefaultIterations) + `, about 12-14 ms of CPU per
      verification (Mosquitto's default of 101 costs about 0.1 ms, so guessing
      is ~200 times cheaper). mamori caches successful verifications.
 -U : update a plain text password file to use hashed passwords.
      Lines that are already hashed are left as they are.

sha512-pbkdf2 hashes are written as $7$ with a 12-byte salt, which Mosquitto 2.0
and 2.1 both read. Files are replaced atomically; a new file gets mode 0600.

See https://mosquitto.org/ for more information.

`

type options struct {
	batch, create, del, update bool
	hashType                   auth.HashType
	iterations                 int
	file, username, password   string
}

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, code, ok := parseArgs(args, stdout, stderr)
	if !ok {
		return code
	}
	if !o.update {
		if msg := checkUsername(o.username); msg != "" {
			fmt.Fprintf(stderr, "Error: %s\n", msg)
			return 1
		}
	}
	path := o.file
	if p, err := filepath.EvalSymlinks(o.file); err == nil {
		// Replace the file a symlink points to, not the symlink.
		path = p
	}

	if o.create {
		if !o.batch {
			pw, code := readPassword(stdin, stdout, stderr)
			if code != 0 {
				return code
			}
			o.password = pw
		}
		line, err := hashLine(o, o.password)
		if err != nil {
			fmt.Fprintf(stderr, "Error: Unable to hash password: %v.\n", err)
			return 1
		}
		if err := writeAtomic(path, []byte(line+"\n"), nil); err != nil {
			fmt.Fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", o.file, errText(err))
			return 1
		}
		return 0
	}

	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "Error: Unable to open password file %s. %s.\n", o.file, errText(err))
		return 1
	}
	info, err := os.Stat(path)
	if err != nil {
		fmt.Fprintf(stderr, "Error: Unable to open password file %s. %s.\n", o.file, errText(err))
		return 1
	}
	lines, err := splitFile(data)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}

	var out []string
	switch {
	case o.del:
		found := false
		for _, l := range lines {
			if l.isUser && l.user == o.username {
				found = true
				continue
			}
			out = append(out, l.text)
		}
		if !found {
			fmt.Fprintf(stderr, "Warning: User %s not found in password file.\n", o.username)
			return 1
		}
	case o.update:
		for _, l := range lines {
			if !l.isUser || auth.ValidateHash(l.field) == nil {
				out = append(out, l.text)
				continue
			}
			if looksHashed(l.field) {
				// Hashing a damaged hash as if it were a password would
				// lock the user out without a word.
				fmt.Fprintf(stderr, "Error: Damaged password hash for user %s at line %d, not changing the file.\n", l.user, l.no)
				return 1
			}
			line, err := hashLine(options{username: l.user, hashType: o.hashType, iterations: o.iterations}, l.field)
			if err != nil {
				fmt.Fprintf(stderr, "Error: Unable to hash password: %v.\n", err)
				return 1
			}
			out = append(out, line)
		}
	default:
		if !o.batch {
			pw, code := readPassword(stdin, stdout, stderr)
			if code != 0 {
				return code
			}
			o.password = pw
		}
		line, err := hashLine(o, o.password)
		if err != nil {
			fmt.Fprintf(stderr, "Error: Unable to hash password: %v.\n", err)
			return 1
		}
		replaced := false
		for _, l := range lines {
			if l.isUser && l.user == o.username {
				if !replaced {
					out = append(out, line)
					replaced = true
				}
				// A later duplicate would be ambiguous; drop it.
				continue
			}
			out = append(out, l.text)
		}
		if !replaced {
			out = append(out, line)
		}
	}

	content := strings.Join(out, "\n")
	if content != "" {
		content += "\n"
	}
	if err := writeAtomic(path, []byte(content), info); err != nil {
		fmt.Fprintf(stderr, "Error occurred updating password file: %v.\n", err)
		return 1
	}
	return 0
}

// parseArgs follows mosquitto_passwd 2.0: options first, in any order and
// repeatable, then the positional arguments; the same messages and exit
// codes for each mistake. ok is false when Run should return code.
func parseArgs(args []string, stdout, stderr io.Writer) (o options, code int, ok bool) {
	o.hashType = auth.SHA512PBKDF2
	fail := func(msg string) (options, int, bool) {
		fmt.Fprintf(stderr, "Error: %s\n", msg)
		return o, 1, false
	}
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		// mosquitto_passwd exits 1 here; asking for help is not an error.
		fmt.Fprint(stdout, usage)
		return o, 0, false
	}
	i := 0
options:
	for ; i < len(args); i++ {
		switch args[i] {
		case "-H":
			if i+1 == len(args) {
				return fail("-H argument given but not enough other arguments.")
			}
			i++
			t, err := auth.ParseHashType(args[i])
			if err != nil {
				return fail(fmt.Sprintf("Unknown hash type '%s'", args[i]))
			}
			o.hashType = t
		case "-I":
			if i+1 == len(args) {
				return fail("-I argument given but not enough other arguments.")
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 1 {
				return fail("Number of iterations must be > 0.")
			}
			if n > auth.MaxIterations {
				return fail(fmt.Sprintf("Number of iterations must be at most %d.", auth.MaxIterations))
			}
			o.iterations = n
		case "-b":
			o.batch = true
		case "-c":
			o.create = true
		case "-D":
			o.del = true
		case "-U":
			o.update = true
		default:
			break options
		}
	}
	switch {
	case o.create && o.del:
		return fail("-c and -D cannot be used together.")
	case o.create && o.update:
		return fail("-c and -U cannot be used together.")
	case o.del && o.update:
		return fail("-D and -U cannot be used together.")
	case o.del && o.batch:
		return fail("-b and -D cannot be used together.")
	}
	rest := args[i:]
	switch {
	case o.create && o.batch:
		if len(rest) < 3 {
			return fail("-c argument given but password file, username, or password missing.")
		}
		o.file, o.username, o.password = rest[0], rest[1], rest[2]
	case o.create:
		if len(rest) < 2 {
			return fail("-c argument given but password file or username missing.")
		}
		o.file, o.username = rest[0], rest[1]
	case o.del:
		if len(rest) < 2 {
			return fail("-D argument given but password file or username missing.")
		}
		o.file, o.username = rest[0], rest[1]
	case o.update:
		if len(rest) != 1 {
			return fail("-U argument given but password file missing.")
		}
		o.file = rest[0]
	case o.batch && len(rest) == 3:
		o.file, o.username, o.password = rest[0], rest[1], rest[2]
	case !o.batch && len(rest) == 2:
		o.file, o.username = rest[0], rest[1]
	default:
		fmt.Fprint(stdout, usage)
		return o, 1, false
	}
	return o, 0, true
}

// checkUsername returns why username cannot go into a password file, or "".
// Mosquitto 2.0 refuses ':' and control characters; mamori also refuses
// the empty name and invalid UTF-8, which Mosquitto writes and then cannot
// use (MQTT usernames are UTF-8).
func checkUsername(u string) string {
	switch {
	case u == "":
		return "Username must not be empty."
	case strings.Contains(u, ":"):
		return "Username must not contain the ':' character."
	case strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "Username must not contain control characters."
	case !utf8.ValidString(u):
		return "Username must be valid UTF-8."
	}
	return ""
}

func looksHashed(field string) bool {
	return strings.HasPrefix(field, "$6$") || strings.HasPrefix(field, "$7$") || strings.HasPrefix(field, "$argon2id$")
}

func hashLine(o options, password string) (string, error) {
	h, err := auth.NewHash(o.hashType, password, o.iterations)
	if err != nil {
		return "", err
	}
	return o.username + ":" + h, nil
}

// fileLine is one line of an existing password file; comments and blank
// lines are kept verbatim (mosquitto_passwd 2.0 drops the whole file's
// contents when it meets one).
type fileLine struct {
	no          int
	text        string
	isUser      bool
	user, field string
}

// corruptLine is a non-comment line without ':'; its message is
// mosquitto_passwd's.
type corruptLine int

func (c corruptLine) Error() string { return fmt.Sprintf("Corrupt password file at line %d.", int(c)) }

func splitFile(data []byte) ([]fileLine, error) {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil, nil
	}
	var lines []fileLine
	for i, text := range strings.Split(s, "\n") {
		text = strings.TrimSuffix(text, "\r")
		l := fileLine{no: i + 1, text: text}
		t := strings.TrimSpace(text)
		if t != "" && t[0] != '#' {
			user, field, ok := strings.Cut(text, ":")
			if !ok {
				return nil, corruptLine(l.no)
			}
			l.isUser, l.user, l.field = true, strings.TrimSpace(user), strings.TrimSpace(field)
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// writeAtomic replaces path with data through a temporary file in the same
// directory and a rename, so the broker (or a crash) never sees a half-
// written file. A new file gets mode 0600. An existing file keeps its owner
// and group and at most mode 0640: Debian runs the broker as user
// "mosquitto" reading a root:mosquitto 0640 file, which 0600 would break.
func writeAtomic(path string, data []byte, old fs.FileInfo) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	mode := fs.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm() & 0o640
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			_ = f.Chown(int(st.Uid), int(st.Gid)) // best effort: needs privilege
		}
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not all filesystems allow it
		d.Close()
	}
	return nil
}

// readPassword prompts twice like mosquitto_passwd. On a terminal echo is
// off; otherwise lines are read from stdin, so scripts can pipe them in.
func readPassword(stdin io.Reader, stdout, stderr io.Writer) (string, int) {
	var read func() (string, error)
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read = func() (string, error) {
			b, err := term.ReadPassword(int(f.Fd()))
			return string(b), err
		}
	} else {
		br := bufio.NewReader(stdin)
		read = func() (string, error) {
			s, err := br.ReadString('\n')
			if err != nil && !(errors.Is(err, io.EOF) && s != "") {
				return "", err
			}
			return strings.TrimRight(s, "\r\n"), nil
		}
	}
	var pw [2]string
	for i, prompt := range []string{"Password: ", "Reenter password: "} {
		fmt.Fprint(stdout, prompt)
		s, err := read()
		if err != nil || s == "" {
			fmt.Fprintln(stderr, "Error: Empty password.")
			return "", 1
		}
		fmt.Fprintln(stdout)
		pw[i] = s
	}
	if pw[0] != pw[1] {
		fmt.Fprintln(stderr, "Error: Passwords do not match.")
		return "", 2
	}
	return pw[0], 0
}

// errText renders an OS error like strerror: "No such file or directory".
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}
