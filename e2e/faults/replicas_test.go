package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// Two dispatcher replicas, then four, then one of them SIGKILLed, while deposits flow
// into a service receipt (mandatory) and a marketing thank-you under a frequency cap of
// two a day and a budget: the partitions are handed over within seconds, every receipt
// arrives, no player gets more than two thank-yous and the budget is never exceeded.
func TestReplicasScaleAndOneKilled(t *testing.T) {
	const (
		players     = 2000
		events      = 10000 // five deposits a player
		budgetMinor = 2000  // 20.00 AZN: 2,000 messages at 0.01
		capPerDay   = 2
	)
	s := newStack(t)
	hook := newSink(t)
	s.configure([]string{hook.endpoint()}, receipts(), thanks(budgetMinor))
	s.register(players)
	s.start("r1")
	s.start("r2")
	s.waitOwned(30*time.Second, "r1", "r2")

	evs := make([]event, events)
	for i := range events {
		evs[i] = deposit(i, players)
	}
	receiptsOf := func() int { n, _ := hook.perCampaign("deposit-receipt"); return n }
	s.publish(evs[:events/2])
	bustest.Eventually(t, 2*time.Minute, "a fifth of the receipts", func() bool { return receiptsOf() >= events/5 })

	s.start("r3")
	s.start("r4")
	scaled := time.Now()
	bustest.Eventually(t, 30*time.Second, "four replicas holding partitions", func() bool {
		held := map[string]int{}
		for _, o := range s.owners() {
			held[o]++
		}
		return len(held) == 4 && held["r1"]+held["r2"]+held["r3"]+held["r4"] == partitions
	})
	rebalance := time.Since(scaled)
	s.publish(evs[events/2 : 3*events/4])
	bustest.Eventually(t, 2*time.Minute, "half of the receipts", func() bool { return receiptsOf() >= events/2 })

	s.mu.Lock()
	victim := s.procs["r2"]
	s.mu.Unlock()
	s.kill(victim)
	handover := s.waitOwned(30*time.Second, "r1", "r3", "r4")
	if handover > 3*leaseTTL+2*time.Second {
		t.Errorf("the killed replica's partitions were held again after %s; want within %s", handover, 3*leaseTTL+2*time.Second)
	}
	s.publish(evs[3*events/4:])
	bustest.Eventually(t, 3*time.Minute, "every receipt", func() bool { return receiptsOf() >= events })
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
	dups := hook.duplicates()
	t.Logf("rebalance to 4 in %s, handover after the kill in %s; %d receipts, %d thank-yous (most %d a player), %d duplicate posts",
		rebalance.Round(100*time.Millisecond), handover.Round(100*time.Millisecond), events-lost, sent, most, dups)
	bustest.Reliability(t, "2 then 4 replicas, one SIGKILLed", fmt.Sprintf("%d deposits, %d players: receipts + capped, budgeted marketing", events, players),
		fmt.Sprintf("scale 2->4 (balanced in %s), SIGKILL of one (partitions held again in %s)", rebalance.Round(100*time.Millisecond), handover.Round(100*time.Millisecond)),
		lost, dups, fmt.Sprintf("frequency cap 2/day: most %d a player; budget 20.00 AZN: %.2f AZN spent", most, float64(sent)/100))
}
