package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// receiptsReach waits while campaign's distinct receipts grow until they reach n; it fails
// after 60 s without a new one.
func (s *stack) receiptsReach(hook *sink, campaign string, n int) {
	s.tb.Helper()
	last, since := -1, time.Now()
	for {
		got, _ := hook.perCampaign(campaign)
		if got >= n {
			return
		}
		if got != last {
			last, since = got, time.Now()
		}
		if time.Since(since) > 60*time.Second {
			s.tb.Fatalf("no new %s for 60 s: %d of %d\n%s", campaign, got, n, s.diagnose())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two dispatcher replicas, then four, then one of them SIGKILLed, while deposits flow
// into a service receipt (mandatory) and a marketing thank-you under a frequency cap of
// two a day and a budget: the partitions are handed over within seconds, every receipt
// arrives, no player gets more than two thank-yous and the budget is never exceeded.
func TestReplicasScaleAndOneKilled(t *testing.T) {
	onEachNATS(t, false, func(t *testing.T, cluster bool) {
		const (
			budgetMinor = 2000 // 20.00 AZN: 2,000 messages at 0.01
			capPerDay   = 2
		)
		players := scaled(2000)
		events := 5 * players // five deposits a player
		s := newStackOn(t, cluster)
		hook := newSink(t)
		s.configure([]string{hook.endpoint()}, receipts(), thanks(budgetMinor))
		s.register(players)
		s.start("r1")
		s.start("r2")
		s.waitOwned(30*time.Second, "r1", "r2")
		stalls := s.watchStalls()

		evs := make([]event, events)
		for i := range events {
			evs[i] = deposit(i, players)
		}
		s.publish(evs[:events/2])
		s.receiptsReach(hook, "deposit-receipt", events/5)

		s.start("r3")
		s.start("r4")
		scaledAt := time.Now()
		bustest.Eventually(t, 30*time.Second, "four replicas holding partitions", func() bool {
			held := map[string]int{}
			for _, o := range s.owners() {
				held[o]++
			}
			return len(held) == 4 && held["r1"]+held["r2"]+held["r3"]+held["r4"] == partitions
		})
		rebalance := time.Since(scaledAt)
		s.publish(evs[events/2 : 3*events/4])
		s.receiptsReach(hook, "deposit-receipt", events/2)

		s.mu.Lock()
		victim := s.procs["r2"]
		s.mu.Unlock()
		s.kill(victim)
		handover := s.waitOwned(30*time.Second, "r1", "r3", "r4")
		if handover > 3*leaseTTL+2*time.Second {
			t.Errorf("the killed replica's partitions were held again after %s; want within %s", handover, 3*leaseTTL+2*time.Second)
		}
		s.publish(evs[3*events/4:])
		s.receiptsReach(hook, "deposit-receipt", events)
		time.Sleep(7 * time.Second) // redeliveries after the ack wait, late thank-yous

		seen := hook.keys()
		lost := 0
		for i := range events {
			if seen[receiptKey(i)] == 0 {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%d receipts lost", lost)
		}
		sent, most := hook.perCampaign("deposit-thanks")
		if most > capPerDay {
			t.Errorf("a player got %d thank-yous; the frequency cap is %d a day", most, capPerDay)
		}
		if sent*messageCostMicros > budgetMinor*10000 {
			t.Errorf("%d thank-yous at 0.01 AZN: %.2f AZN spent of a %.2f AZN budget", sent, float64(sent)/100, float64(budgetMinor)/100)
		}
		if sent == 0 {
			t.Error("no thank-you sent at all")
		}
		dups := checkDups(t, 1, hook)
		stall := stalls.check(t)
		t.Logf("rebalance to 4 in %s, handover after the kill in %s; %d receipts, %d thank-yous (most %d a player), %d duplicate posts, longest stall %s",
			rebalance.Round(100*time.Millisecond), handover.Round(100*time.Millisecond), events-lost, sent, most, dups, stall)
		bustest.Reliability(t, "2 then 4 replicas, one SIGKILLed"+where(cluster), fmt.Sprintf("%d deposits, %d players: receipts + capped, budgeted marketing", events, players),
			fmt.Sprintf("scale 2->4 (balanced in %s), SIGKILL of one (partitions held again in %s)", rebalance.Round(100*time.Millisecond), handover.Round(100*time.Millisecond)),
			lost, dups, fmt.Sprintf("frequency cap 2/day: most %d a player; budget 20.00 AZN: %.2f AZN spent; longest stall %s", most, float64(sent)/100, stall))
	})
}

// A replica SIGKILLed at the moment another one joins: the joiner takes its share while
// the dead replica's leases run out; every receipt arrives, none stalls past the bar.
func TestKilledWhileAnotherJoins(t *testing.T) {
	onEachNATS(t, false, func(t *testing.T, cluster bool) {
		players, events := scaled(2000), scaled(20000)
		if quick() {
			events = scaled(10000)
		}
		s, hook, evs := receiptsOnNATS(t, cluster, players, events)
		s.start("d2")
		s.waitOwned(30*time.Second, "d1", "d2")
		stalls := s.watchStalls()
		published := make(chan struct{})
		go func() { defer close(published); s.publish(evs) }()
		s.waitDistinct(events/3, hook)
		s.mu.Lock()
		victim := s.procs["d1"]
		s.mu.Unlock()
		s.start("d3")
		s.kill(victim)
		handover := s.waitOwned(30*time.Second, "d2", "d3")
		<-published
		s.waitDistinct(events, hook)
		time.Sleep(7 * time.Second)
		lost := s.checkExactly(t, events, hook)
		dups := checkDups(t, 1, hook)
		stall := stalls.check(t)
		bustest.Reliability(t, "a replica SIGKILLed as another joins"+where(cluster), fmt.Sprintf("%d deposits -> %d receipts, %d players, 2 replicas", events, events, players),
			fmt.Sprintf("d3 started and d1 SIGKILLed at a third of the load (partitions held by d2+d3 in %s)", handover.Round(100*time.Millisecond)),
			lost, dups, fmt.Sprintf("bound %d; longest stall %s", dupBound(1), stall))
	})
}

// Three replicas started at the same moment race for the partitions: each ends with its
// share, every partition consumes, every receipt arrives.
func TestThreeReplicasStartedAtOnce(t *testing.T) {
	// The cluster scenario make test keeps (with the topology test); the others, the NATS
	// node kill among them, run on the cluster in make reliability.
	onEachNATS(t, true, func(t *testing.T, cluster bool) {
		players, events := scaled(2000), scaled(20000)
		if quick() {
			events = scaled(10000)
		}
		s := newStackOn(t, cluster)
		hook := newSink(t)
		s.configure([]string{hook.endpoint()}, receipts())
		s.register(players)
		for _, n := range []string{"a1", "a2", "a3"} {
			go s.start(n)
		}
		took := s.waitOwned(30*time.Second, "a1", "a2", "a3")
		stalls := s.watchStalls()
		evs := make([]event, events)
		for i := range events {
			evs[i] = deposit(i, players)
		}
		s.publish(evs)
		s.waitDistinct(events, hook)
		held := map[string]int{}
		for _, o := range s.owners() {
			held[o]++
		}
		time.Sleep(2 * time.Second)
		lost := s.checkExactly(t, events, hook)
		dups := checkDups(t, 0, hook)
		stall := stalls.check(t)
		bustest.Reliability(t, "three replicas started at once"+where(cluster), fmt.Sprintf("%d deposits -> %d receipts, %d players, 3 replicas", events, events, players),
			fmt.Sprintf("a1, a2, a3 started together; every partition held in %s (%v)", took.Round(100*time.Millisecond), held),
			lost, dups, fmt.Sprintf("longest stall %s", stall))
	})
}
