package config

import "strings"

// LogDest is a set of log destinations (log_dest).
type LogDest uint8

// Log destinations, as named in mosquitto.conf.
const (
	LogStdout LogDest = 1 << iota
	LogStderr
	LogSyslog
	LogTopic
	LogFile
	LogDLT
)

var logDestNames = []struct {
	bit  LogDest
	name string
}{
	{LogStdout, "stdout"}, {LogStderr, "stderr"}, {LogSyslog, "syslog"},
	{LogTopic, "topic"}, {LogFile, "file"}, {LogDLT, "dlt"},
}

// Has reports whether d includes all of x.
func (d LogDest) Has(x LogDest) bool { return d&x == x }

// String lists the destinations as written in mosquitto.conf, e.g.
// "stderr,file"; "none" for the empty set.
func (d LogDest) String() string {
	var names []string
	for _, n := range logDestNames {
		if d.Has(n.bit) {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// MarshalText renders the set as [LogDest.String] does.
func (d LogDest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// LogType is a set of log message types (log_type).
type LogType uint16

// Log types, as named in mosquitto.conf.
const (
	LogDebug LogType = 1 << iota
	LogError
	LogWarning
	LogNotice
	LogInformation
	LogSubscribe
	LogUnsubscribe
	LogWebsockets
	LogInternal

	// LogAll is `log_type all`.
	LogAll = LogDebug | LogError | LogWarning | LogNotice | LogInformation |
		LogSubscribe | LogUnsubscribe | LogWebsockets | LogInternal
)

var logTypeNames = []struct {
	bit  LogType
	name string
}{
	{LogDebug, "debug"}, {LogError, "error"}, {LogWarning, "warning"},
	{LogNotice, "notice"}, {LogInformation, "information"},
	{LogSubscribe, "subscribe"}, {LogUnsubscribe, "unsubscribe"},
	{LogWebsockets, "websockets"}, {LogInternal, "internal"},
}

// Has reports whether t includes all of x.
func (t LogType) Has(x LogType) bool { return t&x == x }

// String lists the types as written in mosquitto.conf, e.g.
// "error,warning"; "all" and "none" for the full and empty sets.
func (t LogType) String() string {
	if t == LogAll {
		return "all"
	}
	var names []string
	for _, n := range logTypeNames {
		if t.Has(n.bit) {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// MarshalText renders the set as [LogType.String] does.
func (t LogType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
