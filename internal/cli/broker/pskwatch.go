package broker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// pskWatchDebounce is how long a psk_file must be quiet after a change
// before it is re-read: an editor's save is several events.
const pskWatchDebounce = 300 * time.Millisecond

// pskFiles lists the psk_file of every TLS-PSK listener.
func pskFiles(cfg *config.Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range cfg.Listeners {
		if l.TLS.PSKHint == "" {
			continue
		}
		if f := cfg.SecurityFor(l).PSKFile; f.IsSet() && !seen[f.Path] {
			seen[f.Path] = true
			out = append(out, filepath.Clean(f.Path))
		}
	}
	return out
}

// watchPSKFiles reloads as SIGHUP does (by sending it to sigs) when a
// psk_file of a TLS-PSK listener changes, so a new key takes effect and a
// removed identity is disconnected without a signal. The directories are
// watched, so atomic renames and symlink swaps are seen. It returns a
// function that stops the watcher and waits for it.
func watchPSKFiles(paths []string, sigs chan<- os.Signal, log *slog.Logger) (stop func()) {
	if len(paths) == 0 {
		return func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("psk_file: cannot watch for changes (" + err.Error() + "); send SIGHUP after editing it")
		return func() {}
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
		if err := w.Add(filepath.Dir(p)); err != nil {
			log.Warn("psk_file: cannot watch " + filepath.Dir(p) + " (" + err.Error() + "); send SIGHUP after editing " + p)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op != fsnotify.Chmod && want[filepath.Clean(ev.Name)] {
					timer.Reset(pskWatchDebounce)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			case <-timer.C:
				log.Info("psk_file changed; reloading.")
				select {
				case sigs <- syscall.SIGHUP:
				default: // a reload is already pending
				}
			}
		}
	}()
	return func() {
		cancel()
		w.Close()
		wg.Wait()
	}
}
