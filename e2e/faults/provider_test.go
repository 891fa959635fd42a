package faults_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/internal/bustest"
)

// The primary webhook provider's port refuses connections for a minute while deposits
// arrive at a steady rate: receipts fail over to the second provider, return to the first
// once it is back, and none is lost.
func TestProviderDownForAMinute(t *testing.T) {
	onEachNATS(t, false, providerDown)
}

func providerDown(t *testing.T, cluster bool) {
	const (
		players  = 2000
		rate     = 200 // deposits a second
		duration = 90 * time.Second
		downAt   = 15 * time.Second
		downFor  = time.Minute
	)
	s := newStackOn(t, cluster)
	primary, backup := newSink(t), newSink(t)
	s.configure([]string{primary.endpoint(), backup.endpoint()}, receipts())
	s.register(players)
	s.start("d1")
	s.waitOwned(30*time.Second, "d1")
	stalls := s.watchStalls()

	start := time.Now()
	var downSince, upSince time.Time
	events := 0
	for sec := 0; time.Duration(sec)*time.Second < duration; sec++ {
		at := start.Add(time.Duration(sec) * time.Second)
		time.Sleep(time.Until(at))
		if downSince.IsZero() && time.Since(start) >= downAt {
			primary.stop()
			downSince = time.Now()
		}
		if upSince.IsZero() && !downSince.IsZero() && time.Since(downSince) >= downFor {
			primary.start()
			upSince = time.Now()
		}
		batch := make([]event, rate)
		for i := range rate {
			batch[i] = deposit(events+i, players)
		}
		s.publish(batch)
		events += rate
	}
	s.waitDistinct(events, primary, backup)
	time.Sleep(7 * time.Second)

	lost := s.checkExactly(t, events, primary, backup)
	firstAt := func(k *sink) (before, during, after int) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, at := range k.first {
			switch {
			case at.Before(downSince):
				before++
			case at.Before(upSince):
				during++
			default:
				after++
			}
		}
		return
	}
	pb, pd, pa := firstAt(primary)
	bb, bd, ba := firstAt(backup)
	if pd != 0 {
		t.Errorf("%d receipts reached the primary while it was down", pd)
	}
	if bd < rate*int(downFor/time.Second)/2 {
		t.Errorf("only %d receipts failed over to the backup during the minute down", bd)
	}
	if pa < rate*int((duration-downAt-downFor)/time.Second)/2 {
		t.Errorf("only %d receipts at the primary after it came back (backup %d): no recovery", pa, ba)
	}
	if bb != 0 {
		t.Errorf("%d receipts at the backup before the primary went down", bb)
	}
	// After recovery the backup only finishes jobs that were already between attempts.
	late := 0
	backup.mu.Lock()
	for _, at := range backup.first {
		if at.After(upSince.Add(5 * time.Second)) {
			late++
		}
	}
	backup.mu.Unlock()
	if late > 0 {
		t.Errorf("%d receipts still went to the backup more than 5 s after the primary was back", late)
	}
	dups := primary.duplicates() + backup.duplicates()
	pp, _, _ := primary.counts()
	bp, _, _ := backup.counts()
	both := pp + bp - distinctKeys(primary, backup) - dups
	t.Logf("%d deposits at %d/s; primary %d/%d/%d, backup %d/%d/%d (before/during/after the minute down); lost %d, duplicates %d, at both providers %d",
		events, rate, pb, pd, pa, bb, bd, ba, lost, dups, both)
	stall := stalls.check(t)
	bustest.Reliability(t, "a provider down for a minute"+where(cluster), fmt.Sprintf("%d deposits at %d/s -> receipts, 2 webhook providers", events, rate),
		"primary refuses connections for 60 s, then is back on the same port", lost, dups+both,
		fmt.Sprintf("failover: %d receipts via the second provider during the minute; recovery: %d via the primary after; longest stall %s", bd, pa, stall))
}
