package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

// What the Kubernetes libraries log through klog ("Starting controller" of the client CA
// reader, say) lands in the stack's log, not on the console between make dev's lines.
func TestKlogGoesToTheStackLog(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	var stack bytes.Buffer
	routeLogs(&stack, false)
	klog.InfoS("Starting controller", "name", "client-ca::kube-system::extension-apiserver-authentication::client-ca-file")
	klog.Flush()
	os.Stderr = stderr
	_ = w.Close()
	console, _ := io.ReadAll(r)
	if !strings.Contains(stack.String(), "Starting controller") {
		t.Errorf("the stack's log lacks the klog line: %q", stack.String())
	}
	if strings.Contains(string(console), "Starting controller") {
		t.Errorf("the klog line reached the console: %q", console)
	}
}
