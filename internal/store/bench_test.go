package store

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCountFS counts fsyncs of the write-ahead log.
type syncCountFS struct {
	vfs.FS
	n *atomic.Int64
}

type syncCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f syncCountFile) Sync() error                  { f.n.Add(1); return f.File.Sync() }
func (f syncCountFile) SyncData() error              { f.n.Add(1); return f.File.SyncData() }
func (f syncCountFile) SyncTo(o int64) (bool, error) { f.n.Add(1); return f.File.SyncTo(o) }

func (fs syncCountFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncCountFile{f, fs.n}, nil
}

func (fs syncCountFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs syncCountFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

func (fs syncCountFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// BenchmarkSyncCommit measures concurrent Sync commits of a publish-sized
// batch (a 64-byte body and one queue entry) on a real directory: the
// commits per second and how many share one fsync (group commit).
func BenchmarkSyncCommit(b *testing.B) {
	for _, committers := range []int{1, 64, 512} {
		b.Run(fmt.Sprint("committers=", committers), func(b *testing.B) {
			var syncs atomic.Int64
			d, err := Open(b.TempDir(), Options{FS: syncCountFS{vfs.Default, &syncs}})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			payload := make([]byte, 64)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := syncs.Load()
			for c := range committers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client := fmt.Sprint("client", c)
					done := make(chan error, 1)
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						bt := d.NewBatch()
						id := bt.PutBody(&Message{Topic: "bench/topic", Payload: payload, QoS: 1})
						bt.Enqueue(&Entry{ClientID: client, Seq: uint64(i), Body: id, QoS: 1})
						d.Commit(bt, Sync, func(err error) { done <- err })
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			n := syncs.Load() - start
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			if n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "commits/fsync")
			}
		})
	}
}

// BenchmarkRecover streams a store of 100k retained messages and 10k
// sessions (2 subscriptions, 10 queued entries each, sharing 100 bodies)
// with bodies read once each, as the broker does at start-up.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	d, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	bt := d.NewBatch()
	flushBatch := func() {
		if err := commitErr(d, bt, Sync); err != nil {
			b.Fatal(err)
		}
		bt = d.NewBatch()
	}
	for i := range 100000 {
		bt.SetRetained(&Message{Topic: fmt.Sprintf("retained/%d/state", i), Payload: payload, Retain: true})
		if i%5000 == 4999 {
			flushBatch()
		}
	}
	var seq uint64
	var bodies []BodyID
	for s := range 10000 {
		if s%100 == 0 {
			// Bodies go in the batch of their first reference.
			flushBatch()
			bodies = bodies[:0]
			for range 100 {
				bodies = append(bodies, bt.PutBody(&Message{Topic: "queued/x", Payload: payload, QoS: 1}))
			}
		}
		c := fmt.Sprintf("device-%05d", s)
		bt.PutSession(&Session{ClientID: c, Version: 5, ExpiryInterval: 86400, Subscriptions: []Subscription{
			{Filter: "cmd/" + c, QoS: 1}, {Filter: "broadcast/#", QoS: 1}}})
		for e := range 10 {
			seq++
			bt.Enqueue(&Entry{ClientID: c, Seq: seq, Body: bodies[(s+e)%100], QoS: 1})
		}
	}
	flushBatch()
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		d, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		bodies := map[BodyID]*Message{}
		st, err := d.Recover(Recovery{Entry: func(e *Entry) error {
			if bodies[e.Body] == nil {
				m, err := d.Body(e.Body)
				if err != nil {
					return err
				}
				bodies[e.Body] = m
			}
			return nil
		}})
		if err != nil {
			b.Fatal(err)
		}
		if st.Retained != 100000 || st.Sessions != 10000 {
			b.Fatalf("recovered %+v", st)
		}
		b.ReportMetric(float64(st.Entries), "entries")
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
