package broker

import (
	"fmt"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
)

// liveOptions are the options a SIGHUP applies to the running broker:
// what Mosquitto reloads (authentication files and log settings). Every
// other change, listeners included, is reported as needing a restart and
// not applied at all, so the broker never runs half of a new listener
// configuration. The broker-wide limits are live too: the broker core
// swaps them atomically (broker.UpdateOptions), and they apply from the
// next check on.
var liveOptions = map[string]bool{
	"max_keepalive":                true,
	"max_packet_size":              true,
	"message_size_limit":           true,
	"max_inflight_messages":        true,
	"max_queued_messages":          true,
	"max_queued_bytes":             true,
	"retain_available":             true,
	"persistent_client_expiration": true,
	"queue_qos0_messages":          true,
	"connection_messages":          true,
	"allow_zero_length_clientid":   true,
	"auto_id_prefix":               true,
	"per_listener_settings":        true,
	"allow_anonymous":              true,
	"password_file":                true,
	"acl_file":                     true,
	"psk_file":                     true,
	"clientid_prefixes":            true,
	"log_dest":                     true,
	"log_dest file":                true,
	"log_type":                     true,
	"log_facility":                 true,
	"log_timestamp":                true,
	"log_timestamp_format":         true,
	"websockets_log_level":         true, // it has no effect in mamori either way
}

// reload re-reads the configuration file on SIGHUP. It applies the live
// options (always re-reading the password, ACL and PSK files, and reopening
// the log file for logrotate, as Mosquitto does even when nothing in the
// configuration changed), re-checks connected clients against the new
// rules, and logs every other change as needing a restart. A configuration
// that does not load, or names a file that does not load, changes nothing:
// the running configuration stays in force and the log says why, with the
// file and line.
func (s *server) reload() {
	log := s.log
	log.Info("Reloading config.")
	if s.cfgPath == "" {
		log.Info("Reload: no configuration file (-c) to re-read; nothing changed.")
		return
	}
	fail := func(err error) {
		log.Error("Error: reload of " + s.cfgPath + " failed; the running configuration stays in force:")
		for _, line := range strings.Split(err.Error(), "\n") {
			log.Error("  " + line)
		}
	}
	cur, err := config.Load(s.cfgPath)
	if err != nil {
		fail(err)
		return
	}
	if len(s.ports) > 0 {
		applyPorts(cur, s.ports)
	}
	eff := effectiveConfig(s.cfg, cur)
	auths, err := s.buildAuth(eff)
	if err != nil {
		fail(err)
		return
	}
	out, warns, err := openLogOutput(eff.Log, s.verbose, s.stdout, s.stderr)
	if err != nil {
		fail(err)
		return
	}

	// Everything loaded: commit.
	d := config.Diff(s.cfg, cur)
	s.sink.swap(out)
	for _, w := range warns {
		log.Warn(w)
	}
	for _, w := range cur.Warnings {
		log.Warn(w.String())
	}
	s.b.SetAuth(auths.global)
	next := brokerOptions(eff, log)
	s.b.UpdateOptions(func(o *broker.Options) { *o = next })
	for i, r := range s.listeners {
		r.cfg = eff.Listeners[i]
		r.bl.SetAuth(auths.listener(i))
		if r.psk != nil {
			// The new psk_file's keys replace the old ones, which are
			// zeroed; tls_version and ciphers are applied.
			r.psk.SetKeys(auths.pskFile(i))
			if err := r.psk.Apply(r.cfg); err != nil {
				log.Error("Reload: " + err.Error())
			}
		}
		if r.tls != nil {
			// Re-reads certificates, keys, CAs and CRLs; a file that does
			// not load leaves the one in service.
			if err := r.tls.Apply(r.cfg); err != nil {
				log.Error("Reload: " + err.Error())
			}
		}
	}
	s.cfg = eff
	restart := 0
	for _, ch := range d.Changes {
		line, live := describeChange(ch)
		if !live {
			restart++
			log.Warn("Reload: " + line)
		} else {
			log.Info("Reload: " + line)
		}
	}
	disc, unsub := s.b.Recheck()
	log.Info(fmt.Sprintf("Reload: password, ACL and PSK files re-read; %d client(s) disconnected and %d subscription(s) removed by the new rules.", disc, unsub))
	if restart > 0 {
		log.Warn(fmt.Sprintf("Reload: %d change(s) need a restart of the broker to take effect; until then the previous values stay in force.", restart))
	}
}

// describeChange formats a change for the log and says whether reload
// applied it.
func describeChange(ch config.Change) (string, bool) {
	if ch.Option == "listener" {
		if ch.Old == "" {
			return ch.Listener + ": added (needs a restart)", false
		}
		return ch.Listener + ": removed (needs a restart)", false
	}
	live := liveOptions[ch.Option]
	how := "applied"
	if !live {
		how = "needs a restart"
	}
	line := fmt.Sprintf("%s: %q -> %q (%s)", ch.Option, ch.Old, ch.New, how)
	if ch.Listener != "" {
		line = ch.Listener + ": " + line
	}
	return line, live
}

// effectiveConfig is the configuration the broker runs after a reload: the
// live options from cur, everything else as it was in old (the values that
// a restart would change are still the old ones, so the next SIGHUP reports
// them again rather than forgetting them). Listeners are old's, in the same
// order as the running ones, with their security block taken from the
// listener of cur at the same address.
func effectiveConfig(old, cur *config.Config) *config.Config {
	eff := *old
	eff.Files, eff.Warnings = cur.Files, cur.Warnings
	eff.PerListenerSettings = cur.PerListenerSettings
	eff.Security = cur.Security
	eff.ClientIDPrefixes = cur.ClientIDPrefixes
	eff.Log = cur.Log
	// Broker-wide limits are swapped into the running broker atomically.
	eff.Limits = cur.Limits
	eff.RetainAvailable = cur.RetainAvailable
	eff.PersistentClientExpiration = cur.PersistentClientExpiration
	eff.QueueQoS0Messages = cur.QueueQoS0Messages

	byKey := make(map[string]*config.Listener, len(cur.Listeners))
	for _, l := range cur.Listeners {
		byKey[listenerKey(l)] = l
	}
	eff.Listeners = make([]*config.Listener, len(old.Listeners))
	for i, ol := range old.Listeners {
		l := *ol
		if nl, ok := byKey[listenerKey(ol)]; ok {
			l.Security = nl.Security
		} else if !cur.PerListenerSettings {
			l.Security = nil
		}
		eff.Listeners[i] = &l
	}
	return &eff
}

// listenerKey identifies a listener across reloads as config.Diff does: by
// its socket address.
func listenerKey(l *config.Listener) string {
	if l.UnixPath != "" {
		return "unix " + l.UnixPath
	}
	return "tcp " + l.Addr()
}
