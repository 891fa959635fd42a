package faults_test

import (
	"fmt"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// receiptKey is the Idempotency-Key of deposit i's receipt: its decision id and channel.
func receiptKey(i int) string {
	return route.DecisionID(fmt.Sprintf("uid-receipt/pam.baku/d-%d/send", i)) + "." + string(crmv1.ChannelWebhook)
}

// checkExactly fails unless the sinks together saw exactly the receipts of deposits
// 0..n-1 (none lost, none foreign); it returns how many were lost.
func (s *stack) checkExactly(t *testing.T, n int, sinks ...*sink) (lost int) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range sinks {
		for key := range k.keys() {
			seen[key] = true
		}
	}
	var missing []int
	for i := range n {
		if !seen[receiptKey(i)] {
			missing = append(missing, i)
		}
	}
	lost = len(missing)
	if lost > 0 {
		t.Errorf("%d of %d receipts lost; what the streams hold of the first of them:\n%s", lost, n, s.trace(missing[:min(len(missing), 5)]))
	}
	if len(seen) != n-lost {
		t.Errorf("%d distinct keys at the sinks, %d expected: keys that are no receipt's", len(seen), n-lost)
	}
	for _, k := range sinks {
		if _, _, mm := k.counts(); mm > 0 {
			t.Errorf("%d posts whose Idempotency-Key was not their decision id", mm)
		}
	}
	return lost
}

// dupBound is the most duplicate posts kills may cause: per kill, the jobs a channel
// worker had in flight (--delivery-in-flight) and the events each partition owner had
// decided but not acknowledged (--batch per partition), whose jobs are published again
// with the same decision id.
func dupBound(kills int) int { return kills * (inFlight + batch*partitions) }

// where names the NATS set-up in a reliability row.
func where(cluster bool) string {
	if cluster {
		return " (3-node cluster)"
	}
	return ""
}

// checkDups fails when the duplicates exceed the bound and returns them.
func checkDups(t *testing.T, kills int, sinks ...*sink) int {
	t.Helper()
	dups := 0
	for _, k := range sinks {
		dups += k.duplicates()
	}
	if dups > dupBound(kills) {
		t.Errorf("%d duplicate posts after %d kills; at most %d = %d x (in-flight %d + batch %d x %d partitions)", dups, kills, dupBound(kills), kills, inFlight, batch, partitions)
	}
	return dups
}

// The dispatcher SIGKILLed ten times while 100,000 deposits flow: every receipt arrives;
// a receipt posted twice (sent, then killed before its outcome was stored) carries the same
// Idempotency-Key both times, and there are at most dupBound of them.
func TestDispatcherKilledTenTimesUnderLoad(t *testing.T) {
	onEachNATS(t, false, func(t *testing.T, cluster bool) {
		const kills = 10
		players, events := scaled(10000), scaled(100000)
		if quick() {
			players, events = scaled(5000), scaled(50000)
		}
		s, hook, evs := receiptsOnNATS(t, cluster, players, events)
		stalls := s.watchStalls()
		published := make(chan struct{})
		go func() { defer close(published); s.publish(evs) }()

		start := time.Now()
		for k := 1; k <= kills; k++ {
			// Kill when the k-th eleventh of the receipts has arrived: the kills are spread
			// over the whole load.
			s.waitDistinct(k*events/(kills+1), hook)
			s.mu.Lock()
			p := s.procs["d1"]
			s.mu.Unlock()
			s.kill(p)
			time.Sleep(200 * time.Millisecond)
			s.start("d1")
		}
		<-published
		s.waitDistinct(events, hook)
		took := time.Since(start)
		// Redeliveries of jobs in flight at the last kill come after the ack wait (5s).
		time.Sleep(8 * time.Second)

		lost := s.checkExactly(t, events, hook)
		dups := checkDups(t, kills, hook)
		// Every duplicate was a second post of a key the sink had: a sink that honours
		// Idempotency-Key (the header carries the decision id) counts each receipt once.
		if honoured := distinctKeys(hook); honoured != events {
			t.Errorf("a sink honouring Idempotency-Key would have counted %d receipts, want %d", honoured, events)
		}
		stall := stalls.check(t)
		noContact(t, s.logs(), "depozit qəbul edildi")
		t.Logf("%d events, %d kills in %s: lost %d, %d duplicate posts (bound %d), longest stall %s", events, kills, took.Round(time.Second), lost, dups, dupBound(kills), stall)
		bustest.Reliability(t, "dispatcher SIGKILLed 10 times"+where(cluster), fmt.Sprintf("%d deposits -> %d receipts, %d players, 1 replica", events, events, players),
			fmt.Sprintf("%d SIGKILLs, restarted 200 ms later", kills), lost, dups,
			fmt.Sprintf("every duplicate with its decision id as Idempotency-Key (0 at an honouring sink); bound %d; longest stall %s", dupBound(kills), stall))
	})
}
