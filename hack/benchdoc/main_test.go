package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `Linux 6.18.0 x86_64
cores: 2
jetstream async publish (file, 256B, msg-id dedup): 139097 msg/s
pipeline publish -> consume -> republish -> ack: 80000 msg/s
kv get+compare-and-set, 32 workers: 30101 ops/s
goos: linux
goarch: amd64
pkg: github.com/croupier-crm/croupier/e2e/faults
cpu: AMD EPYC 7B13
BenchmarkDispatcherLoad-2   	  100000	         0 ns/op	        20.50 p50-ms	        48.00 p99-ms	     20000 events/s
PASS
pkg: github.com/croupier-crm/croupier/dispatcher/route
BenchmarkDecide   	 5000000	       412.0 ns/op	       0 B/op
`

// The generated section replaces itself, keeps the hand-written text around it and gives
// throughputs as ratios to the pipeline ceiling of the same run.
func TestRewritesTheGeneratedSection(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "bench.txt"), filepath.Join(dir, "benchmarks.md")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("# Benchmarks\n\nintro\n\n## Issue 3\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := run(in, out); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(out)
	doc := string(raw)
	for _, want := range []string{
		"| BenchmarkDispatcherLoad (GOMAXPROCS 2) | e2e/faults | 100000 | 20.50 p50-ms, 48.00 p99-ms, 20000 events/s | 0.25 (events/s) |",
		"| BenchmarkDecide | dispatcher/route | 5000000 | 412.0 ns/op, 0 B/op |  |",
		"| pipeline publish -> consume -> republish -> ack | 80000 msg/s |",
		"Machine: Linux 6.18.0 x86_64, 2 cores (AMD EPYC 7B13)",
		"intro", "## Issue 3\n\nkept",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("missing %q in\n%s", want, doc)
		}
	}
	if strings.Count(doc, begin) != 1 || strings.Index(doc, begin) > strings.Index(doc, "## Issue 3") {
		t.Errorf("the generated section is not once, before the hand-written ones:\n%s", doc)
	}
	if err := run(filepath.Join(dir, "missing.txt"), out); err == nil {
		t.Error("a missing input was accepted")
	}
}

// The reliability table has one row per six-cell line and refuses an input without any.
func TestReliabilityTable(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "rows.txt"), filepath.Join(dir, "reliability.md")
	rows := "dispatcher SIGKILLed 10 times | 100000 deposits | 10 SIGKILLs | 0 | 423 | bound 640\nnoise\nfuzz: FuzzParse (./internal/money) | 120000 inputs in 15s | none failed | 0 | 0 | FuzzParse\n"
	if err := os.WriteFile(in, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("# Reliability\n\nwhat the rows prove\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runReliability(in, out); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	for _, want := range []string{"| dispatcher SIGKILLed 10 times | 100000 deposits | 10 SIGKILLs | 0 | 423 | bound 640 |",
		"| fuzz: FuzzParse (./internal/money) | 120000 inputs in 15s | none failed | 0 | 0 | FuzzParse |", "what the rows prove"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("missing %q in\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), "noise") {
		t.Error("a line that is no row became one")
	}
	if err := os.WriteFile(in, []byte("nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runReliability(in, out); err == nil {
		t.Error("an input without rows was accepted")
	}
}
