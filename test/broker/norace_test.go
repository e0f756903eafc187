//go:build !race

package brokercmd

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
