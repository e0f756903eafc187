package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Validate checks the rules that involve several options, which no single
// line can: certfile/keyfile pairing, require_certificate without a CA, a
// listener given twice, TLS options on a listener without TLS, and
// authentication settings that lock every client out. It returns warnings
// for combinations that load but probably do not do what was meant, and an
// [Errors] for those that cannot work. [Load] and [Parse] call it; call it
// again after changing a Config in code.
func Validate(c *Config) ([]Warning, error) {
	v := &validator{c: c}
	seen := map[string]*Listener{}
	for _, l := range c.Listeners {
		if prev, ok := seen[l.key()]; ok {
			if l.Default {
				v.errorf(l.Pos, "", "this line configures the default listener, so it is started on %s as in Mosquitto (where each included file starts again at the default listener), but that address is already configured at %s; move the line below the `listener` it belongs to", l.Addr(), prev.Pos)
				continue
			}
			v.errorf(l.Pos, "listener", "%s is already configured at %s; each address may have one listener", l.Addr(), prev.Pos)
		} else {
			seen[l.key()] = l
		}
		v.listener(l)
	}
	v.metrics()
	var err error
	if len(v.errs) > 0 {
		err = v.errs
	}
	return v.warns, err
}

type validator struct {
	c     *Config
	errs  Errors
	warns []Warning
}

func (v *validator) errorf(pos Pos, option, format string, args ...any) {
	v.errs = append(v.errs, &Error{Pos: pos, Option: option, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(pos Pos, option, format string, args ...any) {
	v.warns = append(v.warns, Warning{Pos: pos, Option: option, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) listener(l *Listener) {
	c := v.c
	if l.Security != nil && !c.PerListenerSettings {
		v.errorf(l.Pos, "per_listener_settings", "%s has its own authentication options, but per_listener_settings is false", l)
	}
	if l.Security == nil && c.PerListenerSettings {
		v.errorf(l.Pos, "per_listener_settings", "%s has no authentication options, but per_listener_settings is true", l)
	}
	if l.Protocol == ProtocolWebSockets && l.UnixPath != "" {
		v.errorf(l.Pos, "protocol", "websockets cannot be served on the unix socket %q; use a TCP listener", l.UnixPath)
	}
	if l.HTTPDir.IsSet() && l.Protocol != ProtocolWebSockets {
		v.warnf(l.HTTPDir.Pos, "http_dir", "no effect: %s speaks plain MQTT; add `protocol websockets` to serve files", l)
	}
	if l.BindInterface != "" && l.UnixPath != "" {
		v.warnf(l.Pos, "bind_interface", "no effect on the unix socket %q", l.UnixPath)
	}
	v.tls(l)
	v.lockout(l)
}

func (v *validator) tls(l *Listener) {
	t := &l.TLS
	for _, ck := range t.Certs {
		switch {
		case !ck.CertFile.IsSet():
			v.errorf(ck.KeyFile.Pos, "keyfile", "keyfile %q has no certfile; add a `certfile` line for its certificate", ck.KeyFile.Path)
		case !ck.KeyFile.IsSet() && !ck.IsPKCS12():
			v.errorf(ck.CertFile.Pos, "certfile", "certfile %q has no keyfile: add a `keyfile` line, or use a PKCS#12 bundle named *.p12 or *.pfx", ck.CertFile.Path)
		}
	}
	if len(t.Certs) > 0 && t.PSKHint != "" {
		v.errorf(l.Pos, "psk_hint", "%s has both certificates and psk_hint; one listener can use only one of them (as in Mosquitto): use two listeners", l)
	}
	if !t.Enabled() {
		if set := t.setOptions(); len(set) > 0 && !l.AutoCert {
			v.warnf(l.Pos, set[0], "ignored: TLS is not enabled on %s (it has no certfile or psk_hint), so these options do nothing: %s", l, strings.Join(set, ", "))
		}
		return
	}
	if t.RequireCertificate && !t.CAFile.IsSet() && !t.CAPath.IsSet() {
		v.errorf(l.Pos, "require_certificate", "%s requires client certificates but has neither cafile nor capath to verify them against", l)
	}
	if !t.RequireCertificate && len(t.Certs) > 0 {
		if len(t.CRLFiles) > 0 || len(t.CRLURLs) > 0 {
			v.warnf(l.Pos, "crlfile", "no effect: %s does not ask for client certificates (require_certificate is false), so its CRLs are not consulted", l)
		}
		if t.UseIdentityAsUsername || t.UseSubjectAsUsername {
			v.warnf(l.Pos, "use_identity_as_username", "%s takes the username from the client certificate but does not ask for one (require_certificate is false), so every client will be refused", l)
		}
	}
	if t.UseIdentityAsUsername && t.UseSubjectAsUsername {
		v.warnf(l.Pos, "use_subject_as_username", "use_identity_as_username takes priority over use_subject_as_username on %s, as in Mosquitto", l)
	}
	if t.CRLRefreshInterval > 0 && len(t.CRLURLs) == 0 {
		v.warnf(l.Pos, "crl_refresh_interval", "no effect: %s has no crl_url", l)
	}
}

// setOptions names the TLS options that are set, for the warning about a
// listener without TLS.
func (t *TLSOptions) setOptions() []string {
	var names []string
	add := func(set bool, name string) {
		if set {
			names = append(names, name)
		}
	}
	add(t.CAFile.IsSet(), "cafile")
	add(t.CAPath.IsSet(), "capath")
	add(len(t.CRLFiles) > 0, "crlfile")
	add(len(t.CRLURLs) > 0, "crl_url")
	add(t.Ciphers.IsSet(), "ciphers")
	add(t.Ciphers13.IsSet(), "ciphers_tls1.3")
	add(t.Version.IsSet(), "tls_version")
	add(t.RequireCertificate, "require_certificate")
	add(t.UseIdentityAsUsername, "use_identity_as_username")
	add(t.UseSubjectAsUsername, "use_subject_as_username")
	add(t.OCSPStapling, "ocsp_stapling")
	return names
}

// lockout warns about Mosquitto 2's most common surprise: a listener on
// which anonymous clients are refused and nothing else can authenticate.
func (v *validator) lockout(l *Listener) {
	c := v.c
	if c.AnonymousAllowed(l) {
		return
	}
	s := c.SecurityFor(l)
	t := &l.TLS
	if s.PasswordFile.IsSet() || (t.PSKHint != "" && s.PSKFile.IsSet()) ||
		(t.RequireCertificate && (t.UseIdentityAsUsername || t.UseSubjectAsUsername)) {
		return
	}
	v.warnf(l.Pos, "allow_anonymous", "no client can connect to %s: allow_anonymous is false (the Mosquitto 2 default when listeners are configured) and no password_file, psk_file or certificate identity is set", l)
}

// metrics checks that metrics_listener does not take a broker listener's
// address.
func (v *validator) metrics() {
	m := v.c.MetricsListener
	if !m.IsSet() {
		return
	}
	host, portText, err := net.SplitHostPort(m.Text)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		v.errorf(m.Pos, "metrics_listener", "value %q is not valid: expected ADDR:PORT", m.Text)
		return
	}
	for _, l := range v.c.Listeners {
		if l.UnixPath == "" && l.Port == port && (l.Bind == host || l.Bind == "" || host == "") {
			v.errorf(m.Pos, "metrics_listener", "%s uses the address of %s (%s)", m.Text, l, l.Pos)
		}
	}
}
