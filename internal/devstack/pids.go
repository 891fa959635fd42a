package devstack

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ControlPlaneAssets is the environment variable that tells the wrapper (hack/devstack
// started as etcd or kube-apiserver) where the real binaries are.
const ControlPlaneAssets = "CROUPIER_CONTROL_PLANE_ASSETS"

// wrapControlPlane makes envtest start etcd and kube-apiserver through links to this
// executable in dir, named after them (envtest's TEST_ASSET_* overrides).
func wrapControlPlane(dir string) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Setenv(ControlPlaneAssets, os.Getenv("KUBEBUILDER_ASSETS")); err != nil {
		return err
	}
	for _, n := range controlPlane {
		link := filepath.Join(dir, n)
		_ = os.Remove(link)
		if err := os.Symlink(exe, link); err != nil {
			return err
		}
		if err := os.Setenv("TEST_ASSET_"+strings.ToUpper(strings.ReplaceAll(n, "-", "_")), link); err != nil {
			return err
		}
	}
	return nil
}

// controlPlane names the processes the stack starts through envtest.
var controlPlane = []string{"etcd", "kube-apiserver"}

// pidFile lists the control plane's processes of a running stack ("<pid> <name>" lines):
// a stack that was killed (SIGKILL, a closed terminal) cannot stop them, so the next
// start stops what the file names, if those processes still run under that name.
const pidFile = "stack.pids"

// children returns this process's child processes among names, read from /proc (none
// where there is no /proc).
func children(names []string) map[int]string {
	out := map[int]string{}
	dirs, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		name, ppid, _, ok := procStat(pid)
		if ok && ppid == me && slices.Contains(names, name) {
			out[pid] = name
		}
	}
	return out
}

// procStat reads a process's command name, parent and state letter from
// /proc/<pid>/stat (ok false when it is gone).
func procStat(pid int) (name string, ppid int, state string, ok bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, "", false
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, "", false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return "", 0, "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return s[open+1 : end], ppid, fields[0], err == nil
}

// runs reports whether pid is a live (not exited) process named name.
func runs(pid int, name string) bool {
	cur, _, state, ok := procStat(pid)
	return ok && cur == name && state != "Z"
}

// writePIDs records the control plane's processes in the state directory.
func writePIDs(state string, ps map[int]string) error {
	var b strings.Builder
	for pid, name := range ps {
		fmt.Fprintf(&b, "%d %s\n", pid, name)
	}
	return os.WriteFile(filepath.Join(state, pidFile), []byte(b.String()), 0o600)
}

// reapStale stops the processes a killed stack left behind: each one the pid file names
// that still runs under the recorded name gets SIGTERM, then SIGKILL after 5 s. It says
// what it stopped on out.
func reapStale(state string, out io.Writer) error {
	path := filepath.Join(state, pidFile)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var pid int
		var name string
		if _, err := fmt.Sscanf(sc.Text(), "%d %s", &pid, &name); err != nil || pid <= 1 || !slices.Contains(controlPlane, name) {
			continue
		}
		if !runs(pid, name) {
			continue // gone, or the pid now belongs to another program
		}
		fmt.Fprintf(out, "stopping %s (pid %d) left behind by a stack that was killed\n", name, pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 50 && runs(pid, name); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if runs(pid, name) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return os.Remove(path)
}
