package faults_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// A dispatcher started before NATS is reachable waits instead of exiting: it logs each
// attempt, answers /healthz ok and /readyz 503 naming the wait, and once NATS starts it
// ensures the topology, becomes ready and takes every partition.
func TestDispatcherStartedBeforeNATS(t *testing.T) {
	s := bareStack(t, false)
	healthAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := s.startWith("d1", "--http-bind-address", healthAddr)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + healthAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Several attempts, and the process still running.
	bustest.Eventually(t, time.Minute, "three logged attempts to reach NATS", func() bool {
		return strings.Count(s.logs(), `"msg":"waiting for NATS`) >= 3
	})
	select {
	case <-p.done:
		t.Fatalf("the dispatcher exited while NATS was unreachable:\n%s", s.logs())
	default:
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for NATS") {
		t.Errorf("/readyz before NATS: %d %q; want 503 naming the wait", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before NATS: %d; want 200 (the process is alive)", code)
	}
	s.up()
	bustest.Eventually(t, 2*time.Minute, "/readyz ok after NATS started", func() bool {
		code, _ := get("/readyz")
		return code == http.StatusOK
	})
	s.waitOwned(time.Minute, "d1")
	if !strings.Contains(s.logs(), `"msg":"NATS topology ensured"`) {
		t.Errorf("no log line says the topology was ensured:\n%s", s.logs())
	}
}
