//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"
)

// accessAs opens each file as du would, and returns one error (or nil) per
// file. It runs on an OS thread of its own whose file-system identity
// (setfsuid, setfsgid, and its supplementary groups) is du's, so the
// kernel applies every rule — modes, ACLs, directories on the way —
// exactly as it will after the broker drops its privileges; the rest of
// the process keeps root. The thread is never unlocked, so it ends with
// the goroutine and its identity goes with it.
func accessAs(du *dropUser, files []rereadFile) []error {
	res := make(chan []error, 1)
	go func() {
		runtime.LockOSThread()
		// Raw system calls, not syscall.Setgroups and the like, which
		// change every thread of the process.
		gids := make([]uint32, len(du.groups))
		for i, g := range du.groups {
			gids[i] = uint32(g)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(gids)), uintptr(unsafe.Pointer(&gids[0])), 0); e != 0 {
			res <- allErr(len(files), fmt.Errorf("setgroups: %w", e))
			return
		}
		syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(du.gid), 0, 0)
		syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(du.uid), 0, 0)
		// setfsuid reports no error; asking again (-1 changes nothing)
		// returns the identity in force.
		if cur, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0); int(cur) != du.uid {
			res <- allErr(len(files), errors.New("setfsuid failed"))
			return
		}
		out := make([]error, len(files))
		for i, f := range files {
			out[i] = tryOpen(f)
		}
		res <- out
	}()
	return <-res
}

func allErr(n int, err error) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = fmt.Errorf("cannot check as the broker's user: %w", err)
	}
	return out
}

// tryOpen opens f as the broker will: read (a capath directory, listed,
// and each regular file in it) or append.
func tryOpen(f rereadFile) error {
	flag := os.O_RDONLY
	if f.write {
		flag = os.O_WRONLY | os.O_APPEND
	}
	fh, err := os.OpenFile(f.path, flag, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	if !f.dir && !f.list {
		return nil
	}
	names, err := fh.Readdirnames(-1)
	if err != nil || f.list {
		return err
	}
	for _, n := range names {
		p := filepath.Join(f.path, n)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		c, err := os.Open(p)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}
