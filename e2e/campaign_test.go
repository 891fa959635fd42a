package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/manifests"
)

// applyCampaign applies one Campaign of testdata/brand.yaml.
func applyCampaign(t *testing.T, ns, name string) {
	t.Helper()
	objs, err := manifests.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == "Campaign" && u.GetName() == name {
			u.SetNamespace(ns)
			if err := k8s.Create(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no Campaign %s in testdata", name)
}

func runsOf(t *testing.T, ns, name string) []bus.RunRequest {
	return collect[bus.RunRequest](t, bus.StreamRuns, bus.RunSubject(ns, name))
}

// A daily 10:00 Baku campaign: the manager's clock is set three seconds before the next
// 10:00 in Baku; the run is published once, at that time, with the run id of the
// campaign UID and the scheduled time; every one of 10,000 Segment members gets exactly
// one intent, one decision and one in-app message, and the status counts them. A repeated
// reconcile that lost the status publishes the same run id, which changes nothing.
func TestCronCampaignFiresOnceAtBakuTimeForTenThousandPlayers(t *testing.T) {
	ns := brand(t)
	startDispatcher(t)
	const players = 10000
	for i := range players {
		publishEvent(t, ns, fmt.Sprintf("p-%05d", i), "player.registered", fmt.Sprintf("reg-%d", i), registration(""))
	}
	<-js.PublishAsyncComplete()
	eventually(t, 60*time.Second, "the Segment's member count in status", func() bool {
		var s crmv1.Segment
		return k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "az-players"}, &s) == nil &&
			s.Status.MemberCount != nil && *s.Status.MemberCount == players && s.Status.LastEvaluationTime != nil
	})

	baku, _ := time.LoadLocation("Asia/Baku")
	base := time.Now().Add(time.Hour).In(baku)
	due := time.Date(base.Year(), base.Month(), base.Day(), 10, 0, 0, 0, baku)
	if !due.After(base) {
		due = due.AddDate(0, 0, 1)
	}
	clock.set(due.Add(-3 * time.Second))
	t.Cleanup(clock.reset)
	applyCampaign(t, ns, "daily-spins")
	var c *crmv1.Campaign
	eventually(t, 10*time.Second, "the next run at 10:00 Baku", func() bool {
		c = campaign(t, ns, "daily-spins")
		return c.Status.NextRunTime != nil && c.Status.NextRunTime.Time.Equal(due)
	})
	if c.Status.Phase != crmv1.PhaseScheduled {
		t.Fatalf("phase %s before the run", c.Status.Phase)
	}
	if n := len(runsOf(t, ns, "daily-spins")); n != 0 {
		t.Fatalf("%d runs before 10:00", n)
	}
	eventually(t, 15*time.Second, "the run published", func() bool {
		c = campaign(t, ns, "daily-spins")
		return c.Status.LastRunTime != nil
	})
	if !c.Status.LastRunTime.Time.Equal(due) {
		t.Fatalf("last run %s, want %s", c.Status.LastRunTime, due)
	}
	runs := runsOf(t, ns, "daily-spins")
	if len(runs) != 1 || runs[0].RunID != bus.RunID(string(c.UID), due) || !runs[0].ScheduledTime.Equal(due) {
		t.Fatalf("runs %+v", runs)
	}
	if next := c.Status.NextRunTime; next == nil || !next.Time.Equal(due.AddDate(0, 0, 1)) {
		t.Fatalf("next run %v", next)
	}
	eventually(t, 90*time.Second, "every member's message sent and counted", func() bool {
		c = campaign(t, ns, "daily-spins")
		return c.Status.Counters != nil && c.Status.Counters.Targeted == players && c.Status.Counters.Sent == players
	})
	// The same sends, per channel, in the same status write.
	var perChannel int64
	for _, ch := range c.Status.Channels {
		perChannel += ch.Sent
	}
	if perChannel != players {
		t.Fatalf("sent per channel %+v, want %d in all", c.Status.Channels, players)
	}

	// A reconcile that lost the status (a new leader reading a stale cache) publishes the
	// same run again: RUNS keeps one, and no owner expands it twice.
	before := c.DeepCopy()
	c.Status.LastRunTime, c.Status.LastScheduleTime = nil, nil
	if err := k8s.Status().Patch(context.Background(), c, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	c = campaign(t, ns, "daily-spins")
	before = c.DeepCopy()
	c.Spec.Description = "daily free spins, edited to force a reconcile"
	if err := k8s.Patch(context.Background(), c, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reconcile after the edit", func() bool {
		c = campaign(t, ns, "daily-spins")
		return c.Status.LastRunTime != nil && c.Status.ObservedGeneration == c.Generation
	})
	time.Sleep(time.Second)
	if n := len(runsOf(t, ns, "daily-spins")); n != 1 {
		t.Fatalf("%d runs stored after the repeated publish", n)
	}
	intents := map[string]int{}
	for _, it := range collect[bus.Intent](t, bus.StreamIntents, bus.Root+".intents."+ns+".>") {
		intents[it.Player]++
	}
	decisions := map[string]int{}
	for _, o := range outcomes(t, ns) {
		if o.Kind == bus.OutcomeDecision && o.Campaign == "daily-spins" {
			decisions[o.Player]++
		}
	}
	if len(intents) != players || len(decisions) != players {
		t.Fatalf("%d players with intents, %d with decisions; want %d", len(intents), len(decisions), players)
	}
	for p, n := range intents {
		if n != 1 || decisions[p] != 1 {
			t.Fatalf("player %s: %d intents, %d decisions", p, n, decisions[p])
		}
	}
	if c.Status.Counters.Targeted != players {
		t.Fatalf("targeted %d after the repeated run", c.Status.Counters.Targeted)
	}
}

// An event-triggered campaign reacts to a deposit within a second; a deposit its CEL
// condition refuses starts nothing.
func TestEventCampaignReactsWithinASecond(t *testing.T) {
	ns := brand(t, "deposit-receipt")
	startDispatcher(t)
	publishEvent(t, ns, "p-1", "player.registered", "reg-1", registration(""))
	publishEvent(t, ns, "p-1", "deposit.completed", "dep-small", `{"amount":"5.00","currency":"AZN","method":"card","depositId":"d0"}`)
	<-js.PublishAsyncComplete()
	eventually(t, 10*time.Second, "the registration and the small deposit applied", func() bool {
		e, err := kv(t, bus.BucketPlayers).Get(context.Background(), bus.PlayerKey(ns, bus.Partition("p-1", partitions), "p-1"))
		return err == nil && strings.Contains(string(e.Value()), `"depositCount":1`)
	})
	sent := time.Now()
	publishEvent(t, ns, "p-1", "deposit.completed", "dep-1", `{"amount":"50.00","currency":"AZN","method":"card","depositId":"d1"}`)
	var attempt *bus.Outcome
	eventually(t, 10*time.Second, "the receipt sent", func() bool {
		for _, o := range outcomes(t, ns) {
			if o.Kind == bus.OutcomeAttempt && o.Campaign == "deposit-receipt" {
				attempt = &o
				return true
			}
		}
		return false
	})
	if took := attempt.Time.Sub(sent); took > time.Second {
		t.Fatalf("the receipt went out %s after the deposit", took)
	}
	n := 0
	for _, o := range outcomes(t, ns) {
		if o.Kind == bus.OutcomeDecision && o.Campaign == "deposit-receipt" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d decisions: the 5.00 deposit should not have triggered", n)
	}
}

// A drip chain parked at a delay survives a dispatcher restart: the delay is a NATS
// message schedule, and the next dispatcher resumes the flow from croupier-state.
func TestDripChainSurvivesADispatcherRestart(t *testing.T) {
	ns := brand(t, "welcome-drip")
	stop := startDispatcher(t)
	publishEvent(t, ns, "p-1", "player.registered", "reg-1", registration(""))
	<-js.PublishAsyncComplete()
	sentSteps := func() []string {
		var steps []string
		for _, o := range outcomes(t, ns) {
			if o.Kind == bus.OutcomeAttempt && o.Campaign == "welcome-drip" && o.Result == "sent" {
				steps = append(steps, o.Step)
			}
		}
		return steps
	}
	eventually(t, 10*time.Second, "the first message", func() bool { return len(sentSteps()) == 1 })
	stop()
	time.Sleep(5 * time.Second) // the delay passes while no dispatcher runs
	if got := sentSteps(); len(got) != 1 {
		t.Fatalf("sent %v with no dispatcher", got)
	}
	startDispatcher(t)
	eventually(t, 20*time.Second, "the follow-up after the restart", func() bool { return len(sentSteps()) == 2 })
	time.Sleep(time.Second)
	if got := sentSteps(); len(got) != 2 || got[0] != "hello" || got[1] != "follow-up" {
		t.Fatalf("sent steps %v", got)
	}
}

// The responsible-gaming samples are mandatory: a self-excluded player who refused every
// marketing message still gets the soft warning when a limit is 80% used and the hard
// notice when it is exceeded; a limit half used starts nothing.
func TestResponsibleGamingSamplesReachASelfExcludedPlayer(t *testing.T) {
	ns := applyBrand(t, filepath.Join("..", "config", "samples"), "limit-approaching", "limit-exceeded")
	startDispatcher(t)
	publishEvent(t, ns, "p-1", "player.registered", "reg-1", registration(""))
	publishEvent(t, ns, "p-1", "selfexclusion.started", "se-1", `{"until":"2027-11-22T00:00:00Z"}`)
	publishEvent(t, ns, "p-1", "limit.approaching", "la-1", `{"limitType":"deposit","period":"day","limit":"100.00","used":"50.00"}`)
	publishEvent(t, ns, "p-1", "limit.approaching", "la-2", `{"limitType":"deposit","period":"day","limit":"100.00","used":"90.00"}`)
	publishEvent(t, ns, "p-1", "limit.exceeded", "le-1", `{"limitType":"deposit","period":"day","limit":"100.00","used":"104.00","blocked":true}`)
	<-js.PublishAsyncComplete()
	sent := func() map[string]int {
		out := map[string]int{}
		for _, o := range outcomes(t, ns) {
			if o.Kind == bus.OutcomeAttempt && o.Result == "sent" {
				out[o.Campaign]++
			}
		}
		return out
	}
	eventually(t, 15*time.Second, "the warning and the notice", func() bool {
		s := sent()
		return s["limit-approaching"] == 1 && s["limit-exceeded"] == 1
	})
	time.Sleep(500 * time.Millisecond)
	if s := sent(); s["limit-approaching"] != 1 || s["limit-exceeded"] != 1 {
		t.Fatalf("sent %v", s)
	}
}
