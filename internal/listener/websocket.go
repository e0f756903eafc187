package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Subprotocols are the WebSocket subprotocols accepted for MQTT: "mqtt"
// (MQTT 3.1.1 and 5, used by MQTT.js, Paho and mosquitto's clients) and
// "mqttv3.1" (older MQTT 3.1 clients). A client offering none is accepted
// too, as Mosquitto does.
var Subprotocols = []string{"mqtt", "mqttv3.1"}

// DefaultIdleTimeout is how long an HTTP connection may stay idle between
// plain requests: as long as a client may take to send its headers.
const DefaultIdleTimeout = 10 * time.Second

// WebSocket serves MQTT over WebSockets: every HTTP request that asks for a
// WebSocket upgrade, on any path (MQTT.js uses /mqtt, others use /), becomes
// one MQTT connection carried in binary messages. Other requests get files
// from HTTPDir when it is set, 404 otherwise.
type WebSocket struct {
	// Serve runs MQTT on an accepted connection and returns when the
	// connection has ended (broker.(*Broker).ServeConn).
	Serve func(nc net.Conn)
	// MaxConnections refuses upgrades beyond this many open WebSocket
	// connections with HTTP 503; zero or negative means unlimited.
	MaxConnections int
	// HTTPDir, when set, is served for plain HTTP requests (http_dir).
	HTTPDir string
	// MaxHeaderBytes bounds the HTTP request headers
	// (websockets_headers_size); zero means 16 KiB.
	MaxHeaderBytes int
	// IdleTimeout closes an HTTP connection kept alive after a plain
	// request (a file, a 404) once it has been idle this long; zero means
	// DefaultIdleTimeout. Without it, each such connection held a goroutine
	// and its buffers for as long as the client liked, with no limit on
	// their number. Upgraded connections are the broker's and unaffected.
	IdleTimeout time.Duration
	// TLS, when set, makes this a wss listener.
	TLS *tls.Config
	// WrapTLS, when set, makes this a wss listener through a listener that
	// completes (and logs) TLS handshakes itself; it takes precedence over
	// TLS and must offer ALPN http/1.1.
	WrapTLS func(net.Listener) net.Listener
	// Log receives WebSocket events with the attribute log_type=websockets
	// (Mosquitto's `log_type websockets`); nil discards them.
	Log *slog.Logger

	active atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	srvs   []*http.Server
}

// ServeListener accepts HTTP connections on ln until Close. It returns nil
// after Close.
func (w *WebSocket) ServeListener(ln net.Listener) error {
	log := w.logger()
	switch {
	case w.WrapTLS != nil:
		ln = w.WrapTLS(ln)
	case w.TLS != nil:
		ln = tls.NewListener(ln, wssConfig(w.TLS))
	}
	maxHdr := w.MaxHeaderBytes
	if maxHdr <= 0 {
		maxHdr = 16 << 10
	}
	idle := w.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxHdr,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	w.mu.Lock()
	w.srvs = append(w.srvs, srv)
	w.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// wssConfig adapts a listener's TLS configuration to HTTP: the ALPN
// protocol is http/1.1, not mqtt, or a browser offering h2 and http/1.1
// would be refused the handshake. A GetConfigForClient hook (certificates
// chosen per handshake) is kept and its result adapted the same way.
func wssConfig(tc *tls.Config) *tls.Config {
	c := tc.Clone()
	c.NextProtos = []string{"http/1.1"}
	if get := tc.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			cc, err := get(hi)
			if err != nil || cc == nil {
				return cc, err
			}
			cc = cc.Clone()
			cc.NextProtos = []string{"http/1.1"}
			return cc, nil
		}
	}
	return c
}

// Close stops accepting connections. WebSocket connections already running
// MQTT are left to the broker, which says goodbye to them when it closes;
// Wait then waits for them.
func (w *WebSocket) Close() error {
	w.mu.Lock()
	srvs := w.srvs
	w.srvs = nil
	w.mu.Unlock()
	var errs []error
	for _, s := range srvs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Wait waits until every MQTT connection served over WebSockets has ended.
func (w *WebSocket) Wait() { w.wg.Wait() }

// Active is the number of open WebSocket connections.
func (w *WebSocket) Active() int64 { return w.active.Load() }

func (w *WebSocket) logger() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log.With("log_type", "websockets")
}

// ServeHTTP implements http.Handler.
func (w *WebSocket) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		w.serveFile(rw, r)
		return
	}
	log := w.logger()
	if n := w.active.Add(1); w.MaxConnections > 0 && n > int64(w.MaxConnections) {
		w.active.Add(-1)
		log.Info("WebSocket connection refused: max_connections reached", "remote", r.RemoteAddr)
		http.Error(rw, "too many connections", http.StatusServiceUnavailable)
		return
	}
	defer w.active.Add(-1)
	w.wg.Add(1)
	defer w.wg.Done()
	ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols: Subprotocols,
		// MQTT authenticates in CONNECT, never with cookies or other
		// credentials a browser attaches by itself, so a page from another
		// origin gains nothing a direct connection would not give it.
		// Mosquitto does not check Origin either, and MQTT.js in browsers
		// is routinely served from a different host than the broker.
		InsecureSkipVerify: true,
	})
	if err != nil {
		log.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	log.Debug("WebSocket connection accepted", "remote", r.RemoteAddr, "path", r.URL.Path, "subprotocol", ws.Subprotocol())
	// The request's context ends when this handler returns; the MQTT
	// connection is closed by the broker, which owns it from here.
	nc := websocket.NetConn(context.WithoutCancel(r.Context()), ws, websocket.MessageBinary)
	if r.TLS != nil {
		// The broker reads the client certificate (identity, revocation)
		// from the connection it serves, as on a TLS TCP listener.
		nc = &tlsNetConn{Conn: nc, state: *r.TLS}
	}
	w.Serve(nc)
}

// tlsNetConn is a WebSocket connection that reports the TLS state of the
// HTTPS connection it runs on.
type tlsNetConn struct {
	net.Conn
	state tls.ConnectionState
}

// ConnectionState returns the TLS state of the underlying HTTPS connection.
func (c *tlsNetConn) ConnectionState() tls.ConnectionState { return c.state }

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// serveFile answers a plain HTTP request from HTTPDir. Directory listings
// are not produced (a directory without index.html is 404), and only GET
// and HEAD are allowed: http_dir is for a small web client page, not a file
// browser.
func (w *WebSocket) serveFile(rw http.ResponseWriter, r *http.Request) {
	if w.HTTPDir == "" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	http.FileServerFS(noListFS{os.DirFS(w.HTTPDir)}).ServeHTTP(rw, r)
}

// noListFS hides directories that have no index.html, so FileServer never
// renders a listing.
type noListFS struct{ fs.FS }

func (n noListFS) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		idx, err := n.FS.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, fs.ErrNotExist
		}
		idx.Close()
	}
	return f, nil
}
