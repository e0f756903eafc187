// Package sub implements the "mamori sub" command.
package sub

import (
	"fmt"
	"io"
)

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mamori sub: not yet available")
	return 1
}
