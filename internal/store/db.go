package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrClosed is returned for commits submitted after Close.
var ErrClosed = errors.New("store: closed")

// ErrFailed wraps the first write error of a store: after it, every commit
// fails with it (Pebble's write-ahead log cannot be trusted past an I/O
// error), until the broker is restarted on a healthy disk.
var ErrFailed = errors.New("store: failed")

// Durability says when a commit's callback runs.
type Durability uint8

const (
	// Sync: the callback runs once the batch is on stable storage (the
	// write-ahead log fsynced). Concurrent Sync commits share one fsync.
	// Everything acknowledged to a client uses it.
	Sync Durability = iota
	// Lazy: the callback runs once the batch is applied; it reaches stable
	// storage with the next Sync commit, the autosave interval or the
	// autosave change count, whichever comes first. A crash may lose it —
	// for a subscriber's acknowledgement that means a redelivery only.
	Lazy
)

// Options configure Open.
type Options struct {
	// Logger receives Pebble's messages and the store's errors; nil
	// discards them.
	Logger *slog.Logger
	// FS is the file system; nil is the operating system's. Tests pass
	// vfs.NewCrashableMem or an errorfs wrapper.
	FS vfs.FS
	// SyncInterval bounds how long a Lazy commit stays unsynced
	// (autosave_interval); zero leaves Lazy commits to the next Sync
	// commit or SyncChanges.
	SyncInterval time.Duration
	// SyncChanges turns the n-th unsynced Lazy commit into a Sync one
	// (autosave_on_changes); zero disables it.
	SyncChanges int
}

// DB is the store. A nil *DB is the memory-only store (persistence false):
// NewBatch returns nil, every Batch method is a no-op on a nil *Batch and
// Commit calls back at once, so the broker's write path costs nothing.
//
// Commits run through two goroutines: the applier writes each batch to the
// write-ahead log and the memtable in the order Commit was called, without
// waiting for the fsync; the completer waits for the fsyncs and runs the
// callbacks, in the same order. Pebble syncs everything written so far in
// one fsync, so concurrent Sync commits coalesce (group commit) while the
// broker's read loops never wait for the disk.
type DB struct {
	pdb  *pebble.DB
	log  *slog.Logger
	opts Options

	nextBody atomic.Uint64
	// refs counts the queue entries referring to each body. Owned by the
	// applier goroutine (and by Recover, before commits start).
	refs map[BodyID]int32

	failMu  sync.Mutex
	failErr error
	failed  atomic.Bool

	applyQ    queue
	completeQ queue
	unsynced  atomic.Int64 // Lazy commits applied since the last sync
	syncs     atomic.Int64 // synced commits applied: a cheap activity counter
	applierID atomic.Uint64
	openerID  atomic.Uint64 // the goroutine in pebble.Open, while it runs
	autosaved atomic.Int64  // autosave syncs completed, for tests

	// outstanding lists the batches committed and not yet called back, in
	// commit order, so that a failure can call them all back even when
	// Pebble has wedged the applier.
	outMu   sync.Mutex
	outHead *Batch
	outTail *Batch
	// failAll, pushed on the completion queue when the store fails, makes
	// the completer call back every outstanding batch with the error.
	failAll  *Batch
	failedCh chan struct{} // closed on failure

	closeMu       sync.Mutex
	closed        bool
	quit          chan struct{}
	applierDone   chan struct{}
	completerDone chan struct{}
	autosaveDone  chan struct{}
}

// queue is an unbounded FIFO of batches with a wake-up channel: Commit must
// never block the broker's read loop on a full channel. Its length is
// bounded by the broker's flow control (in-flight windows, held publishers).
type queue struct {
	mu    sync.Mutex
	items []*Batch
	wake  chan struct{}
}

func (q *queue) init() { q.wake = make(chan struct{}, 1) }

func (q *queue) push(b *Batch) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued, swapping in spare (emptied) as the new
// backing array so that steady operation allocates nothing.
func (q *queue) take(spare []*Batch) []*Batch {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

// Open opens (creating it if needed) the store in directory dir.
func Open(dir string, o Options) (*DB, error) {
	d := &DB{log: o.Logger, opts: o, refs: make(map[BodyID]int32), quit: make(chan struct{}),
		failAll: &Batch{}, failedCh: make(chan struct{}), applierDone: make(chan struct{}),
		completerDone: make(chan struct{}), autosaveDone: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	po := &pebble.Options{
		FS:                 o.FS,
		Logger:             pebbleLogger{d},
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			// A failed memtable flush leaves the data in the WAL, but
			// Pebble retries it forever and stalls writes once memtables
			// pile up: the store fails instead, so committers hear of it.
			FlushEnd: func(info pebble.FlushInfo) {
				// Pebble reports a successful flush that wrote no table
				// (a memtable of sync records only) as "empty table";
				// the error is unexported, so its text is compared, as
				// Pebble's own tests do.
				if info.Err != nil && info.Err.Error() != "pebble: empty table" {
					_ = d.fail(fmt.Errorf("flush: %w", info.Err))
				}
			},
			BackgroundError: func(err error) {
				d.log.Error("persistent store background error", "err", err)
			},
		},
	}
	pdb, err := d.openPebble(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	d.pdb = pdb
	last, err := d.lastBody()
	if err != nil {
		_ = pdb.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	d.nextBody.Store(uint64(last))
	d.applyQ.init()
	d.completeQ.init()
	go d.applier()
	go d.completer()
	if o.SyncInterval > 0 {
		go d.autosave(o.SyncInterval)
	} else {
		close(d.autosaveDone)
	}
	return d, nil
}

// openPebble opens Pebble, turning a Fatalf during the open (a manifest
// that cannot be written) into an error instead of a hang.
func (d *DB) openPebble(dir string, po *pebble.Options) (pdb *pebble.DB, err error) {
	d.openerID.Store(goid())
	defer d.openerID.Store(0)
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			pdb, err = nil, errors.New(f.msg)
		}
	}()
	return pebble.Open(dir, po)
}

// lastBody returns the highest body id in the store, so that new ids never
// reuse one (bodies are deleted with SingleDelete, which requires that a
// key is written once).
func (d *DB) lastBody() (BodyID, error) {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pBody}, UpperBound: []byte{pBody + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("body key %x: %w", k, errCorrupt)
	}
	return BodyID(binary.BigEndian.Uint64(k[1:])), nil
}

// Err returns the error that failed the store, or nil.
func (d *DB) Err() error {
	if d == nil || !d.failed.Load() {
		return nil
	}
	d.failMu.Lock()
	defer d.failMu.Unlock()
	return d.failErr
}

// fail records the store's first write error; it is logged once.
func (d *DB) fail(err error) error {
	d.failMu.Lock()
	defer d.failMu.Unlock()
	if d.failErr == nil {
		d.failErr = fmt.Errorf("%w: %w", ErrFailed, err)
		d.failed.Store(true)
		close(d.failedCh)
		d.completeQ.push(d.failAll)
		d.log.Error("persistent store failed: acknowledged writes are refused until restart", "err", err)
	}
	return d.failErr
}

// Syncs reports how many synced commits (and autosave syncs) the store has
// applied, for metrics.
func (d *DB) Syncs() int64 {
	if d == nil {
		return 0
	}
	return d.syncs.Load()
}

// Commit submits b. The batch is applied in the order of Commit calls, so
// a batch that refers to what another one wrote (a subscriber's
// acknowledgement of a queued message) must be committed after it: the
// broker commits a publish's batch before it makes the deliveries visible
// to other connections. done (which may be nil) is called exactly once,
// with nil or the error, once the batch is durable (Sync) or applied
// (Lazy); calls come in commit order from one goroutine, so done must not
// block — it hands the acknowledgement to the connection's writer. On the
// memory-only store (nil *DB), and with ErrClosed after Close, done is
// called before Commit returns.
// Commit never blocks on the disk; b must not be used afterwards.
func (d *DB) Commit(b *Batch, dur Durability, done func(error)) {
	if d == nil || b == nil {
		if done != nil {
			done(nil)
		}
		return
	}
	b.dur, b.done = dur, done
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		b.finish(ErrClosed)
		return
	}
	d.track(b)
	if err := d.Err(); err != nil {
		// Past a failure the applier may be wedged in Pebble: the
		// completer answers.
		b.err = err
		d.completeQ.push(b)
		return
	}
	d.applyQ.push(b)
}

// Flush commits an empty synced batch: done runs once everything committed
// before it is durable.
func (d *DB) Flush(done func(error)) {
	if d == nil {
		if done != nil {
			done(nil)
		}
		return
	}
	b := d.NewBatch()
	_ = b.pb.LogData(nil, nil) // a batch must hold a record to be written
	d.Commit(b, Sync, done)
}

// applier writes batches to the WAL and memtable in submission order. It is
// the only goroutine that writes to Pebble, so a Pebble panic (which leaves
// its commit mutex held) can wedge nothing but this goroutine, after the
// store has been marked failed.
func (d *DB) applier() {
	defer close(d.applierDone)
	d.applierID.Store(goid())
	var spare []*Batch
	for {
		select {
		case <-d.applyQ.wake:
		case <-d.quit:
			// Close has stopped submissions; apply what was queued.
			for _, b := range d.applyQ.take(nil) {
				d.apply(b)
			}
			d.completeQ.push(nil) // tells the completer to finish
			return
		}
		items := d.applyQ.take(spare)
		for i, b := range items {
			d.apply(b)
			items[i] = nil
		}
		spare = items
	}
}

func (d *DB) apply(b *Batch) {
	if err := d.Err(); err != nil {
		b.err = err
		d.completeQ.push(b)
		return
	}
	sync := b.dur == Sync
	if !sync && d.opts.SyncChanges > 0 && d.unsynced.Load()+1 >= int64(d.opts.SyncChanges) {
		sync = true
	}
	b.synced = sync
	if err := d.applyRefs(b); err != nil {
		b.err = d.fail(err)
		d.completeQ.push(b)
		return
	}
	if err := d.pebbleApply(b.pb, sync); err != nil {
		b.err = d.fail(err)
		d.completeQ.push(b)
		return
	}
	if sync {
		d.unsynced.Store(0)
		d.syncs.Add(1)
	} else {
		d.unsynced.Add(1)
	}
	b.applied = true
	d.completeQ.push(b)
}

// fatalPanic is what pebbleLogger.Fatalf panics with on the applier
// goroutine, to be recovered by pebbleApply.
type fatalPanic struct{ msg string }

// pebbleApply hands pb to Pebble, turning a panic (Pebble panics or calls
// Fatalf on WAL errors) into an error.
func (d *DB) pebbleApply(pb *pebble.Batch, sync bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(fatalPanic); ok {
				err = errors.New(f.msg)
			} else {
				err = fmt.Errorf("pebble: %v", r)
			}
		}
	}()
	if sync {
		return d.pdb.ApplyNoSyncWait(pb, pebble.Sync)
	}
	return d.pdb.Apply(pb, pebble.NoSync)
}

// completer waits for each batch's fsync in order and runs its callback.
func (d *DB) completer() {
	defer close(d.completerDone)
	var spare []*Batch
	for {
		<-d.completeQ.wake
		items := d.completeQ.take(spare)
		for i, b := range items {
			switch b {
			case nil:
				return // the last word, from the applier or Close
			case d.failAll:
				err := d.Err()
				for _, o := range d.outstanding() {
					o.finish(err)
				}
			default:
				d.complete(b)
			}
			items[i] = nil
		}
		spare = items
	}
}

// track appends b to the outstanding list. Caller holds closeMu.
func (d *DB) track(b *Batch) {
	d.outMu.Lock()
	b.prev = d.outTail
	if d.outTail != nil {
		d.outTail.next = b
	} else {
		d.outHead = b
	}
	d.outTail = b
	b.tracked = true
	d.outMu.Unlock()
}

func (d *DB) untrack(b *Batch) {
	d.outMu.Lock()
	if b.tracked {
		if b.prev != nil {
			b.prev.next = b.next
		} else {
			d.outHead = b.next
		}
		if b.next != nil {
			b.next.prev = b.prev
		} else {
			d.outTail = b.prev
		}
		b.prev, b.next, b.tracked = nil, nil, false
	}
	d.outMu.Unlock()
}

// outstanding returns the batches not yet called back, in commit order.
func (d *DB) outstanding() []*Batch {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	var bs []*Batch
	for b := d.outHead; b != nil; b = b.next {
		bs = append(bs, b)
	}
	return bs
}

func (d *DB) complete(b *Batch) {
	err := b.err
	if err == nil && b.applied && b.synced {
		if werr := syncWait(b.pb); werr != nil {
			err = d.fail(werr)
		}
	}
	if b.pb != nil {
		// Close is safe while Pebble still holds the batch: it is then
		// released when Pebble lets go of it.
		_ = b.pb.Close()
	}
	b.pb = nil
	b.finish(err)
}

func syncWait(pb *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble: %v", r)
		}
	}()
	return pb.SyncWait()
}

// autosave syncs Lazy commits at least every interval.
func (d *DB) autosave(every time.Duration) {
	defer close(d.autosaveDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
			if d.unsynced.Load() > 0 && d.Err() == nil {
				d.Flush(func(err error) {
					if err == nil {
						d.autosaved.Add(1)
					}
				})
			}
		}
	}
}

// Close applies and syncs what was committed, runs the outstanding
// callbacks and closes the store. Commits after Close fail with ErrClosed.
// On a failed store it returns the failure and leaves Pebble as it is
// (a goroutine wedged in it cannot be stopped; the process should
// restart).
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	d.closeMu.Lock()
	if d.closed {
		d.closeMu.Unlock()
		return nil
	}
	// A last synced batch makes Lazy commits durable on a clean shutdown.
	if d.unsynced.Load() > 0 && d.Err() == nil {
		b := d.NewBatch()
		_ = b.pb.LogData(nil, nil)
		b.dur = Sync
		d.applyQ.push(b)
	}
	d.closed = true
	d.closeMu.Unlock()
	close(d.quit)
	<-d.autosaveDone
	select {
	case <-d.applierDone:
		// The applier applied everything and told the completer to stop.
	case <-d.failedCh:
		// The applier may be wedged in Pebble for good; the failure has
		// queued the call-back of everything outstanding: stop after it.
		d.completeQ.push(nil)
	}
	<-d.completerDone
	if err := d.Err(); err != nil {
		// Pebble's commit pipeline may be wedged after a WAL error; closing
		// it could block or panic. The process is expected to restart.
		return err
	}
	return d.closePebble()
}

func (d *DB) closePebble() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("close store: %v", r)
		}
	}()
	return d.pdb.Close()
}

// pebbleLogger sends Pebble's messages to the store's logger. Fatalf must
// not end the process: on the applier goroutine and in Open it panics
// (recovered by pebbleApply and openPebble); elsewhere it marks the store
// failed and parks the calling background goroutine for good, which is
// all that can be done safely.
type pebbleLogger struct{ d *DB }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.d.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.d.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	_ = l.d.fail(errors.New(msg))
	if id := goid(); id == l.d.applierID.Load() || id == l.d.openerID.Load() {
		panic(fatalPanic{msg})
	}
	select {}
}

// goid returns the calling goroutine's id, parsed from its stack header
// ("goroutine 42 [running]:"). Used on cold paths only.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := bytes.Fields(buf[:n])
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}
