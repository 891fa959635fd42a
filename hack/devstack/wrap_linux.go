package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/croupier-crm/croupier/internal/devstack"
)

// When the stack starts etcd or kube-apiserver it starts this executable under their name
// (devstack.Options.ParentDeath): it asks the kernel to SIGKILL it when its parent, the
// stack, dies, and then becomes the real binary (the setting survives exec), so a killed
// `make dev` leaves no control plane behind.
func init() {
	name := filepath.Base(os.Args[0])
	if name != "etcd" && name != "kube-apiserver" {
		return
	}
	dir := os.Getenv(devstack.ControlPlaneAssets)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "%s: started as the stack's wrapper without %s\n", name, devstack.ControlPlaneAssets)
		os.Exit(127)
	}
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "%s: setting the parent-death signal: %v\n", name, errno)
		os.Exit(127)
	}
	if os.Getppid() != parent {
		os.Exit(1) // the stack died before the signal was set
	}
	bin := filepath.Join(dir, name)
	err := syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "%s: running %s: %v\n", name, bin, err)
	os.Exit(127)
}
