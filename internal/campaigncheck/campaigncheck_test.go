package campaigncheck

import (
	"testing"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

func TestSpecNamesTheField(t *testing.T) {
	ok := func() *crmv1.CampaignSpec {
		return &crmv1.CampaignSpec{
			Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered"}},
			Steps: []crmv1.Step{
				{Name: "b", Branch: &crmv1.BranchStep{Cases: []crmv1.BranchCase{{When: "player.betCount > 0", Next: "x"}}}},
				{Name: "x", Exit: &crmv1.ExitStep{}},
			},
		}
	}
	if p := Spec(ok()); p != nil {
		t.Fatalf("a good spec: %v", p)
	}
	for _, tc := range []struct {
		field  string
		break_ func(*crmv1.CampaignSpec)
	}{
		{"spec.steps[b].branch.cases[0].when", func(s *crmv1.CampaignSpec) { s.Steps[0].Branch.Cases[0].When = "player.betCount >" }},
		{"spec.trigger.event.condition", func(s *crmv1.CampaignSpec) { s.Trigger.Event.Condition = "event.data.amount >" }},
		{"spec.trigger.schedule.cron", func(s *crmv1.CampaignSpec) {
			s.Trigger.Event, s.Trigger.Schedule = nil, &crmv1.ScheduleTrigger{Cron: "61 * * * *"}
		}},
		{"spec.trigger.schedule.timeZone", func(s *crmv1.CampaignSpec) {
			s.Trigger.Event, s.Trigger.Schedule = nil, &crmv1.ScheduleTrigger{Cron: "@daily", TimeZone: "Mars/Olympus"}
		}},
		{"spec.audience.rule", func(s *crmv1.CampaignSpec) { s.Audience = &crmv1.Audience{Rule: "player.nope("} }},
		{"spec.steps[x].next", func(s *crmv1.CampaignSpec) { s.Steps[1] = crmv1.Step{Name: "x", Next: "x", Delay: &crmv1.DelayStep{}} }},
	} {
		s := ok()
		tc.break_(s)
		if p := Spec(s); p == nil || p.Field != tc.field || p.Message == "" {
			t.Errorf("want a problem at %s, got %v", tc.field, p)
		}
	}
}
