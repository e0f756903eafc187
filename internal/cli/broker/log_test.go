package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
)

func TestStrftime(t *testing.T) {
	ts := time.Date(2026, time.March, 7, 15, 4, 5, 0, time.FixedZone("JST", 9*3600))
	tests := []struct{ format, want string }{
		{"%Y-%m-%dT%H:%M:%S", "2026-03-07T15:04:05"},
		{"%F %T", "2026-03-07 15:04:05"},
		{"%y%j %I%p %e", "26066 03PM  7"},
		{"%a %A %b %B", "Sat Saturday Mar March"},
		{"%s", "1772863445"},
		{"%z %Z", "+0900 JST"},
		{"100%% %q", "100% %q"},
		{"trailing %", "trailing %"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			if got := string(appendStrftime(nil, tt.format, ts)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLineHandlerFiltersByLogType(t *testing.T) {
	tests := []struct {
		name  string
		types config.LogType
		log   func(l *slog.Logger)
		want  string // "" when nothing is written
	}{
		{"notice enabled", config.LogNotice, func(l *slog.Logger) { l.Info("hello") }, "hello\n"},
		{"notice disabled", config.LogError, func(l *slog.Logger) { l.Info("hello") }, ""},
		{"warning", config.LogWarning, func(l *slog.Logger) { l.Warn("careful", "k", "v") }, "careful k=\"v\"\n"},
		{"debug disabled", config.LogNotice | config.LogError, func(l *slog.Logger) { l.Debug("noise") }, ""},
		{"information by attribute", config.LogInformation, func(l *slog.Logger) { l.Info("loaded", logTypeKey, "information") }, "loaded\n"},
		{"information not notice", config.LogNotice, func(l *slog.Logger) { l.Info("loaded", logTypeKey, "information") }, ""},
		{"websockets logger", config.LogWebsockets, func(l *slog.Logger) { l.With(logTypeKey, "websockets").Debug("upgrade") }, "upgrade\n"},
		{"websockets disabled", config.LogDebug, func(l *slog.Logger) { l.With(logTypeKey, "websockets").Debug("upgrade") }, ""},
		{"none", 0, func(l *slog.Logger) { l.Error("bad") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			out := &logOutput{types: tt.types, writers: []io.Writer{&buf}}
			l := slog.New(&lineHandler{sink: newLogSink(out)})
			tt.log(l)
			if got := buf.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLineHandlerTimestampsAndSwap(t *testing.T) {
	var a, b bytes.Buffer
	sink := newLogSink(&logOutput{types: config.LogAll, stamp: true, writers: []io.Writer{&a}})
	l := slog.New(&lineHandler{sink: sink})
	l.Info("first")
	if !strings.HasSuffix(a.String(), ": first\n") || a.String()[0] < '1' {
		t.Errorf("unix timestamp line: %q", a.String())
	}
	sink.swap(&logOutput{types: config.LogAll, stamp: true, format: "%Y", writers: []io.Writer{&b}})
	l.Info("second")
	if want := time.Now().Format("2006") + ": second\n"; b.String() != want {
		t.Errorf("after swap: %q, want %q", b.String(), want)
	}
	if strings.Contains(a.String(), "second") {
		t.Errorf("the old output still written after swap")
	}
}

func TestLogTopic(t *testing.T) {
	sink := newLogSink(&logOutput{types: config.LogAll, topic: true})
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	wait := sink.publishTo(ctx, func(topic string, payload []byte) { got <- topic + " " + string(payload) })
	l := slog.New(&lineHandler{sink: sink})
	l.Debug("never published") // Mosquitto publishes no debug lines
	l.Warn("disk full")
	select {
	case s := <-got:
		if s != "$SYS/broker/log/W disk full" {
			t.Errorf("published %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	cancel()
	wait()
	if len(got) != 0 {
		t.Errorf("extra publications: %d", len(got))
	}
}
