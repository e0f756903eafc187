package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// daemonEnv names the file descriptor through which a daemonized child
// reports its start to the parent. Its presence also tells the child that
// -d has been applied already.
const daemonEnv = "MAMORI_DAEMON_STATUS_FD"

// daemonReady is the last line a child writes on the status pipe once all
// its listeners are open.
const daemonReady = "\x00mamori ready\n"

// daemonStartTimeout bounds how long the parent waits for the child.
const daemonStartTimeout = 30 * time.Second

// daemonize runs the broker again in a new session, detached from the
// terminal, and returns once it is running. Unlike a plain fork, the parent
// waits until the child has opened its listeners (or failed to), so
// `mamori broker -d` exits non-zero with the reason when the broker cannot
// start, instead of exiting 0 for a broker that died in the background.
func daemonize(args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "Error: cannot daemonize: %v\n", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return fail(err)
	}
	defer devnull.Close()
	cmd := exec.Command(exe, append([]string{"broker"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fail(err)
	}
	pid := cmd.Process.Pid
	// The child is not waited for: it outlives us. Release frees the
	// handle without signalling it.
	_ = cmd.Process.Release()

	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	select {
	case b := <-out:
		if bytes.HasSuffix(b, []byte(daemonReady)) {
			return 0
		}
		stderr.Write(b)
		fmt.Fprintf(stderr, "Error: the broker (pid %d) failed to start in the background.\n", pid)
		return 1
	case <-time.After(daemonStartTimeout):
		fmt.Fprintf(stderr, "Error: the broker (pid %d) did not report that it was running within %v.\n", pid, daemonStartTimeout)
		return 1
	}
}

// daemonStatus is the child's side of daemonize: its stderr until the
// broker runs, so that start-up errors reach the parent's terminal; after
// ready, output is discarded (the child's real stderr is /dev/null).
type daemonStatus struct {
	mu sync.Mutex
	f  *os.File // nil after ready
}

// daemonChild returns the status writer when this process is a daemonized
// child, and removes the variable so processes it starts do not inherit it.
func daemonChild() *daemonStatus {
	v, ok := os.LookupEnv(daemonEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(daemonEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	return &daemonStatus{f: os.NewFile(uintptr(fd), "daemon-status")}
}

func (d *daemonStatus) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		d.f.Write(p)
	}
	return len(p), nil
}

// ready tells the parent that the broker runs, and stops forwarding output.
func (d *daemonStatus) ready() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		d.f.WriteString(daemonReady)
		d.f.Close()
		d.f = nil
	}
}

// dropUser is the account the broker switches to after opening its
// listeners (the `user` option) when it starts as root.
type dropUser struct {
	name     string
	uid, gid int
	groups   []int
}

// lookupDropUser resolves the user the broker will run as, or returns nil
// when it keeps its identity: it does not run as root, or `user` is root
// or empty.
//
// Mosquitto refuses to start when the user does not exist. mamori does the
// same for a user named in the configuration, but for the default user
// "mosquitto" — which a system with mamori and no Mosquitto package need not
// have — it keeps running as root with a warning, so a configuration without
// a `user` line starts as it did under Mosquitto's package. `user root`
// keeps root, as in Mosquitto.
func lookupDropUser(name string, isDefault bool) (du *dropUser, warning string, err error) {
	if os.Geteuid() != 0 || name == "" || name == "root" {
		return nil, "", nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) && isDefault {
			return nil, fmt.Sprintf("Warning: running as root: user %q does not exist, so privileges were not dropped (set `user` to an existing account)", name), nil
		}
		return nil, "", fmt.Errorf("unable to drop privileges to %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", fmt.Errorf("unable to drop privileges to %q: %w", name, err)
	}
	du = &dropUser{name: name, uid: uid, gid: gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil {
				du.groups = append(du.groups, g)
			}
		}
	}
	if len(du.groups) == 0 {
		du.groups = []int{gid}
	}
	return du, "", nil
}

// drop switches the process to the user, as Mosquitto does after opening
// its listeners (so ports below 1024 and root-owned certificate keys still
// work at start). Supplementary groups are set from the user's groups,
// then the group, then the user: in that order, because after setuid the
// process may no longer change its groups.
func (du *dropUser) drop() error {
	if du == nil {
		return nil
	}
	if err := syscall.Setgroups(du.groups); err != nil {
		return fmt.Errorf("unable to drop privileges to %q: setgroups: %w", du.name, err)
	}
	if err := syscall.Setgid(du.gid); err != nil {
		return fmt.Errorf("unable to drop privileges to %q: setgid: %w", du.name, err)
	}
	if err := syscall.Setuid(du.uid); err != nil {
		return fmt.Errorf("unable to drop privileges to %q: setuid: %w", du.name, err)
	}
	return nil
}

// writePIDFile writes the process id as Mosquitto does, one line.
func writePIDFile(path string) error {
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}
