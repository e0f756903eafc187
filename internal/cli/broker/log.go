package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"log/syslog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// logTypeKey is the record attribute that names a Mosquitto log type when
// the slog level alone does not say it: "information", "subscribe",
// "unsubscribe" or "websockets" (the WebSocket listener uses it). Without
// it, levels map to Mosquitto's types: Error → error, Warn → warning,
// Info → notice, Debug → debug. Info maps to notice because the broker's
// Info lines (connections, listeners, start and stop) are the ones Mosquitto
// logs at notice.
const logTypeKey = "log_type"

// attrLogTypes are the types a record can be given with logTypeKey.
var attrLogTypes = map[string]config.LogType{
	"debug": config.LogDebug, "error": config.LogError, "warning": config.LogWarning,
	"notice": config.LogNotice, "information": config.LogInformation,
	"subscribe": config.LogSubscribe, "unsubscribe": config.LogUnsubscribe,
	"websockets": config.LogWebsockets,
}

func levelType(l slog.Level) config.LogType {
	switch {
	case l >= slog.LevelError:
		return config.LogError
	case l >= slog.LevelWarn:
		return config.LogWarning
	case l >= slog.LevelInfo:
		return config.LogNotice
	}
	return config.LogDebug
}

// logOutput is one set of log settings with its open destinations. A
// reload builds a new one and swaps it in whole.
type logOutput struct {
	types   config.LogType
	stamp   bool
	format  string // strftime format; empty: Unix seconds
	writers []io.Writer
	file    *os.File
	created bool // file did not exist before this output opened it
	sys     *syslog.Writer
	topic   bool
}

// openLogOutput opens the destinations that l names. Warnings are
// destinations that could not be opened but need not stop the broker
// (syslog without a syslog daemon); an error (a log file that cannot be
// opened) does.
func openLogOutput(l config.Log, verbose bool, stdout, stderr io.Writer) (*logOutput, []string, error) {
	o := &logOutput{types: l.Types, stamp: l.Timestamp, format: l.TimestampFormat, topic: l.Dest.Has(config.LogTopic)}
	if verbose {
		// -v: "enable all logging types", overriding log_type.
		o.types = config.LogAll
	}
	if l.Dest.Has(config.LogStdout) {
		o.writers = append(o.writers, stdout)
	}
	if l.Dest.Has(config.LogStderr) {
		o.writers = append(o.writers, stderr)
	}
	var warns []string
	if l.Dest.Has(config.LogFile) && l.File.IsSet() {
		// Log lines name clients and users: readable by the broker's user
		// only. O_APPEND keeps lines whole when logrotate's copytruncate or
		// another writer shares the file.
		_, statErr := os.Lstat(l.File.Path)
		f, err := os.OpenFile(l.File.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: log_dest file: %w", l.File.Pos, err)
		}
		o.file, o.created = f, errors.Is(statErr, fs.ErrNotExist)
		o.writers = append(o.writers, f)
	}
	if l.Dest.Has(config.LogSyslog) {
		fac := syslog.LOG_DAEMON
		if l.Facility >= 0 {
			fac = syslog.LOG_LOCAL0 + syslog.Priority(l.Facility<<3)
		}
		w, err := syslog.New(fac|syslog.LOG_INFO, "mamori")
		if err != nil {
			warns = append(warns, fmt.Sprintf("Warning: log_dest syslog: %v; not logging to syslog", err))
		} else {
			o.sys = w
		}
	}
	if l.Dest.Has(config.LogDLT) {
		warns = append(warns, "Warning: log_dest dlt: mamori has no DLT support; not logging there")
	}
	return o, warns, nil
}

func (o *logOutput) close() {
	if o.file != nil {
		o.file.Close()
	}
	if o.sys != nil {
		o.sys.Close()
	}
}

// logSink is shared by a handler and every handler derived from it with
// WithAttrs, so that a reload reaches all loggers at once.
type logSink struct {
	types atomic.Uint32 // the current output's types, for Enabled

	mu  sync.Mutex // guards out and serializes writes so lines never interleave
	out *logOutput

	// pub queues lines for `log_dest topic`; nil until the broker exists.
	pub     atomic.Pointer[chan topicLine]
	dropped atomic.Uint64
}

type topicLine struct {
	topic   string
	payload []byte
}

func newLogSink(o *logOutput) *logSink {
	s := &logSink{out: o}
	s.types.Store(uint32(o.types))
	return s
}

// swap installs o and closes the output it replaces.
func (s *logSink) swap(o *logOutput) {
	s.mu.Lock()
	old := s.out
	s.out = o
	s.types.Store(uint32(o.types))
	s.mu.Unlock()
	old.close()
}

// close closes the current output's files.
func (s *logSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.close()
}

// publishTo starts a goroutine that publishes log lines to $SYS/broker/log/…
// with publish; it runs until ctx ends. Lines are queued rather than
// published by the logging goroutine because a log call may come from a
// place that holds broker locks which routing takes too. When the queue is
// full, lines are dropped for the topic (never for the other destinations).
func (s *logSink) publishTo(ctx context.Context, publish func(topic string, payload []byte)) (wait func()) {
	ch := make(chan topicLine, 1024)
	s.pub.Store(&ch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case l := <-ch:
				publish(l.topic, l.payload)
			}
		}
	}()
	return func() {
		s.pub.Store(nil)
		<-done
	}
}

// topicFor is the topic Mosquitto publishes a line of type t to.
func topicFor(t config.LogType) string {
	switch t {
	case config.LogError:
		return "$SYS/broker/log/E"
	case config.LogWarning:
		return "$SYS/broker/log/W"
	case config.LogNotice:
		return "$SYS/broker/log/N"
	case config.LogInformation:
		return "$SYS/broker/log/I"
	case config.LogSubscribe:
		return "$SYS/broker/log/M/subscribe"
	case config.LogUnsubscribe:
		return "$SYS/broker/log/M/unsubscribe"
	case config.LogWebsockets:
		return "$SYS/broker/log/WS"
	}
	return "$SYS/broker/log/D"
}

// lineHandler is an slog.Handler that writes Mosquitto-style lines
// ("1732541234: message key=value") to the destinations of log_dest,
// filtered by log_type.
type lineHandler struct {
	sink  *logSink
	attrs []slog.Attr
	typ   config.LogType // from a log_type attribute given to WithAttrs; 0: by level
}

var _ slog.Handler = (*lineHandler)(nil)

// Enabled reports whether a record at level l may be written: its level's
// own type is enabled, or one of the types a log_type attribute can select.
func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool {
	types := config.LogType(h.sink.types.Load())
	if h.typ != 0 {
		return types&h.typ != 0
	}
	const byAttr = config.LogInformation | config.LogSubscribe | config.LogUnsubscribe | config.LogWebsockets
	return types&(levelType(l)|byAttr) != 0
}

// Handle implements slog.Handler.
func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	typ := h.typ
	var msg []byte
	msg = append(msg, r.Message...)
	add := func(a slog.Attr) bool {
		if a.Key == logTypeKey {
			if t, ok := attrLogTypes[a.Value.String()]; ok {
				typ = t
			}
			return true
		}
		msg = append(msg, ' ')
		msg = append(msg, a.Key...)
		msg = append(msg, '=')
		msg = strconv.AppendQuote(msg, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if typ == 0 {
		typ = levelType(r.Level)
	}

	s := h.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.out
	if o.types&typ == 0 {
		return nil
	}
	var errs []error
	if len(o.writers) > 0 {
		var line []byte
		if o.stamp {
			t := r.Time
			if t.IsZero() {
				t = time.Now()
			}
			if o.format != "" {
				line = appendStrftime(line, o.format, t)
			} else {
				line = strconv.AppendInt(line, t.Unix(), 10)
			}
			line = append(line, ": "...)
		}
		line = append(line, msg...)
		line = append(line, '\n')
		for _, w := range o.writers {
			if _, err := w.Write(line); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if o.sys != nil {
		errs = append(errs, writeSyslog(o.sys, typ, string(msg)))
	}
	// Debug lines never go to the topic, as in Mosquitto: publishing may
	// itself log at debug, and a subscriber to $SYS/broker/log/# would
	// otherwise receive an endless stream.
	if o.topic && typ != config.LogDebug {
		if p := s.pub.Load(); p != nil {
			select {
			case *p <- topicLine{topicFor(typ), msg}:
			default:
				s.dropped.Add(1)
			}
		}
	}
	return errors.Join(errs...)
}

func writeSyslog(w *syslog.Writer, t config.LogType, m string) error {
	switch t {
	case config.LogError:
		return w.Err(m)
	case config.LogWarning:
		return w.Warning(m)
	case config.LogNotice, config.LogSubscribe, config.LogUnsubscribe:
		return w.Notice(m)
	case config.LogInformation:
		return w.Info(m)
	}
	return w.Debug(m)
}

// WithAttrs implements slog.Handler. A log_type attribute fixes the type
// of every record of the derived logger.
func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		if a.Key == logTypeKey {
			if t, ok := attrLogTypes[a.Value.String()]; ok {
				n.typ = t
			}
			continue
		}
		n.attrs = append(n.attrs, a)
	}
	return &n
}

// WithGroup implements slog.Handler; groups are flattened, as the line
// format has no place for them.
func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// appendStrftime formats t with the strftime conversions that
// log_timestamp_format uses in practice (Mosquitto passes the format to the
// C library). Unknown conversions are copied as written.
func appendStrftime(b []byte, format string, t time.Time) []byte {
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b = append(b, c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			b = strconv.AppendInt(b, int64(t.Year()), 10)
		case 'y':
			b = appendPad(b, t.Year()%100, 2, '0')
		case 'C':
			b = appendPad(b, t.Year()/100, 2, '0')
		case 'm':
			b = appendPad(b, int(t.Month()), 2, '0')
		case 'd':
			b = appendPad(b, t.Day(), 2, '0')
		case 'e':
			b = appendPad(b, t.Day(), 2, ' ')
		case 'H':
			b = appendPad(b, t.Hour(), 2, '0')
		case 'I':
			b = appendPad(b, (t.Hour()+11)%12+1, 2, '0')
		case 'M':
			b = appendPad(b, t.Minute(), 2, '0')
		case 'S':
			b = appendPad(b, t.Second(), 2, '0')
		case 'j':
			b = appendPad(b, t.YearDay(), 3, '0')
		case 'p':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'a':
			b = append(b, t.Weekday().String()[:3]...)
		case 'A':
			b = append(b, t.Weekday().String()...)
		case 'b', 'h':
			b = append(b, t.Month().String()[:3]...)
		case 'B':
			b = append(b, t.Month().String()...)
		case 'u':
			b = strconv.AppendInt(b, int64((int(t.Weekday())+6)%7+1), 10)
		case 'w':
			b = strconv.AppendInt(b, int64(t.Weekday()), 10)
		case 's':
			b = strconv.AppendInt(b, t.Unix(), 10)
		case 'z':
			b = t.AppendFormat(b, "-0700")
		case 'Z':
			b = t.AppendFormat(b, "MST")
		case 'F':
			b = t.AppendFormat(b, "2006-01-02")
		case 'T':
			b = t.AppendFormat(b, "15:04:05")
		case 'R':
			b = t.AppendFormat(b, "15:04")
		case 'D':
			b = t.AppendFormat(b, "01/02/06")
		case 'c':
			b = t.AppendFormat(b, "Mon Jan _2 15:04:05 2006")
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%', format[i])
		}
	}
	return b
}

func appendPad(b []byte, v, width int, pad byte) []byte {
	s := strconv.Itoa(v)
	for n := len(s); n < width; n++ {
		b = append(b, pad)
	}
	return append(b, s...)
}
