package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// Change is one option whose value differs between two configurations.
type Change struct {
	Option   string
	Listener string // the listener it belongs to, or "" for a global option
	Old, New string
	// Live is true when the running broker can apply the change without
	// restarting the process or reopening the listener. Added and removed
	// listeners (Option "listener") are reported with Live false; the
	// broker opens and closes them (see Delta.Added and Delta.Removed).
	Live bool
}

// String formats the change for the log, e.g.
// "listener 8883: certfile: /old.pem -> /new.pem (applied live)".
func (c Change) String() string {
	if c.Option == "listener" && c.Old == "" {
		return c.Listener + ": added (opened on reload)"
	}
	if c.Option == "listener" && c.New == "" {
		return c.Listener + ": removed (closed on reload)"
	}
	how := "needs a restart"
	if c.Live {
		how = "applied live"
	}
	s := fmt.Sprintf("%s: %q -> %q (%s)", c.Option, c.Old, c.New, how)
	if c.Listener != "" {
		s = c.Listener + ": " + s
	}
	return s
}

// Delta is what changed between the running configuration and a new one,
// for SIGHUP: what the broker can apply live, which listeners it must
// reopen, and what only a process restart applies.
type Delta struct {
	Changes []Change // every changed option, for the log

	Auth   bool // authentication options changed: reload password, ACL and PSK files, re-check clients
	Log    bool // logging options changed
	Limits bool // limits and message-handling options changed (they apply to new messages and connections)
	// TLS lists listeners (from the new configuration) whose certificates,
	// CAs, CRLs or other TLS options changed; they are applied to new
	// handshakes without closing connections.
	TLS []*Listener

	Added   []*Listener // listeners to open
	Removed []*Listener // listeners to close (from the old configuration)
	// Reopen lists listeners (from the new configuration) whose socket or
	// protocol options changed: they must be closed and opened again.
	Reopen []*Listener

	// Restart is set when a changed option only takes effect when the
	// process restarts (user, pid_file, persistence location, ...).
	Restart bool
}

// Empty reports whether nothing changed.
func (d *Delta) Empty() bool { return len(d.Changes) == 0 }

// Diff compares the running configuration with a newly loaded one. The
// comparison is written out field by field so that adding a field to
// Config without deciding how it reloads shows up in review.
func Diff(old, cur *Config) *Delta {
	d := &Delta{}
	g := differ{d: d}

	// Authentication: reloaded live, as Mosquitto reloads them on SIGHUP.
	g.listener = ""
	g.bool("per_listener_settings", old.PerListenerSettings, cur.PerListenerSettings, liveAuth)
	g.security(&old.Security, &cur.Security)
	g.str("clientid_prefixes", old.ClientIDPrefixes, cur.ClientIDPrefixes, liveAuth)

	// Logging.
	g.str("log_dest", old.Log.Dest.String(), cur.Log.Dest.String(), liveLog)
	g.str("log_dest file", old.Log.File.Path, cur.Log.File.Path, liveLog)
	g.str("log_type", old.Log.Types.String(), cur.Log.Types.String(), liveLog)
	g.int("log_facility", old.Log.Facility, cur.Log.Facility, liveLog)
	g.bool("log_timestamp", old.Log.Timestamp, cur.Log.Timestamp, liveLog)
	g.str("log_timestamp_format", old.Log.TimestampFormat, cur.Log.TimestampFormat, liveLog)
	g.bool("connection_messages", old.Log.ConnectionMessages, cur.Log.ConnectionMessages, liveLog)
	g.int("websockets_log_level", old.Log.WebsocketsLevel, cur.Log.WebsocketsLevel, liveLog)

	// Limits and message handling.
	ol, nl := &old.Limits, &cur.Limits
	g.int("max_keepalive", ol.MaxKeepalive, nl.MaxKeepalive, liveLimits)
	g.int("max_packet_size", ol.MaxPacketSize, nl.MaxPacketSize, liveLimits)
	g.int("message_size_limit", ol.MessageSizeLimit, nl.MessageSizeLimit, liveLimits)
	g.int("max_inflight_messages", ol.MaxInflightMessages, nl.MaxInflightMessages, liveLimits)
	g.int64("max_inflight_bytes", ol.MaxInflightBytes, nl.MaxInflightBytes, liveLimits)
	g.int("max_queued_messages", ol.MaxQueuedMessages, nl.MaxQueuedMessages, liveLimits)
	g.int64("max_queued_bytes", ol.MaxQueuedBytes, nl.MaxQueuedBytes, liveLimits)
	g.int64("memory_limit", ol.MemoryLimit, nl.MemoryLimit, liveLimits)
	g.bool("retain_available", old.RetainAvailable, cur.RetainAvailable, liveLimits)
	g.str("persistent_client_expiration", old.PersistentClientExpiration.String(), cur.PersistentClientExpiration.String(), liveLimits)
	g.bool("queue_qos0_messages", old.QueueQoS0Messages, cur.QueueQoS0Messages, liveLimits)
	g.bool("upgrade_outgoing_qos", old.UpgradeOutgoingQoS, cur.UpgradeOutgoingQoS, liveLimits)
	g.bool("check_retain_source", old.CheckRetainSource, cur.CheckRetainSource, liveLimits)
	g.bool("allow_duplicate_messages", old.AllowDuplicateMessages, cur.AllowDuplicateMessages, liveLimits)
	g.bool("set_tcp_nodelay", old.SetTCPNoDelay, cur.SetTCPNoDelay, liveLimits)
	g.str("sys_interval", old.SysInterval.String(), cur.SysInterval.String(), liveLimits)
	g.int("cert_expiry_warning_days", old.CertExpiryWarningDays, cur.CertExpiryWarningDays, liveLimits)
	g.bool("reason_strings", old.ReasonStrings, cur.ReasonStrings, liveLimits)
	g.int("autosave_interval", old.Persistence.AutosaveInterval, cur.Persistence.AutosaveInterval, liveLimits)
	g.bool("autosave_on_changes", old.Persistence.AutosaveOnChanges, cur.Persistence.AutosaveOnChanges, liveLimits)

	// Only a process restart applies these.
	g.bool("persistence", old.Persistence.Enabled, cur.Persistence.Enabled, restart)
	g.str("persistence_location", old.Persistence.Location.Path, cur.Persistence.Location.Path, restart)
	g.str("persistence_file", old.Persistence.File, cur.Persistence.File, restart)
	g.str("pid_file", old.PIDFile.Path, cur.PIDFile.Path, restart)
	g.str("user", old.User, cur.User, restart)
	g.int("websockets_headers_size", old.WebsocketsHeadersSize, cur.WebsocketsHeadersSize, restart)
	g.bool("enable_control_api", old.EnableControlAPI, cur.EnableControlAPI, restart)
	g.str("metrics_listener", old.MetricsListener.Text, cur.MetricsListener.Text, restart)

	// Bridges are not changed by a reload in Mosquitto 2.0 (mosquitto.conf(5):
	// "Bridges cannot currently be reloaded on reload signal"); mamori keeps
	// the running bridges too and says that a restart applies the change.
	ob, nb := bridgeDigests(old.Bridges), bridgeDigests(cur.Bridges)
	var names []string
	for n := range ob {
		names = append(names, n)
	}
	for n := range nb {
		if _, ok := ob[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		g.str("connection "+n, ob[n], nb[n], restart)
	}

	g.listeners(old, cur)
	return d
}

// bridgeDigests maps each bridge's name to a short digest of its
// settings, positions left out (moving a block is no change) and secrets
// not shown (the log prints what changed).
func bridgeDigests(bs []*Bridge) map[string]string {
	out := map[string]string{}
	for _, b := range bs {
		c := *b
		c.Pos = Pos{}
		c.Topics = slices.Clone(b.Topics)
		for i := range c.Topics {
			c.Topics[i].Pos = Pos{}
		}
		c.TLS.CAFile.Pos, c.TLS.CAPath.Pos, c.TLS.CertFile.Pos, c.TLS.KeyFile.Pos, c.TLS.Version.Pos = Pos{}, Pos{}, Pos{}, Pos{}, Pos{}
		c.RemoteUsername, c.RemotePassword, c.LocalUsername, c.LocalPassword = nil, nil, nil, nil
		s := fmt.Sprintf("%+v", c)
		for _, p := range []*string{b.RemoteUsername, b.RemotePassword, b.LocalUsername, b.LocalPassword} {
			if p != nil {
				s += "|" + *p
			} else {
				s += "|-"
			}
		}
		sum := sha256.Sum256([]byte(s))
		out[b.Name] = "settings " + hex.EncodeToString(sum[:4])
	}
	return out
}

// effect is what a changed option requires.
type effect int

const (
	liveAuth effect = iota
	liveLog
	liveLimits
	liveTLS
	reopen
	restart
)

type differ struct {
	d        *Delta
	listener string
	// reopen and tls are set while comparing one listener.
	reopen, tls bool
}

func (g *differ) add(option, old, cur string, e effect) {
	if old == cur {
		return
	}
	g.d.Changes = append(g.d.Changes, Change{Option: option, Listener: g.listener, Old: old, New: cur,
		Live: e != reopen && e != restart})
	switch e {
	case liveAuth:
		g.d.Auth = true
	case liveLog:
		g.d.Log = true
	case liveLimits:
		g.d.Limits = true
	case liveTLS:
		g.tls = true
	case reopen:
		g.reopen = true
	case restart:
		g.d.Restart = true
	}
}

func (g *differ) str(option, old, cur string, e effect) { g.add(option, old, cur, e) }

func (g *differ) bool(option string, old, cur bool, e effect) {
	g.add(option, fmt.Sprint(old), fmt.Sprint(cur), e)
}

func (g *differ) int(option string, old, cur int, e effect) {
	g.add(option, fmt.Sprint(old), fmt.Sprint(cur), e)
}

func (g *differ) int64(option string, old, cur int64, e effect) {
	g.add(option, fmt.Sprint(old), fmt.Sprint(cur), e)
}

func (g *differ) security(old, cur *Security) {
	g.str("allow_anonymous", optBool(old.AllowAnonymous), optBool(cur.AllowAnonymous), liveAuth)
	g.bool("allow_zero_length_clientid", old.AllowZeroLengthClientID, cur.AllowZeroLengthClientID, liveAuth)
	g.str("auto_id_prefix", old.AutoIDPrefix, cur.AutoIDPrefix, liveAuth)
	g.str("password_file", old.PasswordFile.Path, cur.PasswordFile.Path, liveAuth)
	g.str("acl_file", old.ACLFile.Path, cur.ACLFile.Path, liveAuth)
	g.str("psk_file", old.PSKFile.Path, cur.PSKFile.Path, liveAuth)
}

func optBool(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

// listeners matches listeners by address: a listener whose address changed
// is one removed and one added.
func (g *differ) listeners(old, cur *Config) {
	oldBy := map[string]*Listener{}
	for _, l := range old.Listeners {
		oldBy[l.key()] = l
	}
	seen := map[string]bool{}
	for _, nl := range cur.Listeners {
		k := nl.key()
		seen[k] = true
		ol, ok := oldBy[k]
		if !ok {
			g.d.Added = append(g.d.Added, nl)
			g.d.Changes = append(g.d.Changes, Change{Option: "listener", Listener: nl.String(), New: nl.Addr()})
			continue
		}
		g.listener, g.reopen, g.tls = nl.String(), false, false
		g.listenerFields(ol, nl)
		if g.reopen {
			g.d.Reopen = append(g.d.Reopen, nl)
		} else if g.tls {
			g.d.TLS = append(g.d.TLS, nl)
		}
	}
	g.listener = ""
	for _, ol := range old.Listeners {
		if !seen[ol.key()] {
			g.d.Removed = append(g.d.Removed, ol)
			g.d.Changes = append(g.d.Changes, Change{Option: "listener", Listener: ol.String(), Old: ol.Addr()})
		}
	}
}

func (g *differ) listenerFields(o, n *Listener) {
	g.str("bind_interface", o.BindInterface, n.BindInterface, reopen)
	g.str("socket_domain", string(o.SocketDomain), string(n.SocketDomain), reopen)
	g.str("protocol", string(o.Protocol), string(n.Protocol), reopen)
	g.str("http_dir", o.HTTPDir.Path, n.HTTPDir.Path, reopen)
	// A mount point or client-id rule changes the identity of connected
	// clients: reopen rather than mix old and new.
	g.str("mount_point", o.MountPoint, n.MountPoint, reopen)
	g.bool("use_username_as_clientid", o.UseUsernameAsClientID, n.UseUsernameAsClientID, reopen)
	g.bool("AutoCert", o.AutoCert, n.AutoCert, reopen)
	g.int("max_connections", o.MaxConnections, n.MaxConnections, liveLimits)
	g.int("max_qos", o.MaxQoS, n.MaxQoS, liveLimits)
	g.int("max_topic_alias", o.MaxTopicAlias, n.MaxTopicAlias, liveLimits)

	ot, nt := &o.TLS, &n.TLS
	// Turning TLS on or off changes what the socket speaks.
	g.bool("TLS enabled", ot.Enabled(), nt.Enabled(), reopen)
	g.str("certfile/keyfile", certsString(ot.Certs), certsString(nt.Certs), liveTLS)
	if passwordsChanged(ot.Certs, nt.Certs) {
		g.add("keyfile_password", "(hidden)", "(hidden, changed)", liveTLS)
	}
	g.str("cafile", ot.CAFile.Path, nt.CAFile.Path, liveTLS)
	g.str("capath", ot.CAPath.Path, nt.CAPath.Path, liveTLS)
	g.str("crlfile", filesString(ot.CRLFiles), filesString(nt.CRLFiles), liveTLS)
	g.str("crl_url", valuesString(ot.CRLURLs), valuesString(nt.CRLURLs), liveTLS)
	g.str("crl_refresh_interval", ot.CRLRefreshInterval.String(), nt.CRLRefreshInterval.String(), liveTLS)
	g.str("ciphers", ot.Ciphers.Text, nt.Ciphers.Text, liveTLS)
	g.str("ciphers_tls1.3", ot.Ciphers13.Text, nt.Ciphers13.Text, liveTLS)
	g.str("tls_version", ot.Version.Text, nt.Version.Text, liveTLS)
	g.bool("require_certificate", ot.RequireCertificate, nt.RequireCertificate, liveTLS)
	g.bool("use_identity_as_username", ot.UseIdentityAsUsername, nt.UseIdentityAsUsername, liveTLS)
	g.bool("use_subject_as_username", ot.UseSubjectAsUsername, nt.UseSubjectAsUsername, liveTLS)
	g.bool("ocsp_stapling", ot.OCSPStapling, nt.OCSPStapling, liveTLS)
	g.str("psk_hint", ot.PSKHint, nt.PSKHint, liveTLS)
	g.str("dhparamfile", ot.DHParamFile.Path, nt.DHParamFile.Path, liveTLS)
	g.str("tls_engine", ot.Engine, nt.Engine, liveTLS)
	g.str("tls_keyform", ot.Keyform, nt.Keyform, liveTLS)

	if o.Security != nil || n.Security != nil {
		os, ns := o.Security, n.Security
		if os == nil {
			os = &Security{}
		}
		if ns == nil {
			ns = &Security{}
		}
		g.security(os, ns)
	}
}

// certsString lists pairs for comparison and the log; passwords are
// compared separately and never shown.
func certsString(cs []CertKey) string {
	var parts []string
	for _, c := range cs {
		s := c.CertFile.Path
		if c.KeyFile.IsSet() {
			s += "+" + c.KeyFile.Path
		}
		parts = append(parts, s)
	}
	return fmt.Sprint(parts)
}

func passwordsChanged(o, n []CertKey) bool {
	return !slices.EqualFunc(o, n, func(a, b CertKey) bool { return a.Password == b.Password })
}

func filesString(fs []File) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.Path)
	}
	return fmt.Sprint(parts)
}

func valuesString(vs []Value) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, v.Text)
	}
	return fmt.Sprint(parts)
}
