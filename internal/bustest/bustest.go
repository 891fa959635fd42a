// Package bustest starts a real embedded NATS server with the Croupier topology for tests.
package bustest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Server is an embedded server with the topology ensured.
type Server struct {
	*server.Server
	Partitions int
}

// Start starts a server with file storage in a temporary directory and ensures the
// topology with the given partition count. It stops when the test ends.
func Start(t testing.TB, partitions int) *Server {
	t.Helper()
	srv := StartBare(t)
	srv.Partitions = partitions
	_, js := srv.Connect(t)
	if _, err := bus.EnsureTopology(context.Background(), js, bus.TopologyOptions{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// StartIn starts a server on the data in dir (to restart one) and ensures the topology.
// It stops when the test ends or when the caller shuts it down.
func StartIn(t testing.TB, dir string, partitions int) *Server {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	srv := &Server{Server: s, Partitions: partitions}
	_, js := srv.Connect(t)
	if _, err := bus.EnsureTopology(context.Background(), js, bus.TopologyOptions{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// StartBare starts a server without the topology (for tests of the topology itself).
func StartBare(t testing.TB) *Server {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return &Server{Server: s}
}

// Connect opens a client connection closed at the end of the test.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := bus.ConnectEmbedded(s.Server, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// KV opens a bucket.
func KV(t testing.TB, js jetstream.JetStream, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// Eventually fails the test unless cond becomes true within the given time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// AssertNowhere scans every message of every stream, KV buckets included, and reports
// each one that still holds s.
func AssertNowhere(t testing.TB, js jetstream.JetStream, s string) {
	t.Helper()
	ctx := context.Background()
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			if bytes.Contains(m.Data, []byte(s)) {
				t.Errorf("stream %s seq %d (%s) still holds %q", name, seq, m.Subject, s)
			}
		}
	}
}

// Reliability prints a row of docs/reliability.md (what, load held, faults or inputs,
// lost, duplicated, what held) and, when CROUPIER_RELIABILITY_OUT names a file (make
// reliability), appends it there.
func Reliability(tb testing.TB, row, load, faults string, lost, dups int, held string) {
	// make reliability RUNS=n numbers each run's rows (CROUPIER_RELIABILITY_RUN).
	if run := os.Getenv("CROUPIER_RELIABILITY_RUN"); run != "" {
		row = "run " + run + ": " + row
	}
	line := fmt.Sprintf("%s | %s | %s | %d | %d | %s", row, load, faults, lost, dups, held)
	tb.Log("reliability: " + line)
	if path := os.Getenv("CROUPIER_RELIABILITY_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			tb.Errorf("writing the reliability row: %v", err)
			return
		}
		defer f.Close()
		_, _ = fmt.Fprintln(f, line)
	}
}
