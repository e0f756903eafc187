//go:build race

package brokercmd

// raceEnabled reports whether the tests run under the race detector, so
// the broker is built with it as well.
const raceEnabled = true
