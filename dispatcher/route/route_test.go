package route_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

var all = func() prefs.Set {
	var s prefs.Set
	for _, c := range prefs.Channels {
		s = s.With(c)
	}
	return s
}()

func set(chs ...crmv1.Channel) prefs.Set {
	var s prefs.Set
	for _, c := range chs {
		s = s.With(c)
	}
	return s
}

// bakuPlayer is verified, in Baku, reachable on every channel, active today.
func bakuPlayer(now time.Time) *players.Player {
	return &players.Player{
		ID: "p-1", Brand: "baku", TimeZone: "Asia/Baku", Language: "az", KYCStatus: "passed", AgeVerified: true,
		Email: "p1@example.az", Phone: "+994501234567", ViberID: "v-1",
		PushTokens:   []ingest.PushToken{{Platform: "android", Token: "tok"}},
		LastActivity: players.UnixOf(now.Add(-time.Hour)),
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type refuse struct{}

func (refuse) Reserve(string, string, int64, int64) string { return "total" }

func TestDecide(t *testing.T) {
	pol := bustest.SamplePolicy(t, "baku")
	noon := at("2026-11-22T08:00:00Z") // 12:00 in Baku, 11:00 in Moscow
	type row struct {
		name    string
		now     time.Time
		cat     crmv1.Category
		reward  string
		due     time.Time
		player  func(p *players.Player) *players.Player
		prefs   *prefs.Prefs
		offered prefs.Set
		sup     prefs.Set
		hist    func(h *route.History, now time.Time)
		budget  route.Budget
		policy  func(p prefs.Policy) *prefs.Policy
		// hash and key are the content's hash and dedupKey.
		hash, key string

		result    route.Result
		reason    route.Reason
		step      int
		channel   crmv1.Channel
		fallbacks []crmv1.Channel
		sendAt    time.Time
		detail    string
	}
	withdrawn := func(cat crmv1.Category, chs ...crmv1.Channel) *prefs.Prefs {
		p := &prefs.Prefs{Brand: "baku", Player: "p-1"}
		for _, c := range chs {
			p.Choices = append(p.Choices, prefs.Choice{Category: cat, Channel: c, State: prefs.Withdrawn})
		}
		return p
	}
	sentMarketing := func(n int, ago time.Duration) func(h *route.History, now time.Time) {
		return func(h *route.History, now time.Time) {
			for i := range n {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelPush, uint64(1000+i), now.Add(-ago))
			}
		}
	}
	rows := []row{
		{name: "unknown player is dropped", player: func(*players.Player) *players.Player { return nil },
			result: route.Drop, reason: route.ReasonUnknownPlayer, step: 1},
		{name: "erased player is dropped", player: func(p *players.Player) *players.Player { p.Erased = true; return p },
			result: route.Drop, reason: route.ReasonErased, step: 1},
		{name: "brand without a policy sends nothing", policy: func(prefs.Policy) *prefs.Policy { return nil },
			result: route.Suppress, reason: route.ReasonNoPolicy, step: 1},
		{name: "self-excluded player gets no marketing", player: func(p *players.Player) *players.Player { p.SelfExcluded = true; return p },
			result: route.Suppress, reason: route.ReasonResponsibleGaming, step: 2, detail: "self-excluded"},
		{name: "self-excluded player still gets a service message", cat: crmv1.CategoryService,
			player: func(p *players.Player) *players.Player { p.SelfExcluded = true; return p },
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "self-excluded player gets no bonus even in a mandatory category", cat: crmv1.CategoryService, reward: "spins",
			player: func(p *players.Player) *players.Player { p.SelfExcluded = true; return p },
			result: route.Suppress, reason: route.ReasonBonusRefusedRG, step: 2},
		{name: "self-exclusion that ended no longer blocks",
			player: func(p *players.Player) *players.Player {
				p.SelfExcluded, p.SelfExcludedUntil = true, players.UnixOf(noon.Add(-time.Hour))
				return p
			},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "national exclusion register blocks marketing", player: func(p *players.Player) *players.Player { p.NationalExcluded = true; return p },
			result: route.Suppress, reason: route.ReasonResponsibleGaming, step: 2, detail: "national self-exclusion register"},
		{name: "cooling off blocks marketing", player: func(p *players.Player) *players.Player {
			p.CoolingOffUntil = players.UnixOf(noon.Add(time.Hour))
			return p
		},
			result: route.Suppress, reason: route.ReasonResponsibleGaming, step: 2, detail: "cooling off"},
		{name: "at-risk marker blocks marketing", player: func(p *players.Player) *players.Player { p.AtRiskUntil = players.UnixOf(noon.Add(time.Hour)); return p },
			result: route.Suppress, reason: route.ReasonResponsibleGaming, step: 2, detail: "at-risk marker"},
		{name: "at-risk player still gets a responsible-gaming notice", cat: crmv1.CategoryResponsibleGaming,
			player: func(p *players.Player) *players.Player { p.AtRiskUntil = players.UnixOf(noon.Add(time.Hour)); return p },
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelInApp, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelSMS}},
		{name: "marketing held until KYC passed", player: func(p *players.Player) *players.Player { p.KYCStatus = "pending"; return p },
			result: route.Suppress, reason: route.ReasonGateKYC, step: 3, detail: "kycStatus pending"},
		{name: "KYC gate does not hold service messages", cat: crmv1.CategoryService, player: func(p *players.Player) *players.Player { p.KYCStatus = ""; return p },
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "marketing held until age verified", player: func(p *players.Player) *players.Player { p.AgeVerified = false; return p },
			result: route.Suppress, reason: route.ReasonGateAge, step: 3},
		{name: "push without a token goes to in-app", player: func(p *players.Player) *players.Player { p.PushTokens = nil; return p },
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelInApp},
		{name: "content only for push and no token: nothing to send on", offered: set(crmv1.ChannelPush),
			player: func(p *players.Player) *players.Player { p.PushTokens = nil; return p },
			result: route.Suppress, reason: route.ReasonNoChannel, step: 4},
		{name: "suppressed address is skipped", cat: crmv1.CategoryService, sup: set(crmv1.ChannelSMS),
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelEmail, fallbacks: []crmv1.Channel{crmv1.ChannelPush}},
		{name: "bounced email is not a candidate", cat: crmv1.CategoryService, offered: set(crmv1.ChannelEmail),
			player: func(p *players.Player) *players.Player { p.EmailBounced = true; return p },
			result: route.Suppress, reason: route.ReasonNoChannel, step: 4},
		{name: "marketing after a consent withdrawal is never sent", prefs: withdrawn(crmv1.CategoryMarketing, crmv1.ChannelPush, crmv1.ChannelInApp),
			result: route.Suppress, reason: route.ReasonNoConsent, step: 5},
		{name: "withdrawal on push leaves in-app", prefs: withdrawn(crmv1.CategoryMarketing, crmv1.ChannelPush),
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelInApp},
		{name: "opted-out-by-default email needs a grant", offered: set(crmv1.ChannelEmail),
			result: route.Suppress, reason: route.ReasonNoConsent, step: 5},
		{name: "granted email is used", offered: set(crmv1.ChannelEmail),
			prefs:  &prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryMarketing, Channel: crmv1.ChannelEmail, State: prefs.Granted}}},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelEmail},
		{name: "double opt-in not yet confirmed does not allow", offered: set(crmv1.ChannelEmail),
			prefs:  &prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryMarketing, Channel: crmv1.ChannelEmail, State: prefs.Pending}}},
			result: route.Suppress, reason: route.ReasonNoConsent, step: 5},
		{name: "mandatory category ignores a withdrawal", cat: crmv1.CategoryService, prefs: withdrawn(crmv1.CategoryService, crmv1.ChannelSMS),
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "Baku quiet hours defer a marketing push to 08:00 local", now: at("2026-11-22T19:30:00Z"),
			result: route.Defer, reason: route.ReasonQuietHours, step: 6, sendAt: at("2026-11-23T04:00:00Z"),
			detail: "quiet hours 23:00-08:00 Asia/Baku, local 23:30"},
		{name: "after midnight the deferral is the same morning", now: at("2026-11-22T22:10:00Z"),
			result: route.Defer, reason: route.ReasonQuietHours, step: 6, sendAt: at("2026-11-23T04:00:00Z")},
		{name: "a payment SMS at 02:14 goes out and says why", now: at("2026-11-22T22:14:00Z"), cat: crmv1.CategoryService,
			result: route.Send, reason: route.ReasonMandatoryBypass, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush},
			detail: "quiet hours 23:00-08:00 Asia/Baku, local 02:14: service is mandatory"},
		{name: "a player in Moscow is judged by Moscow time (22:30 there)", now: at("2026-11-22T19:30:00Z"),
			player: func(p *players.Player) *players.Player { p.TimeZone = "Europe/Moscow"; return p },
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "a player in Moscow at 23:30 there is deferred to 08:00 Moscow", now: at("2026-11-22T20:30:00Z"),
			player: func(p *players.Player) *players.Player { p.TimeZone = "Europe/Moscow"; return p },
			result: route.Defer, reason: route.ReasonQuietHours, step: 6, sendAt: at("2026-11-23T05:00:00Z")},
		{name: "a player without a zone is judged in the brand's default zone", now: at("2026-11-22T19:30:00Z"),
			player: func(p *players.Player) *players.Player { p.TimeZone = ""; return p },
			result: route.Defer, reason: route.ReasonQuietHours, step: 6, sendAt: at("2026-11-23T04:00:00Z")},
		{name: "a deferred intent arriving early is deferred again to its due time", now: at("2026-11-23T03:59:58Z"), due: at("2026-11-23T04:00:00Z"),
			result: route.Defer, reason: route.ReasonArrivedEarly, step: 6, sendAt: at("2026-11-23T04:00:00Z")},
		{name: "a deferred intent arriving on time is sent", now: at("2026-11-23T04:00:00Z"), due: at("2026-11-23T04:00:00Z"),
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "the player's own quiet hours defer marketing", now: noon,
			prefs:  &prefs.Prefs{Quiet: &prefs.QuietHours{Start: "11:00", End: "13:00"}},
			result: route.Defer, reason: route.ReasonQuietHours, step: 6, sendAt: at("2026-11-22T09:00:00Z")},
		{name: "the player's own quiet hours do not hold a service message", now: noon, cat: crmv1.CategoryService,
			prefs:  &prefs.Prefs{Quiet: &prefs.QuietHours{Start: "11:00", End: "13:00"}},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "a third marketing message within 24h is suppressed", hist: sentMarketing(2, 3*time.Hour),
			result: route.Suppress, reason: route.ReasonFrequencyCap, step: 7, detail: "2 per 24h0m0s"},
		{name: "two sent 25h ago leave room", hist: sentMarketing(2, 25*time.Hour),
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "five in a week hit the weekly cap", hist: sentMarketing(5, 48*time.Hour),
			result: route.Suppress, reason: route.ReasonFrequencyCap, step: 7, detail: "5 per 168h0m0s"},
		{name: "adaptive frequency halves the cap for an inactive player", hist: sentMarketing(1, time.Hour),
			player: func(p *players.Player) *players.Player {
				p.LastActivity = players.UnixOf(noon.Add(-20 * 24 * time.Hour))
				return p
			},
			result: route.Suppress, reason: route.ReasonFrequencyCap, step: 7, detail: "1 per 24h0m0s (halved: inactive 14+ days)"},
		{name: "the player's own cap", hist: sentMarketing(1, 30*time.Hour),
			prefs:  &prefs.Prefs{Caps: []prefs.PlayerCap{{Category: crmv1.CategoryMarketing, Max: 1, Window: prefs.Duration{Duration: 168 * time.Hour}}}},
			result: route.Suppress, reason: route.ReasonFrequencyCap, step: 7, detail: "the player's cap of 1 per 168h0m0s"},
		{name: "service messages are never capped", cat: crmv1.CategoryService,
			hist: func(h *route.History, now time.Time) {
				for i := range 20 {
					h.Record(crmv1.CategoryService, crmv1.ChannelSMS, uint64(i), now.Add(-time.Minute))
				}
			},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "the same bonus content never on two channels",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelEmail, route.ContentKey(&bus.Intent{Campaign: "daily-spins", Content: "spins", FlowInstance: "f-1", Category: crmv1.CategoryMarketing}, "", ""), now.Add(-2*time.Hour))
			},
			result: route.Suppress, reason: route.ReasonDuplicateContent, step: 8, detail: "sent by email at 2026-11-22T06:00:00Z"},
		{name: "the same content after the dedup window is sent",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelEmail, route.ContentKey(&bus.Intent{Campaign: "daily-spins", Content: "spins", FlowInstance: "f-1", Category: crmv1.CategoryMarketing}, "", ""), now.Add(-25*time.Hour))
			},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "the same offer from another campaign and flow within the window", hash: "h-spins",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelPush, route.ContentKey(&bus.Intent{Campaign: "weekend-spins", Content: "spins-copy", FlowInstance: "f-9", Category: crmv1.CategoryMarketing}, "h-spins", ""), now.Add(-time.Minute))
			},
			result: route.Suppress, reason: route.ReasonDuplicateContent, step: 8, detail: "sent by push at 2026-11-22T07:59:00Z"},
		{name: "one dedupKey over two wordings of an offer", hash: "h-spins", key: "spins-20",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelEmail, route.ContentKey(&bus.Intent{Campaign: "vip-spins", Content: "vip", FlowInstance: "f-7", Category: crmv1.CategoryMarketing}, "h-vip", "spins-20"), now.Add(-3*time.Hour))
			},
			result: route.Suppress, reason: route.ReasonDuplicateContent, step: 8, detail: "sent by email at 2026-11-22T05:00:00Z"},
		{name: "another offer of the same campaign goes out", hash: "h-spins",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryMarketing, crmv1.ChannelPush, route.ContentKey(&bus.Intent{Campaign: "daily-spins", Content: "cashback", FlowInstance: "f-1", Category: crmv1.CategoryMarketing}, "h-cashback", ""), now.Add(-time.Minute))
			},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelPush, fallbacks: []crmv1.Channel{crmv1.ChannelInApp}},
		{name: "two receipts in the window are two messages", cat: crmv1.CategoryService, hash: "h-receipt",
			hist: func(h *route.History, now time.Time) {
				h.Record(crmv1.CategoryService, crmv1.ChannelSMS, route.ContentKey(&bus.Intent{Campaign: "daily-spins", Content: "spins", FlowInstance: "f-0", Category: crmv1.CategoryService}, "h-receipt", ""), now.Add(-time.Minute))
			},
			result: route.Send, reason: route.ReasonSent, step: 9, channel: crmv1.ChannelSMS, fallbacks: []crmv1.Channel{crmv1.ChannelEmail, crmv1.ChannelPush}},
		{name: "no budget left", budget: refuse{},
			result: route.Suppress, reason: route.ReasonBudgetExhausted, step: 10, detail: "total"},
		{name: "a policy without the category", cat: crmv1.CategoryResponsibleGaming,
			policy: func(p prefs.Policy) *prefs.Policy { p.Rules[2] = nil; return &p },
			result: route.Suppress, reason: route.ReasonUnknownCategory, step: 1},
	}
	seenReasons := map[route.Reason]bool{}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			now := r.now
			if now.IsZero() {
				now = noon
			}
			p := bakuPlayer(now)
			if r.player != nil {
				p = r.player(p)
			}
			cat := r.cat
			if cat == "" {
				cat = crmv1.CategoryMarketing
			}
			offered := r.offered
			if offered == 0 {
				offered = all
			}
			h := &route.History{}
			if r.hist != nil {
				r.hist(h, now)
			}
			policy := pol
			if r.policy != nil {
				policy = r.policy(*pol)
			}
			if r.prefs != nil {
				if err := r.prefs.Prepare(nil); err != nil {
					t.Fatal(err)
				}
			}
			budget := r.budget
			if budget == nil {
				budget = route.Unlimited{}
			}
			in := &route.Input{
				Intent: &bus.Intent{ID: "i-1", Brand: "baku", Player: "p-1", Campaign: "daily-spins", Step: "send", FlowInstance: "f-1",
					Category: cat, Content: "spins", Reward: r.reward, Due: r.due},
				Player: p, Prefs: r.prefs, Policy: policy, Offered: offered, Configured: all, Suppressed: r.sup,
				History: h, ContentHash: r.hash, DedupKey: r.key, Budget: budget, Now: now, Explain: true,
			}
			d := route.Decide(in)
			if d.Result != r.result || d.Reason != r.reason || d.Step != r.step {
				t.Fatalf("got %s/%s at step %d (%s), want %s/%s at step %d", d.Result, d.Reason, d.Step, d.Detail, r.result, r.reason, r.step)
			}
			if d.Channel != r.channel || strings.Join(chs(d.Fallbacks), ",") != strings.Join(chs(r.fallbacks), ",") {
				t.Fatalf("channel %q fallbacks %v, want %q %v", d.Channel, d.Fallbacks, r.channel, r.fallbacks)
			}
			if !d.SendAt.Equal(r.sendAt) {
				t.Fatalf("sendAt %s, want %s", d.SendAt, r.sendAt)
			}
			if r.detail != "" && d.Detail != r.detail {
				t.Fatalf("detail %q, want %q", d.Detail, r.detail)
			}
			if d.ID != route.DecisionID("i-1") || len(d.ID) != 24 {
				t.Fatalf("decision id %q", d.ID)
			}
			// The explanation lists every step up to the deciding one, in order; only
			// the last may have failed.
			last := d.Step
			if d.Result == route.Send {
				last = 10
			}
			if len(d.Trace) != last {
				t.Fatalf("trace has %d steps, want %d: %+v", len(d.Trace), last, d.Trace)
			}
			for i, s := range d.Trace {
				if s.Step != i+1 || (i < last-1 && !s.Passed) {
					t.Fatalf("trace step %d: %+v", i+1, s)
				}
			}
			if d.Result != route.Send && (d.Trace[last-1].Passed || d.Trace[last-1].Reason != d.Reason) {
				t.Fatalf("the deciding step is not marked: %+v", d.Trace[last-1])
			}
			// Without Explain the decision is the same and carries no trace.
			in.Explain = false
			if e := route.Decide(in); e.Result != d.Result || e.Reason != d.Reason || e.Channel != d.Channel || e.Trace != nil {
				t.Fatalf("without explain: %+v", e)
			}
			seenReasons[d.Reason] = true
		})
	}
	for _, want := range []route.Reason{route.ReasonUnknownPlayer, route.ReasonErased, route.ReasonNoPolicy, route.ReasonUnknownCategory,
		route.ReasonResponsibleGaming, route.ReasonBonusRefusedRG, route.ReasonGateKYC, route.ReasonGateAge, route.ReasonNoChannel,
		route.ReasonNoConsent, route.ReasonQuietHours, route.ReasonArrivedEarly, route.ReasonFrequencyCap, route.ReasonDuplicateContent,
		route.ReasonBudgetExhausted, route.ReasonSent, route.ReasonMandatoryBypass} {
		if !seenReasons[want] {
			t.Errorf("no row covers reason %s", want)
		}
	}
}

func chs(cs []crmv1.Channel) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func TestHoldoutShare(t *testing.T) {
	in := 0
	for i := range 20000 {
		if route.InHoldout("baku", "p-"+strconv.Itoa(i), 5) {
			in++
		}
	}
	if in < 800 || in > 1200 {
		t.Fatalf("%d of 20000 in a 5%% holdout", in)
	}
	pol := bustest.SamplePolicy(t, "baku")
	pol.HoldoutPercent = 50
	now := at("2026-11-22T08:00:00Z")
	var held, sent int
	for i := range 200 {
		id := "p-" + strconv.Itoa(i)
		p := bakuPlayer(now)
		p.ID = id
		d := route.Decide(&route.Input{Intent: &bus.Intent{ID: id, Brand: "baku", Player: id, Category: crmv1.CategoryMarketing, Campaign: "c", Content: "x"},
			Player: p, Policy: pol, Offered: all, Configured: all, History: &route.History{}, Now: now})
		switch {
		case d.Reason == route.ReasonGlobalHoldout && route.InHoldout("baku", id, 50):
			held++
		case d.Result == route.Send && !route.InHoldout("baku", id, 50):
			sent++
		default:
			t.Fatalf("%s: %+v", id, d)
		}
	}
	if held == 0 || sent == 0 {
		t.Fatalf("held %d sent %d", held, sent)
	}
}

type recordBudget struct{ micros, spent int64 }

func (r *recordBudget) Reserve(_, _ string, micros, playerSpent int64) string {
	r.micros, r.spent = micros, playerSpent
	return ""
}

// A send reserves the reward's value plus the dearest of its channel and fallbacks (a
// failover must not spend past the reservation), and reports it in the decision.
func TestSendReservesTheDearestCandidate(t *testing.T) {
	pol := bustest.SamplePolicy(t, "baku")
	now := at("2026-11-22T08:00:00Z")
	rb := &recordBudget{}
	in := &route.Input{
		Intent: &bus.Intent{ID: "i-1", Brand: "baku", Player: "p-1", Campaign: "payment", Step: "send", Category: crmv1.CategoryService, Content: "paid"},
		Player: bakuPlayer(now), Policy: pol, Offered: all, Configured: all, History: &route.History{}, Budget: rb, Now: now,
		RewardMicros: 2_000_000, PlayerSpent: 7,
	}
	in.Costs[prefs.ChannelIndex(crmv1.ChannelSMS)] = 35_000
	in.Costs[prefs.ChannelIndex(crmv1.ChannelEmail)] = 1_000
	in.Costs[prefs.ChannelIndex(crmv1.ChannelPush)] = 90_000
	d := route.Decide(in)
	if d.Channel != crmv1.ChannelSMS || len(d.Fallbacks) != 2 {
		t.Fatalf("decision %+v", d)
	}
	if rb.micros != 2_090_000 || rb.spent != 7 || d.Reserved != 2_090_000 {
		t.Fatalf("reserved %d (decision %d) with player spend %d", rb.micros, d.Reserved, rb.spent)
	}
}
