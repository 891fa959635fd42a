package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// The missed-run policies, on a daily 10:00 Baku campaign created days ago, when the
// manager comes back at various times.
func TestMissedRunPolicies(t *testing.T) {
	baku, _ := time.LoadLocation("Asia/Baku")
	ten := time.Date(2026, 11, 22, 10, 0, 0, 0, baku)
	paused := func(c *crmv1.Campaign) { c.Spec.Paused = true }
	window := func(c *crmv1.Campaign) {
		start := metav1.NewTime(ten.Add(time.Hour))
		c.Spec.Window = &crmv1.TimeWindow{Start: &start}
	}
	for _, tc := range []struct {
		name      string
		policy    crmv1.MissedRunPolicy
		deadline  time.Duration
		at        time.Time
		mutate    func(*crmv1.Campaign)
		published bool
	}{
		{name: "on-time", policy: crmv1.MissedRunLatest, at: ten.Add(2 * time.Second), published: true},
		{name: "latest-within-deadline", policy: crmv1.MissedRunLatest, at: ten.Add(50 * time.Minute), published: true},
		{name: "latest-past-deadline", policy: crmv1.MissedRunLatest, at: ten.Add(61 * time.Minute), published: false},
		{name: "latest-custom-deadline", policy: crmv1.MissedRunLatest, deadline: 3 * time.Hour, at: ten.Add(150 * time.Minute), published: true},
		{name: "skip-on-time", policy: crmv1.MissedRunSkip, at: ten.Add(30 * time.Second), published: true},
		{name: "skip-late", policy: crmv1.MissedRunSkip, at: ten.Add(5 * time.Minute), published: false},
		{name: "paused", policy: crmv1.MissedRunLatest, at: ten.Add(time.Second), mutate: paused, published: false},
		{name: "before-window", policy: crmv1.MissedRunLatest, at: ten.Add(time.Second), mutate: window, published: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid := types.UID("uid-missed-" + tc.name)
			c := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "missed", Name: "daily-" + tc.name, UID: uid,
				CreationTimestamp: metav1.NewTime(ten.AddDate(0, 0, -3))},
				Spec: crmv1.CampaignSpec{Category: crmv1.CategoryMarketing,
					Trigger: crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *", TimeZone: "Asia/Baku", MissedRuns: tc.policy}}}}
			if tc.deadline > 0 {
				c.Spec.Trigger.Schedule.StartingDeadline = &metav1.Duration{Duration: tc.deadline}
			}
			if tc.mutate != nil {
				tc.mutate(c)
			}
			k := campaignKind{store: testStore}
			sched, err := cronParser.Parse("0 10 * * *")
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second pass finds the run dealt with
				if err := k.runDue(context.Background(), c, c.Spec.Trigger.Schedule, sched, tc.at); err != nil {
					t.Fatal(err)
				}
			}
			runs := bustest.Collect[bus.RunRequest](t, js, bus.StreamRuns, bus.RunSubject("missed", c.Name))
			if tc.published {
				if len(runs) != 1 || runs[0].RunID != bus.RunID(string(uid), ten) || c.Status.LastRunTime == nil || !c.Status.LastRunTime.Time.Equal(ten) {
					t.Fatalf("runs %+v, last run %v", runs, c.Status.LastRunTime)
				}
			} else if len(runs) != 0 || c.Status.LastRunTime != nil {
				t.Fatalf("runs %+v, last run %v", runs, c.Status.LastRunTime)
			}
			if tc.name != "before-window" && (c.Status.LastScheduleTime == nil || !c.Status.LastScheduleTime.Time.Equal(ten)) {
				t.Fatalf("last schedule %v", c.Status.LastScheduleTime)
			}
		})
	}
}
