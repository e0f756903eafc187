package store

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestBackgroundIOError: the disk fails for Pebble's background work (the
// manifest written by a memtable flush): the store reports failure to
// committers instead of ending the process.
func TestBackgroundIOError(t *testing.T) {
	var armed atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && (strings.HasSuffix(op.Path, ".sst") || strings.Contains(op.Path, "MANIFEST")) && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errors.New("injected I/O error")
		}
		return nil
	})
	d := openFS(t, errorfs.Wrap(vfs.NewMem(), inj), Options{})
	armed.Store(true)
	// 64 KiB values fill Pebble's 4 MiB memtable every 64 commits: the
	// flushes fail, and without the store failing, writes would stall
	// for good once memtables pile up.
	payload := make([]byte, 64<<10)
	var err error
	i := 0
	for ; i < 2000 && err == nil; i++ {
		b := d.NewBatch()
		b.SetRetained(&Message{Topic: fmt.Sprint("t/", i), Payload: payload})
		err = commitErr(d, b, Sync)
	}
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("after %d commits: %v", i, err)
	}
	b := d.NewBatch()
	b.SetRetained(&Message{Topic: "after"})
	if err := commitErr(d, b, Lazy); !errors.Is(err, ErrFailed) {
		t.Fatalf("commit after the failure: %v", err)
	}
	if err := d.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close: %v", err)
	}
}

// TestOpenIOError: a store that cannot write its manifest does not open,
// and says why.
func TestOpenIOError(t *testing.T) {
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.Contains(op.Path, "MANIFEST") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errors.New("injected I/O error")
		}
		return nil
	})
	d, err := Open("db", Options{FS: errorfs.Wrap(vfs.NewMem(), inj)})
	if err == nil {
		d.Close()
		t.Fatal("opened a store whose manifest cannot be written")
	}
	if !strings.Contains(err.Error(), "injected") {
		t.Fatalf("error does not say why: %v", err)
	}
}
