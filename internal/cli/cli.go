// Package cli dispatches mamori's command line to its commands. Every command
// takes its standard streams as arguments and returns an exit code, so tests
// can run it in-process.
package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/cli/bench"
	"github.com/mamori-mqtt/mamori/internal/cli/broker"
	"github.com/mamori-mqtt/mamori/internal/cli/ca"
	"github.com/mamori-mqtt/mamori/internal/cli/passwd"
	"github.com/mamori-mqtt/mamori/internal/cli/pub"
	"github.com/mamori-mqtt/mamori/internal/cli/rr"
	"github.com/mamori-mqtt/mamori/internal/cli/sub"
	"github.com/mamori-mqtt/mamori/internal/cli/tlscheck"
)

// Version is the release version; set with -ldflags "-X ...cli.Version=..."
var Version = "0.1.0-dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = []command{
	{"broker", "run the MQTT broker (mosquitto)", broker.Run},
	{"pub", "publish a message (mosquitto_pub)", pub.Run},
	{"sub", "subscribe and print messages (mosquitto_sub)", sub.Run},
	{"rr", "MQTT 5 request/response (mosquitto_rr)", rr.Run},
	{"passwd", "manage password files (mosquitto_passwd)", passwd.Run},
	{"ca", "a small private certificate authority", ca.Run},
	{"tlscheck", "connect to a TLS endpoint and explain what it presents", tlscheck.Run},
	{"bench", "load generator", bench.Run},
	{"version", "print version and build information", runVersion},
}

// aliases maps the names of the mosquitto programs to mamori commands, so a
// symlink named mosquitto_pub behaves as mosquitto_pub does.
var aliases = map[string]string{
	"mosquitto":        "broker",
	"mosquitto_pub":    "pub",
	"mosquitto_sub":    "sub",
	"mosquitto_rr":     "rr",
	"mosquitto_passwd": "passwd",
}

// Main runs mamori with the full argument vector (args[0] is the program
// name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "mamori"
	if len(args) > 0 {
		prog = strings.TrimSuffix(filepath.Base(args[0]), ".exe")
	}
	if name, ok := aliases[prog]; ok {
		return find(name).run(args[1:], stdin, stdout, stderr)
	}
	if len(args) < 2 {
		usage(stderr)
		return 1
	}
	name := args[1]
	switch name {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "--version", "-V":
		name = "version"
	}
	c := find(name)
	if c == nil {
		fmt.Fprintf(stderr, "mamori: unknown command %q\n\n", name)
		usage(stderr)
		return 1
	}
	return c.run(args[2:], stdin, stdout, stderr)
}

func find(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mamori <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mamori <command> --help' for the flags of a command.")
}

func runVersion(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "mamori %s\n", Version)
	fmt.Fprintf(stdout, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified":
				fmt.Fprintf(stdout, "%s: %s\n", s.Key, s.Value)
			}
		}
	}
	return 0
}
