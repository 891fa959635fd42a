package devstack

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A stack killed without a chance to stop its control plane leaves etcd behind; the next
// start stops what the pid file names, and only processes that still run under the name
// recorded (a reused pid of another program is left alone).
func TestStaleControlPlaneIsStopped(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	raw, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "etcd") // a process named etcd
	if err := os.WriteFile(fake, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fake, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var found map[int]string
	for range 50 { // the child's name is etcd once it has exec'd
		if found = children(controlPlane); found[cmd.Process.Pid] == "etcd" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if found[cmd.Process.Pid] != "etcd" {
		t.Fatalf("children %v, want pid %d as etcd", found, cmd.Process.Pid)
	}
	// The recorded stack: the fake etcd, and this test's own pid under a name it does not run as.
	if err := writePIDs(dir, map[int]string{cmd.Process.Pid: "etcd", os.Getpid(): "kube-apiserver"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := reapStale(dir, &out); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale etcd still runs")
	}
	if !strings.Contains(out.String(), fmt.Sprintf("stopping etcd (pid %d)", cmd.Process.Pid)) || strings.Contains(out.String(), "kube-apiserver") {
		t.Fatalf("said %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); !os.IsNotExist(err) {
		t.Fatalf("the pid file stays: %v", err)
	}
	if err := reapStale(dir, io.Discard); err != nil { // nothing recorded: nothing to do
		t.Fatal(err)
	}
}
