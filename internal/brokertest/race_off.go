//go:build !race

package brokertest

// RaceEnabled reports whether the tests run under the race detector.
const RaceEnabled = false
