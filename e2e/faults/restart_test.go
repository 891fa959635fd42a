package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// The embedded NATS server shut down and started again on its storage while 50,000
// deposits flow: the dispatcher reconnects and every receipt arrives.
func TestNATSRestartedMidLoad(t *testing.T) {
	const (
		players = 5000
		events  = 50000
	)
	s, hook, evs := receiptsOn(t, players, events)
	published := make(chan struct{})
	go func() { defer close(published); s.publish(evs) }()

	s.waitDistinct(3*time.Minute, events/3, hook)
	down := time.Now()
	s.stopNATS()
	time.Sleep(3 * time.Second)
	s.startNATS()
	t.Logf("NATS down for %s at %d receipts", time.Since(down).Round(100*time.Millisecond), distinctKeys(hook))
	<-published
	s.waitDistinct(5*time.Minute, events, hook)
	time.Sleep(7 * time.Second) // redeliveries after the ack wait

	lost := checkExactly(t, events, hook)
	dups := hook.duplicates()
	if dups > inFlight {
		t.Errorf("%d duplicate posts after one restart; at most the in-flight limit %d", dups, inFlight)
	}
	bustest.Reliability(t, "embedded NATS restarted mid-load", fmt.Sprintf("%d deposits -> %d receipts, %d players, 1 replica", events, events, players),
		"server shut down 3 s at a third of the load, started again on its storage", lost, dups,
		"dispatcher and publisher reconnect; every duplicate with its decision id as Idempotency-Key")
}
