package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

func validCampaign(ns, name string) *crmv1.Campaign {
	return &crmv1.Campaign{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryMarketing,
			Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "deposit.completed"}},
			Steps: []crmv1.Step{
				{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}},
				{Name: "bonus", Grant: &crmv1.GrantStep{Reward: "spins"}},
			},
			Contents: []crmv1.Content{{Name: "hello", Messages: []crmv1.Message{
				{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Salam", Body: "Bonus sizi gözləyir"},
				{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Salam", Body: "Bonus sizi gözləyir"},
			}}},
			Rewards: []crmv1.Reward{{Name: "spins", FreeSpins: &crmv1.FreeSpinsReward{Game: "book-of-ra", Count: 10, SpinValue: crmv1.Money{Amount: "0.20", Currency: "AZN"}}}},
			Budget:  &crmv1.Budget{Total: &crmv1.Money{Amount: "1000.00", Currency: "AZN"}},
		},
	}
}

func validReport(ns, name string) *crmv1.Report {
	return &crmv1.Report{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: crmv1.ReportSpec{
		Schedule:   crmv1.ReportSchedule{Cron: "0 8 * * 1", TimeZone: "Asia/Baku"},
		Recipients: []string{"cfo@baku-casino.example"}, Formats: []crmv1.ReportFormat{crmv1.ReportPDF}}}
}

func validPreferencePolicy(ns, name string) *crmv1.PreferencePolicy {
	return &crmv1.PreferencePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: crmv1.PreferencePolicySpec{Categories: []crmv1.CategoryPolicy{
			{Category: crmv1.CategoryMarketing, Channels: []crmv1.CategoryChannel{{Channel: crmv1.ChannelPush}}},
			{Category: crmv1.CategoryService, Channels: []crmv1.CategoryChannel{{Channel: crmv1.ChannelSMS}},
				QuietHours: &crmv1.QuietHours{Start: "23:00", End: "08:00", Action: crmv1.QuietHoursBypass},
				RetryFor:   &metav1.Duration{Duration: 30 * time.Minute}},
		}},
	}
}

func validChannelPolicy(ns, name string, ch crmv1.Channel, typ crmv1.ProviderType) *crmv1.ChannelPolicy {
	return &crmv1.ChannelPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: crmv1.ChannelPolicySpec{Channel: ch, Providers: []crmv1.Provider{
			{Name: "primary", Type: typ, Endpoint: "https://provider.example.az/send", Cost: &crmv1.Money{Amount: "0.035", Currency: "AZN"}},
		}},
	}
}

// TestInvalidManifestsAreRejected applies manifests the API server must refuse, each with
// the message a marketer reads.
func TestInvalidManifestsAreRejected(t *testing.T) {
	ns := newNamespace(t)
	camp := func(name string, mutate func(*crmv1.Campaign)) client.Object {
		c := validCampaign(ns, name)
		mutate(c)
		return c
	}
	pref := func(name string, mutate func(*crmv1.PreferencePolicy)) client.Object {
		p := validPreferencePolicy(ns, name)
		mutate(p)
		return p
	}
	chp := func(name string, mutate func(*crmv1.ChannelPolicy)) client.Object {
		p := validChannelPolicy(ns, name, crmv1.ChannelSMS, crmv1.ProviderSMSRest)
		mutate(p)
		return p
	}
	rpt := func(name string, mutate func(*crmv1.Report)) client.Object {
		r := validReport(ns, name)
		mutate(r)
		return r
	}
	cases := []struct {
		name string
		obj  client.Object
		want string
	}{
		{"report without recipients", rpt("r1", func(r *crmv1.Report) { r.Spec.Recipients = []string{} }), "spec.recipients"},
		{"report recipient not an address", rpt("r2", func(r *crmv1.Report) { r.Spec.Recipients = []string{"cfo at casino"} }), `spec.recipients[0]: Invalid value: "cfo at casino"`},
		{"report format unknown", rpt("r3", func(r *crmv1.Report) { r.Spec.Formats = []crmv1.ReportFormat{"DOCX"} }), `spec.formats[0]: Unsupported value: "DOCX"`},
		{"report without formats", rpt("r4", func(r *crmv1.Report) { r.Spec.Formats = []crmv1.ReportFormat{} }), "spec.formats"},
		{"report section unknown", rpt("r5", func(r *crmv1.Report) { r.Spec.Contents = []crmv1.ReportContent{"gossip"} }), `spec.contents[0]: Unsupported value: "gossip"`},
		{"report period unknown", rpt("r6", func(r *crmv1.Report) { r.Spec.Period = "fortnight" }), `spec.period: Unsupported value: "fortnight"`},
		{"report name with a dot", rpt("r.7", func(*crmv1.Report) {}), "Report names must not contain dots"},
		{"two triggers", camp("c1", func(c *crmv1.Campaign) {
			c.Spec.Trigger.Schedule = &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}
		}), "trigger needs exactly one of event or schedule"},
		{"zero entries per player", camp("c2e", func(c *crmv1.Campaign) { c.Spec.Trigger.Event.MaxEntriesPerPlayer = ptr.To[int32](0) }),
			"spec.trigger.event.maxEntriesPerPlayer: Invalid value: 0: spec.trigger.event.maxEntriesPerPlayer in body should be greater than or equal to 1"},
		{"multi-use coupon without a code", camp("c2c", func(c *crmv1.Campaign) {
			c.Spec.Rewards = append(c.Spec.Rewards, crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "p", MultiUse: true, Value: crmv1.Money{Amount: "1.00", Currency: "AZN"}}})
		}), "a multi-use coupon needs its shared code; generated codes are single-use"},
		{"maxUses on a generated code", camp("c2d", func(c *crmv1.Campaign) {
			c.Spec.Rewards = append(c.Spec.Rewards, crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "p", MaxUses: ptr.To[int32](5), Value: crmv1.Money{Amount: "1.00", Currency: "AZN"}}})
		}), "maxUses applies to multi-use coupons"},
		{"no trigger", camp("c2", func(c *crmv1.Campaign) { c.Spec.Trigger.Event = nil }), "trigger needs exactly one of event or schedule"},
		{"weights do not sum to 100", camp("c3", func(c *crmv1.Campaign) {
			c.Spec.Experiment = &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 30}}, ControlPercent: 10, GoalEvent: "deposit.completed"}
		}), "variant weights plus controlPercent must sum to 100"},
		{"an attribution window of 120 days", pref("p-attr", func(p *crmv1.PreferencePolicy) {
			p.Spec.Attribution = &crmv1.Attribution{WindowDays: 120}
		}), "spec.attribution.windowDays"},
		{"an attribution model that is none", pref("p-attr2", func(p *crmv1.PreferencePolicy) {
			p.Spec.Attribution = &crmv1.Attribution{Model: "FirstTouch"}
		}), "spec.attribution.model"},
		{"a goal beside an experiment", camp("c3g", func(c *crmv1.Campaign) {
			c.Spec.Experiment = &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 100}}, GoalEvent: "deposit.completed"}
			c.Spec.Goal = &crmv1.Goal{Event: "deposit.completed"}
		}), "goal is for campaigns without an experiment"},
		{"a goal window that is no duration", camp("c3w", func(c *crmv1.Campaign) {
			c.Spec.Goal = &crmv1.Goal{Event: "deposit.completed", Window: &metav1.Duration{Duration: -time.Hour}}
		}), "spec.goal.window"},
		{"duplicate variant names", camp("c4", func(c *crmv1.Campaign) {
			c.Spec.Experiment = &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 50}, {Name: "a", Weight: 50}}, GoalEvent: "deposit.completed"}
		}), "variant names must be unique"},
		{"dot in campaign name", camp("spring.promo", func(*crmv1.Campaign) {}), "Campaign names must not contain dots"},
		{"dot in segment name", &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vip.az"}, Spec: crmv1.SegmentSpec{Rule: "true"}}, "Segment names must not contain dots"},
		{"bad step name", camp("c5", func(c *crmv1.Campaign) { c.Spec.Steps[0].Name = "Hello_World" }), "spec.steps[0].name"},
		{"duplicate step names", camp("c6", func(c *crmv1.Campaign) {
			c.Spec.Steps[1].Name = "hello"
			c.Spec.Steps[1].Grant = nil
			c.Spec.Steps[1].Exit = &crmv1.ExitStep{}
		}), "Duplicate value"},
		{"next names no step", camp("c7", func(c *crmv1.Campaign) { c.Spec.Steps[0].Next = "nowhere" }), "every step's next must name a step of this campaign"},
		{"branch case names no step", camp("c8", func(c *crmv1.Campaign) {
			c.Spec.Steps = append(c.Spec.Steps, crmv1.Step{Name: "split", Branch: &crmv1.BranchStep{Cases: []crmv1.BranchCase{{When: "true", Next: "ghost"}}}})
		}), "every branch case's next and otherwise must name a step"},
		{"step with two actions", camp("c9", func(c *crmv1.Campaign) {
			c.Spec.Steps[0].Delay = &crmv1.DelayStep{Duration: metav1.Duration{Duration: 3600e9}}
		}), "a step needs exactly one of send, delay, waitFor, branch, grant or exit"},
		{"send names unknown content", camp("c10", func(c *crmv1.Campaign) { c.Spec.Steps[0].Send.Content = "missing" }), "every send step's content must name an entry of contents"},
		{"onRefused names no step", camp("c11r", func(c *crmv1.Campaign) { c.Spec.Steps[1].Grant.OnRefused = "nowhere" }), "every grant step's onRefused must name a step of this campaign"},
		{"grant names unknown reward", camp("c11", func(c *crmv1.Campaign) { c.Spec.Steps[1].Grant.Reward = "missing" }), "every grant step's reward must name an entry of rewards"},
		{"malformed money", camp("c12", func(c *crmv1.Campaign) { c.Spec.Budget.Total.Amount = "1,000.00" }), "amount must be a decimal string"},
		{"lowercase currency", camp("c13", func(c *crmv1.Campaign) { c.Spec.Budget.Total.Currency = "azn" }), "currency must be a three-letter ISO 4217 code"},
		{"budget in two currencies", camp("c14", func(c *crmv1.Campaign) {
			c.Spec.Budget.PerPlayer = &crmv1.Money{Amount: "5", Currency: "RUB"}
		}), "budget amounts must share one currency"},
		{"email without subject", camp("c15", func(c *crmv1.Campaign) { c.Spec.Contents[0].Messages[1].Subject = "" }), "an email message needs a subject"},
		{"body and bodyFrom", camp("c16", func(c *crmv1.Campaign) {
			c.Spec.Contents[0].Messages[0].BodyFrom = &crmv1.ConfigMapKeyReference{Name: "x", Key: "y"}
		}), "a message needs exactly one of body or bodyFrom"},
		{"scheduled without audience", camp("c17", func(c *crmv1.Campaign) {
			c.Spec.Trigger = crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}}
		}), "a scheduled campaign needs an audience"},
		{"service campaign with rewards", camp("c18", func(c *crmv1.Campaign) { c.Spec.Category = crmv1.CategoryService }), "rewards are only granted by marketing campaigns"},
		{"delay too long", camp("c19", func(c *crmv1.Campaign) {
			c.Spec.Steps = append(c.Spec.Steps, crmv1.Step{Name: "wait", Delay: &crmv1.DelayStep{Duration: metav1.Duration{Duration: 9000 * 3600e9}}})
		}), "delay.duration must be between 1s and 365 days"},
		{"unknown category", camp("c20", func(c *crmv1.Campaign) { c.Spec.Category = "promo" }), "Unsupported value: \"promo\""},
		{"quiet hours not HH:MM", pref("p1", func(p *crmv1.PreferencePolicy) {
			p.Spec.Categories[0].QuietHours = &crmv1.QuietHours{Start: "11pm", End: "08:00"}
		}), "spec.categories[0].quietHours.start"},
		{"bypass on marketing", pref("p2", func(p *crmv1.PreferencePolicy) {
			p.Spec.Categories[0].QuietHours = &crmv1.QuietHours{Start: "23:00", End: "08:00", Action: crmv1.QuietHoursBypass}
		}), "quietHours.action bypass is only allowed on a mandatory category"},
		{"bypass on a service category made optional", pref("p3", func(p *crmv1.PreferencePolicy) { p.Spec.Categories[1].Mandatory = ptr.To(false) }), "quietHours.action bypass is only allowed on a mandatory category"},
		{"mandatory marketing", pref("p4", func(p *crmv1.PreferencePolicy) { p.Spec.Categories[0].Mandatory = ptr.To(true) }), "the marketing category cannot be mandatory"},
		{"retryFor on marketing", pref("p5", func(p *crmv1.PreferencePolicy) {
			p.Spec.Categories[0].RetryFor = &metav1.Duration{Duration: time.Hour}
		}), "retryFor applies to mandatory categories only"},
		{"retryFor of a week", pref("p6", func(p *crmv1.PreferencePolicy) {
			p.Spec.Categories[1].RetryFor = &metav1.Duration{Duration: 7 * 24 * time.Hour}
		}), "retryFor must be between 10s and 72h"},
		{"cap with window and calendar day", pref("p5", func(p *crmv1.PreferencePolicy) {
			p.Spec.Categories[0].FrequencyCaps = []crmv1.FrequencyCap{{Max: 2, Window: &metav1.Duration{Duration: 3600e9}, CalendarDay: true}}
		}), "a frequency cap needs exactly one of window or calendarDay"},
		{"default language not offered", pref("p6", func(p *crmv1.PreferencePolicy) {
			p.Spec.Languages = []string{"ru", "en"}
			p.Spec.DefaultLanguage = "az"
		}), "defaultLanguage must be one of languages"},
		{"provider type does not suit channel", chp("h1", func(p *crmv1.ChannelPolicy) { p.Spec.Providers[0].Type = crmv1.ProviderSMTP }), "every provider's type must suit the channel"},
		{"callbacks on sms policy", chp("h2", func(p *crmv1.ChannelPolicy) { p.Spec.Callbacks = &crmv1.Callbacks{Sent: "https://x.az/sent"} }), "callbacks belong on the webhook channel's policy"},
		{"provider without endpoint", chp("h3", func(p *crmv1.ChannelPolicy) { p.Spec.Providers[0].Endpoint = "" }), "every provider except inApp needs an endpoint"},
		{"endpoint not a URL", chp("h4", func(p *crmv1.ChannelPolicy) { p.Spec.Providers[0].Endpoint = "ftp://x" }), "endpoint must be an http(s) URL or host:port"},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), c.obj)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
	// The valid bases themselves are accepted, so each row fails for its own reason.
	for _, o := range []client.Object{validCampaign(ns, "ok"), validPreferencePolicy(ns, "ok"), validChannelPolicy(ns, "ok", crmv1.ChannelSMS, crmv1.ProviderSMSRest), validReport(ns, "ok")} {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("valid %T refused: %v", o, err)
		}
	}
}

// TestControllerRejectsWhatCELCannot covers the checks that need the controller: CEL in
// rules, cron, time zones, templates and currencies. Each ends Ready=False/InvalidSpec with
// the exact field, Stalled=True and observedGeneration set.
func TestControllerRejectsWhatCELCannot(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, validChannelPolicy(ns, "sms", crmv1.ChannelSMS, crmv1.ProviderSMSRest)); err != nil {
		t.Fatal(err)
	}
	usd := validChannelPolicy(ns, "push", crmv1.ChannelPush, crmv1.ProviderFCM)
	usd.Spec.Providers[0].Cost.Currency = "USD"
	if err := k8s.Create(ctx, usd); err != nil {
		t.Fatal(err)
	}
	camp := func(name string, mutate func(*crmv1.Campaign)) Object {
		c := validCampaign(ns, name)
		c.Spec.Contents[0].Messages = c.Spec.Contents[0].Messages[1:] // email only
		mutate(c)
		return c
	}
	cases := []struct {
		name string
		obj  Object
		want string
	}{
		{"segment rule does not compile", &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-rule"}, Spec: crmv1.SegmentSpec{Rule: `player.ltv > 500.0 && player.contry == "AZ"`}},
			`spec.rule: 1:29: undefined field 'contry'`},
		{"segment rule not bool", &crmv1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "not-bool"}, Spec: crmv1.SegmentSpec{Rule: `player.ltv`}},
			"spec.rule: the rule yields double; it must yield bool"},
		{"cron", camp("bad-cron", func(c *crmv1.Campaign) {
			c.Spec.Audience = &crmv1.Audience{Rule: "true"}
			c.Spec.Trigger = crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 25 * * *"}}
		}), "spec.trigger.schedule.cron"},
		{"time zone", camp("bad-zone", func(c *crmv1.Campaign) {
			c.Spec.Audience = &crmv1.Audience{Rule: "true"}
			c.Spec.Trigger = crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *", TimeZone: "Asia/Bakuu"}}
		}), `spec.trigger.schedule.timeZone: unknown IANA time zone "Asia/Bakuu"`},
		{"trigger condition", camp("bad-condition", func(c *crmv1.Campaign) { c.Spec.Trigger.Event.Condition = `event.data.amount >` }), "spec.trigger.event.condition"},
		{"branch condition", camp("bad-branch", func(c *crmv1.Campaign) {
			c.Spec.Steps = append(c.Spec.Steps, crmv1.Step{Name: "split", Branch: &crmv1.BranchStep{Cases: []crmv1.BranchCase{{When: "player.bets > 0", Next: "hello"}}}})
		}), "spec.steps[split].branch.cases[0].when"},
		{"template", camp("bad-template", func(c *crmv1.Campaign) { c.Spec.Contents[0].Messages[0].Body = "Salam {{ .Player.Name " }), "spec.contents[hello].messages[email/az].body: template does not parse"},
		{"reward currency differs from budget", camp("bad-reward-currency", func(c *crmv1.Campaign) { c.Spec.Rewards[0].FreeSpins.SpinValue.Currency = "RUB" }),
			"spec.rewards[spins].freeSpins.spinValue.currency: RUB differs from the budget's currency AZN"},
		{"channel cost currency differs from budget", camp("bad-channel-currency", func(c *crmv1.Campaign) {
			c.Spec.Contents[0].Messages = append(c.Spec.Contents[0].Messages, crmv1.Message{Channel: crmv1.ChannelPush, Locale: "az", Body: "x"})
		}), `spec.budget: the budget is in AZN but ChannelPolicy "push" provider "primary" costs push messages in USD`},
		{"variant content that does not exist", camp("bad-variant", func(c *crmv1.Campaign) {
			c.Spec.Experiment = &crmv1.Experiment{Variants: []crmv1.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50,
				Contents: []crmv1.ContentOverride{{Content: "hello", Use: "hello-b"}}}}, GoalEvent: "deposit.completed"}
		}), `spec.experiment.variants[b].contents[hello].use: "hello-b" is not a content of this campaign`},
		{"grant refused to itself", camp("bad-on-refused", func(c *crmv1.Campaign) { c.Spec.Steps[1].Grant.OnRefused = c.Spec.Steps[1].Name }),
			"spec.steps[bonus].grant.onRefused: a grant step cannot be its own onRefused step"},
		{"budget with too many digits", camp("bad-digits", func(c *crmv1.Campaign) { c.Spec.Budget.Total.Amount = "10.005" }), "spec.budget.total"},
		{"report cron", func() Object {
			r := validReport(ns, "bad-report-cron")
			r.Spec.Schedule.Cron = "0 8 * * mon-xyz"
			return r
		}(), "spec.schedule.cron"},
		{"report time zone", func() Object {
			r := validReport(ns, "bad-report-zone")
			r.Spec.Schedule.TimeZone = "Asia/Bakuu"
			return r
		}(),
			`spec.schedule.timeZone: unknown IANA time zone "Asia/Bakuu"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := k8s.Create(ctx, c.obj); err != nil {
				t.Fatalf("the API server refused it (the controller should judge it): %v", err)
			}
			cond := waitCondition(t, c.obj, crmv1.ConditionReady, metav1.ConditionFalse, crmv1.ReasonInvalidSpec)
			if !strings.Contains(cond.Message, c.want) {
				t.Fatalf("message %q does not contain %q", cond.Message, c.want)
			}
			waitCondition(t, c.obj, crmv1.ConditionStalled, metav1.ConditionTrue, crmv1.ReasonInvalidSpec)
			if c.obj.Common().ObservedGeneration != c.obj.GetGeneration() {
				t.Fatalf("observedGeneration %d, generation %d", c.obj.Common().ObservedGeneration, c.obj.GetGeneration())
			}
			if rec, _ := testStore.Published(ctx, ns, kindOf(c.obj), c.obj.GetName()); rec != nil {
				t.Fatal("an invalid spec was published")
			}
		})
	}
}

func kindOf(o Object) string {
	switch o.(type) {
	case *crmv1.Campaign:
		return "campaign"
	case *crmv1.Segment:
		return "segment"
	case *crmv1.ChannelPolicy:
		return "channelpolicy"
	case *crmv1.Report:
		return "report"
	}
	return "preferencepolicy"
}
