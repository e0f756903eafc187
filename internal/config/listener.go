package config

import (
	"net/url"
	"strconv"
	"strings"
)

// listenerLine starts a new listener: `listener PORT [ADDRESS]`, or
// `listener 0 PATH` for a unix socket. Per-listener options that follow
// apply to it.
func listenerLine(p *parser, ln *Line) {
	const expect = "a port 1..65535, optionally followed by a bind address, or 0 and a unix socket path"
	if len(ln.Args) == 0 {
		p.errorf(ln, "missing value: expected %s", expect)
		return
	}
	p.cfg.LocalOnly = false
	l := newListener()
	l.Pos = ln.Pos
	// Later per-listener options go to this listener even if its own line
	// is wrong, so that they are not misreported as default-listener ones.
	p.cur = l
	port, err := strconv.Atoi(ln.Args[0].Text)
	if err != nil || port < 0 || port > 65535 {
		p.errorf(ln, "port %q is not valid: expected %s", ln.Args[0].Text, expect)
		return
	}
	l.Port = port
	args := ln.Args[1:]
	// Mosquitto treats a '#' word after the port as the start of a comment.
	if len(args) > 0 && strings.HasPrefix(args[0].Text, "#") {
		args = nil
	}
	if len(args) > 1 {
		p.warn(ln, "ignored extra text %q after the address (Mosquitto has no end-of-line comments)", args[1].Text)
	}
	switch {
	case port == 0 && len(args) == 0:
		p.errorf(ln, "port 0 needs a unix socket path, e.g. `listener 0 /run/mamori/mqtt.sock`")
		return
	case port == 0:
		l.UnixPath = args[0].Text
	case len(args) > 0:
		l.Bind = args[0].Text
	}
	p.cfg.Listeners = append(p.cfg.Listeners, l)
}

// portLine sets the default listener's port wherever it appears, as in
// Mosquitto.
func portLine(p *parser, ln *Line) {
	p.cfg.LocalOnly = false
	n, ok := p.integer(ln, 1, 65535)
	if !ok {
		return
	}
	if p.portPos.IsValid() {
		p.warn(ln, "port given more than once (before at %s): the last one, %d, is used", p.portPos, n)
	}
	p.portPos = ln.Pos
	p.defUses = append(p.defUses, ln.Pos)
	p.def.Port = int(n)
}

// bindAddress sets the default listener's address wherever it appears.
func bindAddress(p *parser, ln *Line) {
	p.cfg.LocalOnly = false
	v, ok := p.str(ln, "an IP address or host name")
	if !ok || !p.setOnce(p.def, ln) {
		return
	}
	p.defUses = append(p.defUses, ln.Pos)
	p.def.Bind = v.Text
}

// certState pairs certfile and keyfile lines within one listener.
type certState struct {
	last            int    // index in TLS.Certs of the pair last named, -1 before any
	certScan        int    // pairs before this index all have a certfile
	keyScan         int    // pairs before this index have a keyfile or need none
	passwordSet     []bool // keyfile_password given for the pair
	defaultPassword *Token // keyfile_password given before any certfile/keyfile
}

func (p *parser) certState(l *Listener) *certState {
	st := p.certs[l]
	if st == nil {
		st = &certState{last: -1}
		p.certs[l] = st
	}
	return st
}

// certFile adds a server certificate. Repeated certfile/keyfile lines make
// SNI pairs: the n-th keyfile goes with the n-th certfile that needs one
// (a PKCS#12 bundle needs none), in whichever order they are written, so a
// single pair works in either order as in Mosquitto.
func certFile(p *parser, ln *Line) {
	l := p.listener(ln)
	v, ok := p.str(ln, "the path of a certificate (PEM) or PKCS#12 bundle (.p12/.pfx)")
	if !ok {
		return
	}
	st := p.certState(l)
	f := File{Path: v.Text, Pos: ln.Pos}
	certs := l.TLS.Certs
	for ; st.certScan < len(certs); st.certScan++ {
		if i := st.certScan; !certs[i].CertFile.IsSet() {
			certs[i].CertFile = f
			st.last = i
			return
		}
	}
	l.TLS.Certs = append(certs, CertKey{CertFile: f})
	st.passwordSet = append(st.passwordSet, false)
	st.last = len(l.TLS.Certs) - 1
}

func keyFile(p *parser, ln *Line) {
	l := p.listener(ln)
	v, ok := p.str(ln, "the path of a private key (PEM)")
	if !ok {
		return
	}
	st := p.certState(l)
	f := File{Path: v.Text, Pos: ln.Pos}
	certs := l.TLS.Certs
	for ; st.keyScan < len(certs); st.keyScan++ {
		// A pair without a keyfile always has a certfile here.
		if i := st.keyScan; !certs[i].KeyFile.IsSet() && !isPKCS12Name(certs[i].CertFile.Path) {
			certs[i].KeyFile = f
			st.last = i
			return
		}
	}
	l.TLS.Certs = append(certs, CertKey{KeyFile: f})
	st.passwordSet = append(st.passwordSet, false)
	st.last = len(l.TLS.Certs) - 1
}

// keyfilePassword applies to the certfile/keyfile pair named just before
// it; before any, to every pair of the listener that has none of its own.
func keyfilePassword(p *parser, ln *Line) {
	l := p.listener(ln)
	v, ok := p.str(ln, "the passphrase of the keyfile or PKCS#12 bundle")
	if !ok {
		return
	}
	st := p.certState(l)
	if st.last < 0 {
		if !p.setOnce(l, ln) {
			return
		}
		st.defaultPassword = &v
		return
	}
	if st.passwordSet[st.last] {
		p.errorf(ln, "given twice for the certificate %q", l.TLS.Certs[st.last].CertFile.Path)
		return
	}
	st.passwordSet[st.last] = true
	l.TLS.Certs[st.last].Password = v.Text
}

// finishCerts gives pairs without their own password the listener's.
func (p *parser) finishCerts(l *Listener) {
	st := p.certs[l]
	if st == nil || st.defaultPassword == nil {
		return
	}
	if len(l.TLS.Certs) == 0 {
		p.cfg.Warnings = append(p.cfg.Warnings, Warning{Pos: st.defaultPassword.Pos, Option: "keyfile_password",
			Msg: "no effect: the listener has no certfile or keyfile"})
	}
	for i := range l.TLS.Certs {
		if !st.passwordSet[i] {
			l.TLS.Certs[i].Password = st.defaultPassword.Text
		}
	}
}

// crlFile adds a CRL; several are allowed (one per issuing CA).
func crlFile(p *parser, ln *Line) {
	l := p.listener(ln)
	if v, ok := p.str(ln, "the path of a CRL (PEM or DER)"); ok {
		l.TLS.CRLFiles = append(l.TLS.CRLFiles, File{Path: v.Text, Pos: ln.Pos})
	}
}

// crlURL adds a CRL fetched over HTTP(S); several are allowed.
func crlURL(p *parser, ln *Line) {
	l := p.listener(ln)
	t, ok := p.arg(ln, "an http:// or https:// URL")
	if !ok {
		return
	}
	u, err := url.Parse(t.Text)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errorf(ln, "value %q is not valid: expected an http:// or https:// URL", t.Text)
		return
	}
	l.TLS.CRLURLs = append(l.TLS.CRLURLs, Value{Text: t.Text, Pos: ln.Pos})
}
