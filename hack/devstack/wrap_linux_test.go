package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/devstack"
)

// state is a process's state letter from /proc ("" when it is gone).
func state(pid int) string {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(raw)
	end := strings.LastIndexByte(s, ')')
	return strings.Fields(s[end+1:])[0]
}

// The stack's executable started as etcd becomes the real etcd with a parent-death
// signal: when its parent is SIGKILLed, so is it.
func TestWrappedControlPlaneDiesWithItsParent(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "croupier-devstack")
	if b, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the stack: %v\n%s", err, b)
	}
	real := filepath.Join(dir, "assets")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	raw, _ := os.ReadFile(sleep)
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "etcd"), raw, 0o755); err != nil { // the "real" etcd
		t.Fatal(err)
	}
	link := filepath.Join(dir, "etcd")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	parent := exec.Command("bash", "-c", link+" 300 & echo $!; wait")
	parent.Env = append(os.Environ(), devstack.ControlPlaneAssets+"="+real)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run() })
	deadline := time.Now().Add(30 * time.Second)
	for { // the wrapper has exec'd the real binary once its command line is sleep's
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.HasPrefix(string(cmdline), filepath.Join(real, "etcd")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wrapper did not become the real etcd: %q", cmdline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = parent.Process.Kill()
	_ = parent.Wait()
	for deadline = time.Now().Add(10 * time.Second); ; {
		if s := state(pid); s == "" || s == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd (pid %d) outlived its parent: state %s", pid, state(pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
