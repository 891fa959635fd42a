package bustest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/freeport"
)

// childEnv makes a test binary a NATS server with the topology: "<data dir> <port>".
const childEnv = "CROUPIER_BENCH_NATS"

// ServeChild, called first in a TestMain, makes the process the NATS server Child started
// when the environment says so (it never returns then); otherwise it returns at once.
func ServeChild() {
	v := os.Getenv(childEnv)
	if v == "" {
		return
	}
	var dir string
	var port int
	if _, err := fmt.Sscan(v, &dir, &port); err != nil {
		panic(err)
	}
	s, err := bus.StartEmbedded(bus.EmbeddedOptions{DataDir: dir, Port: port})
	if err != nil {
		panic(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		panic(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := bus.EnsureTopology(context.Background(), js, bus.TopologyOptions{Partitions: 16}); err != nil {
		panic(err)
	}
	fmt.Println("ready")
	select {}
}

// Child runs a NATS server with the topology in a child process (the test binary, whose
// TestMain calls ServeChild), as production runs NATS beside the dispatchers, and connects
// to it: the CPU a benchmark reports is then its own, not the server's.
func Child(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	port := freeport.Port(tb)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", childEnv, tb.TempDir(), port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		tb.Fatalf("the NATS process: %q %v", line, err)
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
