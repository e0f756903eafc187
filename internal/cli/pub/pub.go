// Package pub implements the "mamori pub" command.
package pub

import (
	"fmt"
	"io"
)

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mamori pub: not yet available")
	return 1
}
