package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Load reads the configuration file at path, and the files its include_dir
// options name, and returns the checked configuration. On failure the error
// is an [Errors] listing every problem found, each naming file:line.
//
// Relative include_dir paths are resolved against the directory of path.
// Mosquitto resolves them against its working directory, which for a
// service is usually "/"; a relative include_dir that works with Mosquitto
// in practice was written relative to the configuration's own directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: path}, Msg: "cannot read the configuration file: " + errText(err), Err: err}}
	}
	return parse(path, data, osFS{})
}

// Parse reads a configuration from data; name is used in positions.
// include_dir needs a file system and is reported as an error: use [Load]
// for files that include others.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

// fileSystem is what include_dir needs; tests and [Parse] can do without.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// parser applies lines to a Config. It keeps Mosquitto's scoping state:
// which listener options currently apply to, whether a bridge or plugin
// block is open, and where each once-only option was first set.
type parser struct {
	cfg  *Config
	errs Errors
	fsys fileSystem
	main string

	// def is the default listener, configured by port, bind_address and
	// listener options before the first `listener` line of a file. It is
	// added to cfg.Listeners at the end only if something configures it.
	def     *Listener
	defUses []Pos // lines that configured def, for its Pos and for warnings
	portPos Pos   // the last `port` line

	// Per-file state, as in Mosquitto where each file starts again with the
	// default listener and no open bridge or plugin.
	cur    *Listener
	bridge *bridgeState // the open `connection` block, if any
	plugin bool

	logDestSet, logTypeSet bool // the first log_dest/log_type replaces the default

	once          map[onceKey]Pos
	firstSecurity Pos // first authentication option, for per_listener_settings
	certs         map[*Listener]*certState
}

// onceKey identifies an option that may be set once per scope (a listener,
// a Security or the whole configuration).
type onceKey struct {
	scope any
	name  string
}

func parse(name string, data []byte, fsys fileSystem) (*Config, error) {
	p := &parser{
		cfg:   newConfig(),
		fsys:  fsys,
		main:  name,
		def:   newListener(),
		once:  map[onceKey]Pos{},
		certs: map[*Listener]*certState{},
	}
	p.def.Default = true
	p.file(name, data, 0)
	p.finish()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	// Cross-option checks run only on a configuration that parsed cleanly:
	// on a broken one they would mostly repeat the errors above.
	warnings, err := Validate(p.cfg)
	p.cfg.Warnings = append(p.cfg.Warnings, warnings...)
	if err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// file applies one file's lines. level is 0 for the main file.
func (p *parser) file(name string, data []byte, level int) {
	p.cfg.Files = append(p.cfg.Files, name)
	lines, errs := Lex(name, data)
	p.errs = append(p.errs, errs...)
	p.cur, p.bridge, p.plugin = p.def, nil, false
	for i := range lines {
		p.line(&lines[i], level)
	}
	p.endBridge()
}

func (p *parser) line(ln *Line, level int) {
	name := ln.Name
	if name == "include_dir" {
		p.includeDir(ln, level)
		return
	}
	if opt, ok := options[name]; ok {
		opt(p, ln)
		return
	}
	switch {
	case strings.HasPrefix(name, "auth_opt_"), strings.HasPrefix(name, "plugin_opt_"),
		name == "auth_plugin_deny_special_chars":
		p.pluginOption(ln)
	case isBridgeOption(name):
		p.bridgeOption(ln)
	default:
		msg := fmt.Sprintf("unknown option %q", name)
		if s := suggest(name); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		p.errs = append(p.errs, &Error{Pos: ln.Pos, Msg: msg})
	}
}

// includeDir reads every *.conf file of a directory in Mosquitto's order.
func (p *parser) includeDir(ln *Line, level int) {
	v, ok := p.str(ln, "a directory")
	if !ok {
		return
	}
	if level > 0 {
		p.warn(ln, "ignored: include_dir is only read from the main configuration file, as in Mosquitto")
		return
	}
	if p.fsys == nil {
		p.errorf(ln, "include_dir %q cannot be read here: the configuration was not loaded from a file", v.Text)
		return
	}
	dir := v.Text
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(p.main), dir)
	}
	entries, err := p.fsys.ReadDir(dir)
	if err != nil {
		p.errs = append(p.errs, &Error{Pos: ln.Pos, Option: ln.Name, Err: err,
			Msg: fmt.Sprintf("cannot read directory %q: %s", dir, errText(err))})
		return
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		names = append(names, e.Name())
	}
	slices.SortFunc(names, compareIncludeNames)
	mainAbs, _ := filepath.Abs(p.main)
	cur, bridge, plugin := p.cur, p.bridge, p.plugin
	for _, n := range names {
		path := filepath.Join(dir, n)
		if abs, _ := filepath.Abs(path); abs == mainAbs {
			p.errorf(ln, "directory %q contains the main configuration file %q; Mosquitto forbids this because the file would be read twice", dir, n)
			continue
		}
		data, err := p.fsys.ReadFile(path)
		if err != nil {
			p.errs = append(p.errs, &Error{Pos: ln.Pos, Option: ln.Name, Err: err,
				Msg: fmt.Sprintf("cannot read %q: %s", path, errText(err))})
			continue
		}
		p.file(path, data, level+1)
	}
	// Back in the main file: its current listener, bridge and plugin
	// blocks continue where they were.
	p.cur, p.bridge, p.plugin = cur, bridge, plugin
}

// compareIncludeNames orders file names as Mosquitto documents for
// include_dir: case-sensitive alphabetical, with the upper case of a letter
// before its lower case (00.conf, 01.conf, A.conf, a.conf, B.conf, b.conf).
func compareIncludeNames(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		la, lb := unicode.ToLower(ra[i]), unicode.ToLower(rb[i])
		if la != lb {
			return int(la) - int(lb)
		}
		if ra[i] != rb[i] {
			return int(ra[i]) - int(rb[i]) // upper case sorts first
		}
	}
	return len(ra) - len(rb)
}

// finish adds the default listener when something configured it, applies
// local-only mode, and fills per-listener defaults.
func (p *parser) finish() {
	c := p.cfg
	def := p.def
	started := p.portPos.IsValid() || def.Bind != "" || p.defConfigured()
	if len(p.defUses) > 0 {
		def.Pos = p.defUses[0]
	}
	switch {
	case c.LocalOnly:
		if p.defConfigured() || p.defOtherwiseSet() {
			c.Warnings = append(c.Warnings, Warning{Pos: p.defUses[0],
				Msg: "listener options before any `listener` line are ignored: no `listener`, `port` or `bind_address` is configured, so the broker runs in local-only mode on 127.0.0.1:1883 as Mosquitto 2 does; add a `listener` line to use them"})
		}
		local := localListener(DefaultPort)
		local.Pos = Pos{File: p.main}
		c.Listeners = append(c.Listeners, local)
	case started:
		if def.Port == 0 {
			def.Port = DefaultPort
		}
		if !p.portPos.IsValid() && def.Bind == "" && len(c.Listeners) > 0 {
			c.Warnings = append(c.Warnings, Warning{Pos: def.Pos,
				Msg: fmt.Sprintf("this option configures the default listener, so it is started on port %d as Mosquitto does; move the option below a `listener` line if it was meant for that listener", def.Port)})
		}
		c.Listeners = append(c.Listeners, def)
	case p.defOtherwiseSet():
		c.Warnings = append(c.Warnings, Warning{Pos: p.defUses[0],
			Msg: "options before the first `listener` line configure the default listener, which is not started (no `port` or `bind_address`); move them below a `listener` line"})
	}
	for _, l := range c.Listeners {
		p.finishCerts(l)
		if len(l.TLS.CRLURLs) > 0 && l.TLS.CRLRefreshInterval == 0 {
			l.TLS.CRLRefreshInterval = DefaultCRLRefreshInterval
		}
		if c.PerListenerSettings {
			if l.Security == nil {
				s := defaultSecurity()
				l.Security = &s
			}
		} else {
			l.Security = nil
		}
	}
}

// defConfigured reports whether options before the first listener start
// the default listener; the list follows Mosquitto 2, which starts it when
// any of these differs from its default.
func (p *parser) defConfigured() bool {
	d := p.def
	t := &d.TLS
	if d.BindInterface != "" || d.UseUsernameAsClientID || d.MaxConnections != -1 ||
		d.MaxQoS != 2 || d.MountPoint != "" || d.Protocol != ProtocolMQTT || d.SocketDomain != SocketDomainAny {
		return true
	}
	if t.CAFile.IsSet() || t.CAPath.IsSet() || len(t.Certs) > 0 || p.certs[d] != nil ||
		t.Engine != "" || (t.Keyform != "" && t.Keyform != "pem") || t.Ciphers.IsSet() ||
		t.Ciphers13.IsSet() || t.DHParamFile.IsSet() || t.PSKHint != "" || t.RequireCertificate ||
		len(t.CRLFiles) > 0 || len(t.CRLURLs) > 0 || t.OCSPStapling ||
		t.UseIdentityAsUsername || t.UseSubjectAsUsername {
		return true
	}
	if s := d.Security; s != nil && p.cfg.PerListenerSettings {
		return s.PasswordFile.IsSet() || s.PSKFile.IsSet() || !s.AllowZeroLengthClientID
	}
	return false
}

// defOtherwiseSet reports whether options that do not start the default
// listener by themselves were given a value for it; they are lost unless
// it starts, which deserves a warning.
func (p *parser) defOtherwiseSet() bool {
	d := p.def
	if d.HTTPDir.IsSet() || d.MaxTopicAlias != DefaultMaxTopicAlias || d.TLS.Version.IsSet() {
		return true
	}
	if st := p.certs[d]; st != nil && st.defaultPassword != nil {
		return true
	}
	s := d.Security
	return s != nil && (s.ACLFile.IsSet() || s.AllowAnonymous != nil || s.AutoIDPrefix != DefaultAutoIDPrefix)
}

// listener returns the listener that per-listener options apply to now,
// noting when that is the default listener.
func (p *parser) listener(ln *Line) *Listener {
	if p.cur == p.def {
		p.defUses = append(p.defUses, ln.Pos)
	}
	return p.cur
}

// security returns where an authentication option goes: the current
// listener with per_listener_settings, the global options otherwise.
func (p *parser) security(ln *Line) *Security {
	if !p.firstSecurity.IsValid() {
		p.firstSecurity = ln.Pos
	}
	if !p.cfg.PerListenerSettings {
		return &p.cfg.Security
	}
	l := p.listener(ln)
	if l.Security == nil {
		s := defaultSecurity()
		l.Security = &s
	}
	return l.Security
}

func (p *parser) errorf(ln *Line, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: ln.Pos, Option: ln.Name, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warn(ln *Line, format string, args ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Warning{Pos: ln.Pos, Option: ln.Name, Msg: fmt.Sprintf(format, args...)})
}

// setOnce records that an option was set in scope; a second time is an
// error, as Mosquitto refuses duplicate string options.
func (p *parser) setOnce(scope any, ln *Line) bool {
	k := onceKey{scope, ln.Name}
	if first, ok := p.once[k]; ok {
		p.errorf(ln, "set twice (first at %s); give it once", first)
		return false
	}
	p.once[k] = ln.Pos
	return true
}

// arg returns the single value of an option. Mosquitto ignores words after
// it; mamori does too, but says so, because they are usually an attempted
// end-of-line comment.
func (p *parser) arg(ln *Line, expect string) (Token, bool) {
	if len(ln.Args) == 0 {
		p.errorf(ln, "missing value: expected %s", expect)
		return Token{}, false
	}
	if len(ln.Args) > 1 {
		p.warn(ln, "ignored extra text %q after the value (Mosquitto has no end-of-line comments)",
			strings.TrimLeft(ln.Rest.Text[len(ln.Args[0].Text):], " \t"))
	}
	return ln.Args[0], true
}

// str returns the value of a string option: the rest of the line, which may
// contain spaces, as Mosquitto reads it.
func (p *parser) str(ln *Line, expect string) (Token, bool) {
	if ln.Rest.Text == "" {
		p.errorf(ln, "missing value: expected %s", expect)
		return Token{}, false
	}
	if strings.Contains(ln.Rest.Text, " #") || strings.Contains(ln.Rest.Text, "\t#") {
		p.warn(ln, "the value %q contains \" #\": Mosquitto has no end-of-line comments, so it is part of the value", ln.Rest.Text)
	}
	return ln.Rest, true
}

// boolean parses true/false. Mosquitto also accepts 1/0, and so does mamori
// so that every file Mosquitto reads still loads.
func (p *parser) boolean(ln *Line) (bool, bool) {
	t, ok := p.arg(ln, "true or false")
	if !ok {
		return false, false
	}
	switch t.Text {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	p.errorf(ln, "value %q is not valid: expected true or false", t.Text)
	return false, false
}

// integer parses a whole number in min..max.
func (p *parser) integer(ln *Line, lo, hi int64) (int64, bool) {
	t, ok := p.arg(ln, fmt.Sprintf("a number %d..%d", lo, hi))
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(t.Text, 10, 64)
	if err != nil {
		p.errorf(ln, "value %q is not a whole number: expected %d..%d", t.Text, lo, hi)
		return 0, false
	}
	if n < lo || n > hi {
		p.errorf(ln, "value %q is out of range %d..%d", t.Text, lo, hi)
		return 0, false
	}
	return n, true
}

// keyword parses one of a fixed set of words.
func (p *parser) keyword(ln *Line, words ...string) (string, bool) {
	expect := strings.Join(words, " or ")
	t, ok := p.arg(ln, expect)
	if !ok {
		return "", false
	}
	if slices.Contains(words, t.Text) {
		return t.Text, true
	}
	p.errorf(ln, "value %q is not valid: expected %s", t.Text, expect)
	return "", false
}

// errText is err's message without the operation and path that os errors
// repeat, since the caller's message already names them.
func errText(err error) string {
	var pe *fs.PathError
	if e, ok := err.(*fs.PathError); ok {
		pe = e
	}
	if pe != nil {
		return pe.Err.Error()
	}
	return err.Error()
}
