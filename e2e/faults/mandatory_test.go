package faults_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// The full-size version of the mandatory deadline (make reliability; make test runs the
// scaled one in dispatcher/app): with retryFor 5m, the only webhook provider is down for
// two minutes while receipts are decided: every receipt arrives after it is back and none
// is recorded failed. Then it goes down past the deadline: each receipt decided then is
// given up once at its deadline (one MandatoryUndelivered outcome, one dead letter) and
// none is sent after.
func TestMandatoryReceiptsOutlastAnOutage(t *testing.T) {
	if quick() {
		t.Skip("full-size outage (7+ minutes): make reliability")
	}
	onEachNATS(t, false, mandatoryOutage)
}

func mandatoryOutage(t *testing.T, cluster bool) {
	const retryFor = 5 * time.Minute
	players, n := 200, scaled(2000)
	s := bareStack(t, cluster)
	s.retryFor = retryFor
	s.up()
	hook := newSink(t)
	s.configure([]string{hook.endpoint()}, receipts())
	s.register(players)
	s.start("d1")
	s.waitOwned(30*time.Second, "d1")

	// Down for two minutes while the first half is decided.
	hook.stop()
	downAt := time.Now()
	first := make([]event, n/2)
	for i := range first {
		first[i] = deposit(i, players)
	}
	s.publish(first)
	time.Sleep(time.Until(downAt.Add(2 * time.Minute)))
	hook.start()
	s.waitDistinct(len(first), hook)
	lost := s.checkExactly(t, len(first), hook)
	failed := s.outcomesWith(flow.ReasonMandatoryUndelivered, "AllChannelsFailed")
	if len(failed) > 0 {
		t.Errorf("%d receipts recorded failed or undelivered during an outage shorter than retryFor", len(failed))
	}
	rounds := len(s.outcomesWith(flow.ReasonRetryScheduled))

	// Down past the deadline while the second half is decided.
	hook.stop()
	second := make([]event, n-n/2)
	for i := range second {
		second[i] = deposit(n/2+i, players)
	}
	s.publish(second)
	var undelivered []bus.Outcome
	last, since := -1, time.Now()
	for {
		undelivered = s.outcomesWith(flow.ReasonMandatoryUndelivered)
		if len(undelivered) >= len(second) {
			break
		}
		if len(undelivered) != last {
			last, since = len(undelivered), time.Now()
		}
		if time.Since(since) > retryFor+2*time.Minute {
			t.Fatalf("%d of %d receipts given up, no progress for %s", len(undelivered), len(second), time.Since(since).Round(time.Second))
		}
		time.Sleep(5 * time.Second)
	}
	per := map[string]int{}
	for _, o := range undelivered {
		per[o.DecisionID]++
	}
	twice := 0
	for _, c := range per {
		if c > 1 {
			twice++
		}
	}
	dead := 0
	s.scan(bus.StreamDeadLetter, bus.DeadLetterSubject(bus.StreamIntents), func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		if strings.Contains(string(m.Data()), flow.ReasonMandatoryUndelivered) {
			dead++
		}
	})
	if len(per) != len(second) || twice > 0 || dead != len(second) {
		t.Errorf("given up: %d distinct of %d (%d more than once), %d dead letters", len(per), len(second), twice, dead)
	}
	before, _, _ := hook.counts()
	hook.start()
	time.Sleep(10 * time.Second)
	if after, _, _ := hook.counts(); after != before {
		t.Errorf("%d receipts sent after they were given up", after-before)
	}
	t.Logf("outage 2m < retryFor %s: %d receipts, lost %d, %d retry rounds scheduled; outage past it: %d undelivered, %d dead letters", retryFor, len(first), lost, rounds, len(per), dead)
	bustest.Reliability(t, "mandatory receipts through a provider outage"+where(cluster), fmt.Sprintf("%d deposits -> service receipts, 1 webhook provider, retryFor %s", n, retryFor),
		"provider down 2 min, then down past the deadline", lost, 0,
		fmt.Sprintf("all %d delivered after a 2-minute outage (%d retry rounds); %d given up once each at the deadline, %d dead letters", len(first), rounds, len(per), dead))
}

// outcomesWith are the OUTCOMES records with one of the reasons.
func (s *stack) outcomesWith(reasons ...string) []bus.Outcome {
	var out []bus.Outcome
	s.scan(bus.StreamOutcomes, "", func(m jetstream.Msg, _ *jetstream.MsgMetadata) {
		o, err := bus.Decode[bus.Outcome](m.Data())
		if err != nil {
			return
		}
		for _, r := range reasons {
			if o.Reason == r {
				out = append(out, o)
			}
		}
	})
	return out
}
