package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestCrash commits from several writers (Sync and Lazy mixed) on Pebble's
// crash-simulating file system and takes crash images while they run:
// every Sync commit acknowledged before an image is in it, whatever share
// of unsynced data the image kept; Lazy ones may be missing; nothing is
// corrupt (recovery succeeds and every entry's body is there and right).
func TestCrash(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	fs := vfs.NewCrashableMem()
	d := openFS(t, fs, Options{})

	const writers = 4
	b := d.NewBatch()
	for w := range writers {
		b.PutSession(&Session{ClientID: fmt.Sprint("w", w), Version: 5, ExpiryInterval: 0xFFFFFFFF})
	}
	commit(t, d, b, Sync)

	type key struct{ w, i int }
	var mu sync.Mutex
	acked := map[key]bool{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := fmt.Sprint("w", w)
			ids := []BodyID{0}
			for i := 1; !stop.Load(); i++ {
				b := d.NewBatch()
				id := b.PutBody(&Message{Topic: client, Payload: fmt.Appendf(nil, "%d/%d", w, i)})
				ids = append(ids, id)
				b.Enqueue(&Entry{ClientID: client, Seq: uint64(i), Body: id, QoS: 1})
				if i > 3 && i%4 == 0 {
					b.Dequeue(client, uint64(i-3), ids[i-3])
				}
				dur := Sync
				if i%2 == 1 {
					dur = Lazy
				}
				done := make(chan error, 1)
				d.Commit(b, dur, func(err error) { done <- err })
				if err := <-done; err != nil {
					errc <- err
					return
				}
				if dur == Sync {
					mu.Lock()
					acked[key{w, i}] = true
					mu.Unlock()
				}
			}
		}()
	}

	type image struct {
		fs    *vfs.MemFS
		acked map[key]bool
		pct   int
	}
	var images []image
	for n, pct := range []int{0, 100, rng.IntN(100), rng.IntN(100), 50} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			enough := len(acked) >= (n+1)*100
			mu.Unlock()
			if enough {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("writers made no progress (%d acknowledged)", len(acked))
			}
			select {
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(time.Millisecond):
			}
		}
		mu.Lock()
		snap := make(map[key]bool, len(acked))
		for k := range acked {
			snap[k] = true
		}
		mu.Unlock()
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
		images = append(images, image{img, snap, pct})
	}
	stop.Store(true)
	wg.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	for _, im := range images {
		t.Run(fmt.Sprintf("unsynced%d%%", im.pct), func(t *testing.T) {
			d := openFS(t, im.fs, Options{})
			defer d.Close()
			c := recoverAll(t, d)
			found := map[key]bool{}
			for client, es := range c.entries {
				for j, e := range es {
					var w, i int
					if _, err := fmt.Sscanf(string(c.bodies[client][j].Payload), "%d/%d", &w, &i); err != nil ||
						client != fmt.Sprint("w", w) || uint64(i) != e.Seq {
						t.Fatalf("entry %s/%d has body %q", client, e.Seq, c.bodies[client][j].Payload)
					}
					found[key{w, i}] = true
				}
			}
			lost := 0
			for k := range im.acked {
				// Every fourth commit dequeued the entry three before it.
				dequeued := k.i%4 == 1 && im.acked[key{k.w, k.i + 3}]
				if !found[k] && !dequeued {
					lost++
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged (synced) commits lost", lost, len(im.acked))
			}
			if len(c.sessions) != writers {
				t.Fatalf("%d sessions recovered, want %d", len(c.sessions), writers)
			}
			t.Logf("%d acknowledged commits kept, %d entries recovered", len(im.acked), c.stats.Entries)
		})
	}
}

// injectAfter fails WAL writes and syncs once armed.
func walInjector(armed *atomic.Bool) errorfs.Injector {
	return errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !armed.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			return errors.New("injected I/O error")
		}
		return nil
	})
}

// TestIOError: once the disk fails, a commit reports the error to its
// caller (never success), every later commit too, and nothing panics.
func TestIOError(t *testing.T) {
	for _, dur := range []Durability{Sync, Lazy} {
		t.Run(fmt.Sprint("durability", dur), func(t *testing.T) {
			var armed atomic.Bool
			d := openFS(t, errorfs.Wrap(vfs.NewMem(), walInjector(&armed)), Options{})
			b := d.NewBatch()
			b.SetRetained(&Message{Topic: "ok"})
			commit(t, d, b, Sync)

			armed.Store(true)
			var errs []error
			// Lazy commits are written by Pebble's flusher in the
			// background; the failure shows at the latest with a Sync.
			for i := range 5 {
				b := d.NewBatch()
				b.SetRetained(&Message{Topic: fmt.Sprint("t", i), Payload: []byte("x")})
				if i == 4 {
					dur = Sync
				}
				errs = append(errs, commitErr(d, b, dur))
			}
			if errs[4] == nil {
				t.Fatalf("commits on a failing disk reported success: %v", errs)
			}
			if !errors.Is(errs[4], ErrFailed) || !strings.Contains(errs[4].Error(), "injected") {
				t.Fatalf("error does not say what failed: %v", errs[4])
			}
			b = d.NewBatch()
			b.SetRetained(&Message{Topic: "after"})
			if err := commitErr(d, b, Sync); !errors.Is(err, ErrFailed) {
				t.Fatalf("commit after the failure: %v", err)
			}
			if d.Err() == nil {
				t.Fatal("Err() is nil after a failure")
			}
			if err := d.Close(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Close after a failure: %v", err)
			}
		})
	}
}

// TestIOErrorConcurrent: many committers when the disk fails: each gets a
// callback, none gets success after the failure was reported to another.
func TestIOErrorConcurrent(t *testing.T) {
	var armed atomic.Bool
	d := openFS(t, errorfs.Wrap(vfs.NewMem(), walInjector(&armed)), Options{})
	defer d.Close()
	const n = 32
	var wg sync.WaitGroup
	// Callbacks in the order they ran: once one reported the failure, no
	// later one may report success.
	var mu sync.Mutex
	var order []error
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if w == 0 && i == 10 {
					armed.Store(true)
				}
				b := d.NewBatch()
				b.SetRetained(&Message{Topic: fmt.Sprint(w, "/", i)})
				ch := make(chan struct{})
				d.Commit(b, Sync, func(err error) {
					mu.Lock()
					order = append(order, err)
					mu.Unlock()
					close(ch)
				})
				<-ch
			}
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range order {
		if err != nil {
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("unexpected error: %v", err)
			}
			failed++
		} else if failed > 0 {
			t.Fatal("a commit reported success after another reported the failure")
		}
	}
	if failed == 0 {
		t.Fatal("no commit failed on a failing disk")
	}
}

// TestAutosave: a Lazy commit reaches stable storage within the autosave
// interval without any Sync commit.
func TestAutosave(t *testing.T) {
	fs := vfs.NewCrashableMem()
	d := openFS(t, fs, Options{SyncInterval: 10 * time.Millisecond})
	defer d.Close()
	b := d.NewBatch()
	b.SetRetained(&Message{Topic: "lazy", Payload: []byte("v")})
	commit(t, d, b, Lazy)
	deadline := time.Now().Add(20 * time.Second)
	for d.autosaved.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("autosave never synced")
		}
		time.Sleep(time.Millisecond)
	}
	assertRetained(t, fs, "lazy")
}

// TestSyncChanges: the n-th unsynced Lazy commit is synced.
func TestSyncChanges(t *testing.T) {
	fs := vfs.NewCrashableMem()
	d := openFS(t, fs, Options{SyncChanges: 3})
	defer d.Close()
	for i := range 3 {
		b := d.NewBatch()
		b.SetRetained(&Message{Topic: fmt.Sprint("lazy", i)})
		commit(t, d, b, Lazy)
	}
	assertRetained(t, fs, "lazy0", "lazy1", "lazy2")
}

// assertRetained checks that a crash image keeping no unsynced data holds
// the retained topics.
func assertRetained(t *testing.T, fs *vfs.MemFS, topics ...string) {
	t.Helper()
	img := fs.CrashClone(vfs.CrashCloneCfg{})
	d := openFS(t, img, Options{})
	defer d.Close()
	c := recoverAll(t, d)
	for _, tp := range topics {
		if c.retained[tp] == nil {
			t.Fatalf("retained %q not synced (have %v)", tp, c.retained)
		}
	}
}

// flush waits until everything committed so far is durable.
func flush(t *testing.T, d *DB) {
	t.Helper()
	ch := make(chan error, 1)
	d.Flush(func(err error) { ch <- err })
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("flush never called back")
	}
}

// TestFlush: Flush makes the Lazy commits before it durable.
func TestFlush(t *testing.T) {
	fs := vfs.NewCrashableMem()
	d := openFS(t, fs, Options{})
	defer d.Close()
	b := d.NewBatch()
	b.SetRetained(&Message{Topic: "lazy"})
	commit(t, d, b, Lazy)
	flush(t, d)
	assertRetained(t, fs, "lazy")
}
