package tlsconf

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// Start runs the listener's background work until ctx is done or Close is
// called: watching its files, fetching crl_url, and the daily expiry and
// hourly CRL freshness checks. The expiry check also runs once at once.
func (s *Server) Start(ctx context.Context) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	s.checkExpiry()
	if s.state.Load().spec.l.TLS.OCSPStapling {
		s.wg.Add(1)
		go s.ocspLoop()
	}
	s.wg.Add(4)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.cancel()
		case <-s.ctx.Done():
		}
	}()
	// Each loop has its own resync signal, so that Apply reaches both.
	fileSync, urlSync := make(chan struct{}, 1), make(chan struct{}, 1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.resync:
				for _, ch := range []chan struct{}{fileSync, urlSync} {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			case <-s.ctx.Done():
				return
			}
		}
	}()
	go s.watchLoop(fileSync)
	go s.crlLoop(urlSync)
	s.wg.Add(1)
	go s.periodic()
}

// Close stops the background work and waits for it. Listeners made by
// NewListener are closed by their owner.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// maxReloadDelay bounds how long file events can postpone a reload: a
// file written several times a second (a log, a subscriber's output) must
// not hold back a new CRL indefinitely.
const maxReloadDelay = time.Second

// watchSet is what the watcher looks at: the directories to watch, the
// paths in them whose events count, and the directories (capath) in which
// every entry counts.
type watchSet struct {
	dirs  []string
	names map[string]bool
	trees map[string]bool
}

// relevant reports whether an event on path concerns a watched file.
func (ws *watchSet) relevant(path string) bool {
	p := filepath.Clean(path)
	return ws.names[p] || ws.trees[p] || ws.trees[filepath.Dir(p)]
}

// linkChain lists the paths whose change changes what path resolves to:
// path itself, every symbolic link met while resolving it (the file, or a
// directory on the way, such as Kubernetes' "..data"), and the final
// target. At most 40 links are followed, as the kernel does.
func linkChain(path string) []string {
	cur, err := filepath.Abs(path)
	if err != nil {
		return []string{filepath.Clean(path)}
	}
	out := []string{cur}
	for range 40 {
		// Find the first component of cur that is a symbolic link.
		parts := strings.Split(strings.TrimPrefix(cur, string(filepath.Separator)), string(filepath.Separator))
		link, rest := "", ""
		prefix := string(filepath.Separator)
		for k, part := range parts {
			prefix = filepath.Join(prefix, part)
			fi, err := os.Lstat(prefix)
			if err != nil {
				return out
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				link, rest = prefix, filepath.Join(parts[k+1:]...)
				break
			}
		}
		if link == "" {
			return out
		}
		target, err := os.Readlink(link)
		if err != nil {
			return out
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(link), target)
		}
		cur = filepath.Join(target, rest)
		out = append(out, link, cur)
	}
	return out
}

// watchSet lists what to watch for the current options: each file's own
// directory and, along its chain of symbolic links, each link's and the
// target's, so that both an atomic rename next to the file and a swap of
// a link (as Kubernetes and certbot do) are seen; only events on those
// names count, so a busy neighbour in the same directory (a log file,
// the broker's own) neither postpones nor triggers reloads.
func (s *Server) watchSet() *watchSet {
	t := &s.state.Load().spec.l.TLS
	ws := &watchSet{names: map[string]bool{}, trees: map[string]bool{}}
	dirs := map[string]bool{}
	add := func(p string) {
		if p == "" {
			return
		}
		for _, q := range linkChain(p) {
			ws.names[q] = true
			dirs[filepath.Dir(q)] = true
		}
	}
	for _, ck := range t.Certs {
		add(ck.CertFile.Path)
		add(ck.KeyFile.Path)
	}
	add(t.CAFile.Path)
	for _, f := range t.CRLFiles {
		add(f.Path)
	}
	if t.CAPath.IsSet() {
		add(t.CAPath.Path)
		for _, q := range linkChain(t.CAPath.Path) {
			ws.trees[q] = true
			dirs[q] = true
		}
		if r, err := filepath.EvalSymlinks(t.CAPath.Path); err == nil {
			ws.trees[r] = true
			dirs[r] = true
		}
	}
	for d := range dirs {
		ws.dirs = append(ws.dirs, d)
	}
	sort.Strings(ws.dirs)
	return ws
}

// watchLoop reloads once events on the watched files have been quiet for
// Debounce, or maxReloadDelay after the first one, whichever comes first;
// Reload then loads only what really changed.
func (s *Server) watchLoop(resync <-chan struct{}) {
	defer s.wg.Done()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		close(s.watchReady)
		s.log.Warn(fmt.Sprintf("%s: cannot watch the TLS files (%v); reload them with SIGHUP", s.name, err))
		return
	}
	defer w.Close()
	watched := map[string]bool{}
	var ws *watchSet
	sync := func() {
		ws = s.watchSet()
		want := map[string]bool{}
		for _, d := range ws.dirs {
			want[d] = true
			if watched[d] {
				continue
			}
			if err := w.Add(d); err != nil {
				s.warnOnce("watch "+d, fmt.Sprintf("%s: cannot watch %s (%v); changes there need SIGHUP", s.name, d, err))
				continue
			}
			watched[d] = true
		}
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
	}
	sync()
	close(s.watchReady)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the events not yet reloaded; zero when none
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !ws.relevant(ev.Name) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			timer.Reset(min(s.o.Debounce, max(0, first.Add(maxReloadDelay).Sub(now))))
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn(fmt.Sprintf("%s: file watching: %v", s.name, err))
		case <-timer.C:
			first = time.Time{}
			s.Reload()
			// A directory that was missing may exist now, and a symlink
			// may point somewhere new.
			sync()
		case <-resync:
			sync()
		case <-s.ctx.Done():
			return
		}
	}
}

// crlLoop fetches every crl_url on its interval, retrying failures sooner.
func (s *Server) crlLoop(resync <-chan struct{}) {
	defer s.wg.Done()
	due := map[string]time.Time{}
	fails := map[string]int{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-resync:
		case <-s.ctx.Done():
			return
		}
		sp := s.state.Load().spec
		now := time.Now()
		live := map[string]bool{}
		next := now.Add(24 * time.Hour)
		for _, v := range sp.l.TLS.CRLURLs {
			u := v.Text
			live[u] = true
			d, known := due[u]
			if !known {
				// Fetched once by New or Apply's caller; the first refresh
				// comes one interval later unless that fetch failed.
				d = now
				if it := s.state.Load().urlCRLs[u]; it != nil && !it.cached {
					d = now.Add(sp.crlRefresh)
				}
			}
			if !d.After(now) {
				if s.fetchCRL(v, time.Minute) {
					fails[u] = 0
					d = now.Add(sp.crlRefresh)
				} else {
					fails[u]++
					d = now.Add(min(sp.crlRefresh, 30*time.Second<<min(fails[u], 6)))
				}
			}
			due[u] = d
			if d.Before(next) {
				next = d
			}
		}
		for u := range due {
			if !live[u] {
				delete(due, u)
				delete(fails, u)
			}
		}
		timer.Reset(time.Until(next))
	}
}

// maxCRLSize bounds a fetched CRL; large CAs publish CRLs of a few MB.
const maxCRLSize = 64 << 20

// fetchCRL downloads one crl_url and installs it if it is new and valid.
// It reports whether the CRL in service is now current.
func (s *Server) fetchCRL(v config.Value, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	st := s.state.Load()
	old := st.urlCRLs[v.Text]
	// What a failure leaves in force, said plainly: before the first CRL
	// from this URL, nothing it would revoke is refused.
	keeping := "keeping the CRL in service"
	if old == nil {
		keeping = "NO CRL from this URL is in force yet: certificates it revokes are accepted until one is fetched"
	}
	data, err := s.download(ctx, v.Text)
	if err != nil {
		s.log.Error(fmt.Sprintf("%s: crl_url %s (%s): %v; %s; retrying", s.name, v.Text, v.Pos, err, keeping))
		return false
	}
	now := s.o.Now()
	if old != nil && old.sum == sha256.Sum256(data) {
		return true
	}
	it, err := newCRLItem("crl_url "+v.Text, v.Pos, data, now)
	if err == nil {
		err = st.verifyCRL(it)
	}
	if err != nil {
		s.log.Error(fmt.Sprintf("%s: crl_url %s (%s): %v; %s", s.name, v.Text, v.Pos, err, keeping))
		return false
	}
	if old != nil && old.issuer != nil && olderCRL(it, old) {
		s.log.Error(fmt.Sprintf("%s: crl_url %s served CRL number %s, older than the one in use (%s); ignored", s.name, v.Text, it.crl.Number, old.crl.Number))
		return false
	}
	s.log.Info(fmt.Sprintf("%s: loaded crl_url %s: %s", s.name, v.Text, it.describe()))
	s.checkCRL(it, now)
	s.setURLCRL(v.Text, it)
	s.saveCRL(v.Text, data)
	return true
}

// crlCachePath is where the last verified CRL of url is kept.
func (s *Server) crlCachePath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(s.o.CRLCacheDir, fmt.Sprintf("crl-%x.crl", sum[:12]))
}

// saveCRL keeps a verified CRL of url for the next start (CRLCacheDir).
func (s *Server) saveCRL(url string, data []byte) {
	if s.o.CRLCacheDir == "" {
		return
	}
	err := os.MkdirAll(s.o.CRLCacheDir, 0o755)
	if err == nil {
		err = pki.WriteFileAtomic(s.crlCachePath(url), data, 0o644)
	}
	if err != nil {
		s.warnOnce("crl cache "+url, fmt.Sprintf("%s: crl_url %s: cannot keep a copy in %s (%v): after a restart while the URL does not answer, its revocations would not be in force until it does",
			s.name, url, s.o.CRLCacheDir, err))
	}
}

// loadCachedCRLs puts in service, for each crl_url, the copy kept by the
// previous run, if it still verifies; the first fetch replaces it.
func (s *Server) loadCachedCRLs(st *state) {
	if s.o.CRLCacheDir == "" {
		return
	}
	now := s.o.Now()
	for _, v := range st.spec.l.TLS.CRLURLs {
		data, err := os.ReadFile(s.crlCachePath(v.Text))
		if err != nil {
			continue
		}
		it, err := newCRLItem("crl_url "+v.Text, v.Pos, data, now)
		if err == nil {
			err = st.verifyCRL(it)
		}
		if err != nil {
			s.log.Warn(fmt.Sprintf("%s: crl_url %s: the copy kept in %s is not used: %v", s.name, v.Text, s.o.CRLCacheDir, err))
			continue
		}
		it.cached = true
		st.urlCRLs[v.Text] = it
		s.log.Info(fmt.Sprintf("%s: crl_url %s: in force from the copy kept by the previous run (%s) until the URL answers", s.name, v.Text, it.describe()))
	}
}

func (s *Server) download(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCRLSize {
		return nil, fmt.Errorf("larger than %d MB", maxCRLSize>>20)
	}
	return data, nil
}

// FetchCRLs fetches every crl_url once, now, waiting at most 10 seconds
// for each. New does no network I/O; the broker calls this before
// accepting clients, so that a reachable CRL is in force from the first
// handshake. Failures are logged and retried by Start's loop: an
// unreachable CRL server delays the start, but does not prevent it.
func (s *Server) FetchCRLs() {
	for _, v := range s.state.Load().spec.l.TLS.CRLURLs {
		s.fetchCRL(v, 10*time.Second)
	}
}

// periodic runs the expiry check daily and the CRL freshness check hourly.
func (s *Server) periodic() {
	defer s.wg.Done()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-tick.C:
		case <-s.ctx.Done():
			return
		}
		now := s.o.Now()
		for _, c := range s.state.Load().allCRLs() {
			if c.stale(now) {
				s.warnStaleCRL(c, now)
			}
		}
		if n%24 == 0 {
			s.checkExpiry()
		}
	}
}

// Expiry is one configured certificate and when it expires.
type Expiry struct {
	Source   string // "certfile PATH", "cafile PATH" or "capath DIR"
	Subject  string
	NotAfter time.Time
}

// Expiries lists every certificate the listener uses: server certificates
// with their chains, and CAs, for metrics (seconds until expiry).
func (s *Server) Expiries() []Expiry {
	st := s.state.Load()
	var out []Expiry
	for _, c := range st.certs {
		for i, der := range c.cert.Certificate {
			x := c.leaf
			if i > 0 {
				var err error
				if x, err = x509.ParseCertificate(der); err != nil {
					continue
				}
			}
			out = append(out, Expiry{Source: c.name(), Subject: subject(x), NotAfter: x.NotAfter})
		}
	}
	for _, ca := range st.cas {
		for _, x := range ca.certs {
			out = append(out, Expiry{Source: ca.name(), Subject: subject(x), NotAfter: x.NotAfter})
		}
	}
	return out
}

// checkExpiry warns about every certificate that expires within
// ExpiryWarningDays, and reports those already expired as errors.
func (s *Server) checkExpiry() {
	now := s.o.Now()
	for _, e := range s.Expiries() {
		left := e.NotAfter.Sub(now)
		switch {
		case left <= 0:
			s.log.Error(fmt.Sprintf("%s: %s: certificate %s EXPIRED on %s", s.name, e.Source, e.Subject, e.NotAfter.UTC().Format("2006-01-02")))
		case s.o.ExpiryWarningDays > 0 && left < time.Duration(s.o.ExpiryWarningDays)*24*time.Hour:
			s.log.Warn(fmt.Sprintf("%s: %s: certificate %s expires in %d day(s), on %s (cert_expiry_warning_days %d)", s.name, e.Source, e.Subject,
				int(left.Hours()/24), e.NotAfter.UTC().Format("2006-01-02"), s.o.ExpiryWarningDays))
		}
	}
}
