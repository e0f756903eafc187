// Package ca implements the "mamori ca" command: a small file-based CA
// (internal/pki) that replaces the openssl recipes of the seed documents,
// and an "inspect" that explains any certificate, key, CSR, CRL or PKCS#12
// file.
package ca

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the operation failed
	exitUsage = 2 // bad flags or arguments
)

const usageText = `Usage: mamori ca <command> [flags]

A small private certificate authority kept in one directory.

Commands:
  init                     create a CA (root, optionally --intermediate)
  issue server|client      make a key and a certificate
  sign CSR                 issue a certificate for a key made on a device
  revoke SERIAL|NAME       revoke a certificate and write a new CRL
  crl                      write a new CRL
  list                     list issued certificates: status, expiry, serial
  export NAME --p12        bundle a certificate, its key and the CA as PKCS#12
  inspect FILE             explain any certificate, chain, key, CSR, CRL or PKCS#12

Every command except inspect takes --dir DIR, the CA directory; the default
is $MAMORI_CA_DIR, else $XDG_DATA_HOME/mamori/ca or ~/.local/share/mamori/ca.
The CA key passphrase comes from --password-file FILE, $MAMORI_CA_PASSWORD,
or is asked for on the terminal.

Run "mamori ca <command> --help" for the flags of a command.
`

// env carries the command's streams. Prompts read stdin through one
// buffered reader so that several answers piped in (passphrase, then its
// confirmation) are not lost between reads.
type env struct {
	stdin  io.Reader
	lines  *bufio.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError marks errors in the command line, reported with exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, lines: bufio.NewReader(stdin), stdout: stdout, stderr: stderr}
	// Accept "mamori ca --dir D issue …" as well as "mamori ca issue --dir D …".
	var pre []string
	for len(args) > 0 && (args[0] == "--dir" || strings.HasPrefix(args[0], "--dir=")) {
		if args[0] == "--dir" && len(args) > 1 {
			pre, args = append(pre, args[0], args[1]), args[2:]
		} else {
			pre, args = append(pre, args[0]), args[1:]
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], append(pre, args[1:]...)
	var err error
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	case "init":
		err = e.runInit(rest)
	case "issue":
		err = e.runIssue(rest)
	case "sign":
		err = e.runSign(rest)
	case "revoke":
		err = e.runRevoke(rest)
	case "crl":
		err = e.runCRL(rest)
	case "list", "ls":
		err = e.runList(rest)
	case "export":
		err = e.runExport(rest)
	case "inspect":
		err = e.runInspect(rest)
	default:
		fmt.Fprintf(stderr, "mamori ca: unknown command %q\n\n%s", cmd, usageText)
		return exitUsage
	}
	var ue usageError
	var ee exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mamori ca %s: %v\n", cmd, err)
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "mamori ca %s: %v\n", cmd, err)
	if errors.Is(err, pki.ErrNoCA) {
		fmt.Fprintln(stderr, "Create one with: mamori ca init (add --dir DIR for another directory)")
	}
	return exitError
}

// exitCode ends a command with a code after it has printed its own output.
type exitCode struct{ code int }

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", e.code) }

// errHelp is returned after help was printed.
var errHelp = errors.New("help shown")

// flagSet makes a flag set whose errors become usage errors and whose help
// goes to stdout.
func (e *env) flagSet(name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("mamori ca "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: mamori ca %s %s\n\nFlags:\n%s", name, synopsis, fs.FlagUsages())
	}
	return fs
}

// parse parses flags and checks the number of positional arguments.
func parse(fs *pflag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			// pflag has already called fs.Usage.
			return nil, errHelp
		}
		return nil, usageError{err.Error()}
	}
	pos := fs.Args()
	if len(pos) < minArgs || len(pos) > maxArgs {
		if minArgs == maxArgs {
			return nil, usagef("expected %d argument(s), got %d (see --help)", minArgs, len(pos))
		}
		return nil, usagef("expected %d to %d arguments, got %d (see --help)", minArgs, maxArgs, len(pos))
	}
	return pos, nil
}

// caDir resolves --dir against the defaults.
func caDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return pki.DefaultCADir()
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// readSecret asks for a secret. On a terminal it turns echo off (and asks
// twice when confirm is set, to catch typos in a new passphrase); otherwise
// it reads one line of stdin, so scripts can pipe the passphrase in.
func (e *env) readSecret(prompt string, confirm bool) ([]byte, error) {
	if fd, ok := isTerminal(e.stdin); ok {
		fmt.Fprint(e.stderr, prompt+": ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if confirm {
			fmt.Fprint(e.stderr, "Repeat "+strings.ToLower(prompt[:1])+prompt[1:]+": ")
			again, err := term.ReadPassword(fd)
			fmt.Fprintln(e.stderr)
			if err != nil {
				return nil, fmt.Errorf("read passphrase: %w", err)
			}
			if string(again) != string(pw) {
				return nil, errors.New("the two entries differ")
			}
		}
		return pw, nil
	}
	line, err := e.lines.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return nil, fmt.Errorf("%s: nothing on standard input (use --password-file or $MAMORI_CA_PASSWORD)", strings.ToLower(prompt))
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

// readPasswordFile returns the first line of a file, as openssl's
// "-passin file:" does.
func readPasswordFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return []byte(strings.TrimRight(line, "\r")), nil
}

// caPassword returns the CA passphrase source: --password-file, then
// $MAMORI_CA_PASSWORD, then a prompt.
func (e *env) caPassword(file string, confirm bool) func() ([]byte, error) {
	return func() ([]byte, error) {
		if file != "" {
			return readPasswordFile(file)
		}
		if pw := os.Getenv("MAMORI_CA_PASSWORD"); pw != "" {
			return []byte(pw), nil
		}
		return e.readSecret("CA key passphrase", confirm)
	}
}

// openCA opens the CA in --dir with the usual passphrase sources.
func (e *env) openCA(dirFlag, passwordFile string) (*pki.CA, error) {
	dir, err := caDir(dirFlag)
	if err != nil {
		return nil, err
	}
	return pki.Open(dir, pki.OpenOptions{Password: e.caPassword(passwordFile, false)})
}

// keyTypeFlags registers --rsa and --ed25519 and returns a resolver.
func keyTypeFlags(fs *pflag.FlagSet, what, dflt string) func() (pki.KeyType, error) {
	rsaBits := fs.Int("rsa", 0, "an RSA "+what+"key of this size (2048, 3072 or 4096) instead of "+dflt)
	ed := fs.Bool("ed25519", false, "an Ed25519 "+what+"key (OpenSSL 1.1.1+ and Go clients only; not mbedTLS or Windows)")
	return func() (pki.KeyType, error) {
		switch {
		case *rsaBits != 0 && *ed:
			return "", usagef("--rsa and --ed25519 exclude each other")
		case *rsaBits != 0:
			kt, err := pki.RSAKeyType(*rsaBits)
			if err != nil {
				return "", usageError{err.Error()}
			}
			return kt, nil
		case *ed:
			return pki.KeyEd25519, nil
		}
		return "", nil
	}
}
