package faults_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// The embedded NATS server shut down and started again on its storage while deposits
// flow; on the cluster, the node leading EVENTS and the KV buckets (state, players,
// leases) is SIGKILLed and started again. The dispatcher reconnects (or fails over to
// another node) and every receipt arrives; no partition stalls.
func TestNATSRestartedMidLoad(t *testing.T) {
	onEachNATS(t, false, func(t *testing.T, cluster bool) {
		players, events := scaled(5000), scaled(50000)
		s, hook, evs := receiptsOnNATS(t, cluster, players, events)
		stalls := s.watchStalls()
		published := make(chan struct{})
		go func() { defer close(published); s.publish(evs) }()

		s.waitDistinct(events/3, hook)
		down := time.Now()
		fault := "server shut down 3 s at a third of the load, started again on its storage"
		if cluster {
			victim, led := s.gatherLeaders()
			s.killNode(victim)
			time.Sleep(3 * time.Second)
			s.startNode(victim)
			fault = fmt.Sprintf("node %s SIGKILLed at a third of the load (leader of %s), started again 3 s later", s.nodes[victim].name, strings.Join(led, ", "))
		} else {
			s.stopNATS()
			time.Sleep(3 * time.Second)
			s.startNATS()
		}
		t.Logf("NATS down for %s at %d receipts: %s", time.Since(down).Round(100*time.Millisecond), distinctKeys(hook), fault)
		<-published
		s.waitDistinct(events, hook)
		time.Sleep(7 * time.Second) // redeliveries after the ack wait

		lost := s.checkExactly(t, events, hook)
		dups := checkDups(t, 1, hook)
		stall := stalls.check(t)
		row := "embedded NATS restarted mid-load"
		if cluster {
			row = "NATS node SIGKILLed mid-load (3-node cluster)"
		}
		bustest.Reliability(t, row, fmt.Sprintf("%d deposits -> %d receipts, %d players, 1 replica", events, events, players),
			fault, lost, dups, fmt.Sprintf("dispatcher and publisher reconnect; every duplicate with its decision id as Idempotency-Key; bound %d; longest stall %s", dupBound(1), stall))
	})
}
