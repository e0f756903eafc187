package broker

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// rereadFile is a file the broker opens again after it has dropped its
// privileges.
type rereadFile struct {
	option string // "password_file", "crlfile", "configuration file", …
	path   string
	pos    config.Pos // zero for the configuration files themselves
	dir    bool       // capath: the directory and every file in it
	list   bool       // include_dir: the directory's listing
	write  bool       // the log file, reopened for appending on SIGHUP
}

// rereadFiles lists what the broker reads again while it runs: the
// configuration (SIGHUP), the password, ACL and PSK files (SIGHUP), the
// TLS files of every listener (watched, and SIGHUP) and the log file
// (reopened on SIGHUP). The local CA of the no-configuration listener is
// left out: only the broker itself changes those files, at start.
func rereadFiles(cfg *config.Config) []rereadFile {
	var out []rereadFile
	seen := map[string]bool{}
	add := func(option string, f config.File, dir, write bool) {
		if !f.IsSet() || seen[option+"\x00"+f.Path] {
			return
		}
		seen[option+"\x00"+f.Path] = true
		out = append(out, rereadFile{option: option, path: f.Path, pos: f.Pos, dir: dir, write: write})
	}
	for i, f := range cfg.Files {
		add("configuration file", config.File{Path: f}, false, false)
		if i > 0 {
			// Included: its include_dir is listed again on SIGHUP.
			d := filepath.Dir(f)
			if !seen["include_dir\x00"+d] {
				seen["include_dir\x00"+d] = true
				out = append(out, rereadFile{option: "include_dir", path: d, list: true})
			}
		}
	}
	secs := []*config.Security{cfg.SecurityFor(nil)}
	for _, l := range cfg.Listeners {
		secs = append(secs, cfg.SecurityFor(l))
	}
	for _, sec := range secs {
		add("password_file", sec.PasswordFile, false, false)
		add("acl_file", sec.ACLFile, false, false)
		add("psk_file", sec.PSKFile, false, false)
	}
	for _, l := range cfg.Listeners {
		if l.AutoCert || !l.TLS.Enabled() {
			continue
		}
		t := &l.TLS
		for _, ck := range t.Certs {
			add("certfile", ck.CertFile, false, false)
			add("keyfile", ck.KeyFile, false, false)
		}
		add("cafile", t.CAFile, false, false)
		add("capath", t.CAPath, true, false)
		for _, f := range t.CRLFiles {
			add("crlfile", f, false, false)
		}
	}
	if cfg.Log.Dest.Has(config.LogFile) {
		add("log_dest file", cfg.Log.File, false, true)
	}
	return out
}

// checkRereadable refuses a start whose files the broker could not read
// again once it runs as du: a CRL, password or ACL file that only root can
// read would fail to reload, and the previous version — which may still
// let a revoked certificate or a removed user in — would stay in force.
// A log file this start created is given to du, as it is the broker's own.
func (s *server) checkRereadable(du *dropUser, out *logOutput) error {
	if out != nil && out.file != nil && out.created {
		if err := out.file.Chown(du.uid, du.gid); err != nil {
			return fmt.Errorf("log_dest file %s: cannot give it to user %q, which the broker runs as: %w", out.file.Name(), du.name, err)
		}
	}
	files := rereadFiles(s.cfg)
	var errs []error
	for i, err := range accessAs(du, files) {
		if err == nil {
			continue
		}
		f := files[i]
		where := f.option + " " + f.path
		if f.pos != (config.Pos{}) {
			where = fmt.Sprintf("%s: %s", f.pos, where)
		}
		verb, fix := "read", fmt.Sprintf("chgrp %s %s && chmod g+r %s", groupName(du), f.path, f.path)
		switch {
		case f.write:
			verb, fix = "write", fmt.Sprintf("chown %s %s", du.name, f.path)
		case f.dir || f.list:
			fix = fmt.Sprintf("chgrp -R %s %s && chmod -R g+rX %s", groupName(du), f.path, f.path)
		}
		errs = append(errs, fmt.Errorf("%s: user %q cannot %s it (%v); the broker runs as %q once started (the `user` option), and could not %s it again on SIGHUP or when it changes, which would leave the old version in force. Fix: %s, with g+x or o+x on the directories above it; or set `user root`",
			where, du.name, verb, err, du.name, verb, fix))
	}
	return errors.Join(errs...)
}

// groupName names du's primary group for a chgrp command line.
func groupName(du *dropUser) string {
	if g, err := user.LookupGroupId(strconv.Itoa(du.gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(du.gid)
}
