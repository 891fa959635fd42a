// Package route is the routing decision: one pure function that takes an intent and
// everything known about the player and returns where, when, or why not, with a
// machine-readable reason, in exactly the order of DESIGN.md section 5.
package route

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Result is what a decision does with the intent.
type Result string

// Results.
const (
	Send     Result = "send"
	Defer    Result = "defer"
	Suppress Result = "suppress"
	Drop     Result = "drop"
)

// Reason is the machine-readable why of a decision.
type Reason string

// Reasons, by the step that gives them.
const (
	ReasonUnknownPlayer     Reason = "UnknownPlayer"      // 1
	ReasonErased            Reason = "PlayerErased"       // 1
	ReasonNoPolicy          Reason = "NoPreferencePolicy" // before 1: the brand has no policy
	ReasonUnknownCategory   Reason = "CategoryNotInPolicy"
	ReasonResponsibleGaming Reason = "ResponsibleGamingBlock" // 2
	ReasonBonusRefusedRG    Reason = "BonusRefusedResponsibleGaming"
	ReasonGateKYC           Reason = "MarketingGateKYC" // 3
	ReasonGateAge           Reason = "MarketingGateAgeVerified"
	ReasonGateCoolingOff    Reason = "MarketingGateCoolingOff"
	ReasonGlobalHoldout     Reason = "GlobalHoldout"
	ReasonNoChannel         Reason = "NoAvailableChannel" // 4
	ReasonNoConsent         Reason = "NoConsent"          // 5
	ReasonQuietHours        Reason = "QuietHoursDeferred" // 6
	ReasonArrivedEarly      Reason = "ScheduledNotDue"
	ReasonFrequencyCap      Reason = "FrequencyCapped"  // 7
	ReasonDuplicateContent  Reason = "DuplicateContent" // 8
	ReasonBudgetExhausted   Reason = "BudgetExhausted"  // 10
	ReasonSent              Reason = "Routed"           // 9
	ReasonMandatoryBypass   Reason = "MandatoryBypassQuietHours"
	ReasonAllChannelsFailed Reason = "AllChannelsFailed"
	// ReasonTestSend: a test send to a seed player, sent past budget, pause, caps, dedup
	// and quiet hours (consent and responsible-gaming blocks still hold).
	ReasonTestSend          Reason = "TestSend"
	ReasonCampaignNotFound  Reason = "CampaignNotFound"
	ReasonCampaignPaused    Reason = "CampaignPaused"
	ReasonCampaignNotActive Reason = "CampaignOutsideWindow"
	ReasonContentNotFound   Reason = "ContentNotFound"
)

// Step names, in order (index = step number - 1).
var StepNames = [...]string{
	"player", "responsibleGaming", "marketingGates", "availableChannels", "consent",
	"quietHours", "frequencyCaps", "dedup", "channel", "budget",
}

// StepResult is one precedence step in an explanation.
type StepResult struct {
	Step   int    `json:"step"`
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Reason Reason `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Decision is the routing decision for one intent.
type Decision struct {
	ID     string `json:"id"`
	Result Result `json:"result"`
	Reason Reason `json:"reason"`
	// Step is the precedence step (1-10) that decided.
	Step    int           `json:"step"`
	Channel crmv1.Channel `json:"channel,omitempty"`
	// Fallbacks are the remaining candidates in order, for delivery failure.
	Fallbacks []crmv1.Channel `json:"fallbacks,omitempty"`
	// SendAt is when a deferred intent is due again.
	SendAt time.Time `json:"sendAt,omitzero"`
	// Detail says more for people, e.g. which cap or which quiet window.
	Detail string `json:"detail,omitempty"`
	// Reserved is what a send took from the campaign's budget (micros): the reward's
	// value plus the dearest message cost of its channel and fallbacks.
	Reserved int64 `json:"reserved,omitempty"`
	// Trace holds every step evaluated when the input asked for an explanation.
	Trace []StepResult `json:"trace,omitempty"`
}

// Budget reserves the most a send may cost before it is sent (step 10).
type Budget interface {
	// Reserve takes micros (a reward's value plus the upper-bound message cost, in
	// millionths of the budget's currency) from the campaign's budget, given what the
	// campaign already spent on the player; it returns "" when it fits, else the cap that
	// refused (total, perPeriod, perPlayer).
	Reserve(brand, campaign string, micros, playerSpent int64) (refused string)
}

// Unlimited is the budget of deployments without budget leases.
type Unlimited struct{}

// Reserve always fits.
func (Unlimited) Reserve(string, string, int64, int64) string { return "" }

// Input is everything a decision reads. Nothing in it is changed.
type Input struct {
	Intent *bus.Intent
	// Player is nil when the partition holds no such player.
	Player *players.Player
	// Prefs is nil when the player never changed a preference.
	Prefs  *prefs.Prefs
	Policy *prefs.Policy
	// Offered are the channels the content has a message for (and the send step allows).
	Offered prefs.Set
	// Configured are the channels the brand has a ChannelPolicy for (inApp needs none).
	Configured prefs.Set
	// Suppressed are the channels whose address for this player is on the brand's
	// suppression list.
	Suppressed prefs.Set
	History    *History
	// ContentHash and DedupKey identify the content for dedup (ContentKey).
	ContentHash, DedupKey string
	// Costs are the upper-bound message cost per channel (index of prefs.Channels), in
	// micros of the budget's currency; RewardMicros the value of a bonus the message
	// carries; PlayerSpent what the campaign already spent on the player.
	Costs        [len(prefs.Channels)]int64
	RewardMicros int64
	PlayerSpent  int64
	Budget       Budget
	Now          time.Time
	// Explain records every step in Decision.Trace.
	Explain bool
}

// DecisionID is the decision's id: a hash of the intent's id, used as Nats-Msg-Id and as
// the provider's idempotency key.
func DecisionID(intentID string) string {
	sum := sha256.Sum256([]byte(intentID))
	return hex.EncodeToString(sum[:12])
}

// ContentKey is the dedup key of a message (DESIGN.md section 5 step 8, as amended in
// docs/decisions.md). A marketing message is keyed by its offer: the content's dedupKey
// when it has one, else the content's hash, so the same offer reaches a player once
// within the dedup window whichever campaign, run or flow instance carries it. Other
// categories are keyed by campaign, content and flow instance: a repeat of one flow is
// dropped, while two receipts for two deposits are two messages.
func ContentKey(in *bus.Intent, hash, dedupKey string) uint64 {
	h := fnv.New64a()
	switch {
	case in.Category == crmv1.CategoryMarketing && dedupKey != "":
		_, _ = h.Write([]byte("key\x00" + dedupKey))
	case in.Category == crmv1.CategoryMarketing && hash != "":
		_, _ = h.Write([]byte("hash\x00" + hash))
	default:
		_, _ = h.Write([]byte(in.Campaign))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(in.Content))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(in.FlowInstance))
	}
	return h.Sum64()
}

// InHoldout reports whether the player belongs to the brand's global holdout.
func InHoldout(brand, player string, percent int) bool {
	if percent <= 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(brand))
	_, _ = h.Write([]byte{'/'})
	_, _ = h.Write([]byte(player))
	return int(h.Sum32()%100) < percent
}

// Available are the channels a player can be reached on: an address that is known and
// not bounced, a push token, a subscription. inApp and webhook need none.
func Available(p *players.Player) prefs.Set {
	var s prefs.Set
	if p.Email != "" && !p.EmailBounced {
		s = s.With(crmv1.ChannelEmail)
	}
	if p.Phone != "" {
		s = s.With(crmv1.ChannelSMS)
	}
	if p.ViberID != "" {
		s = s.With(crmv1.ChannelViber)
	}
	for _, t := range p.PushTokens {
		if t.Platform == "web" {
			s = s.With(crmv1.ChannelWebPush)
		} else {
			s = s.With(crmv1.ChannelPush)
		}
	}
	if len(p.WebPushSubscription) > 0 {
		s = s.With(crmv1.ChannelWebPush)
	}
	return s.With(crmv1.ChannelInApp).With(crmv1.ChannelWebhook)
}

// Zone is the player's time zone, else the policy's default.
func Zone(p *players.Player, pol *prefs.Policy) *time.Location {
	if p != nil && p.TimeZone != "" {
		if l, err := clock.Location(p.TimeZone); err == nil {
			return l
		}
	}
	return pol.DefaultZone
}

type decider struct {
	in *Input
	d  *Decision
}

func (x *decider) pass(step int, detail string) {
	if x.in.Explain {
		x.d.Trace = append(x.d.Trace, StepResult{Step: step, Name: StepNames[step-1], Passed: true, Detail: detail})
	}
}

func (x *decider) stop(step int, r Result, reason Reason, detail string) Decision {
	x.d.Step, x.d.Result, x.d.Reason, x.d.Detail = step, r, reason, detail
	if x.in.Explain {
		x.d.Trace = append(x.d.Trace, StepResult{Step: step, Name: StepNames[step-1], Reason: reason, Detail: detail})
	}
	return *x.d
}

// Decide routes one intent.
func Decide(in *Input) Decision {
	d := Decision{ID: DecisionID(in.Intent.ID)}
	x := &decider{in: in, d: &d}
	it, p, pol, now := in.Intent, in.Player, in.Policy, in.Now

	// 1. unknown or erased player
	if p == nil {
		return x.stop(1, Drop, ReasonUnknownPlayer, "")
	}
	if p.Erased {
		return x.stop(1, Drop, ReasonErased, "")
	}
	if pol == nil {
		return x.stop(1, Suppress, ReasonNoPolicy, "the brand has no PreferencePolicy")
	}
	rule := pol.Rule(it.Category)
	if rule == nil {
		return x.stop(1, Suppress, ReasonUnknownCategory, string(it.Category))
	}
	x.pass(1, "")

	// 2. responsible-gaming block: only mandatory categories pass, and never a bonus
	if block := rgBlock(p, now); block != "" {
		if it.Reward != "" {
			return x.stop(2, Suppress, ReasonBonusRefusedRG, block)
		}
		if !rule.Mandatory {
			return x.stop(2, Suppress, ReasonResponsibleGaming, block)
		}
		x.pass(2, block+"; "+string(it.Category)+" is mandatory")
	} else {
		x.pass(2, "")
	}

	// 3. marketing gates
	if it.Category == crmv1.CategoryMarketing || it.Reward != "" {
		switch {
		case pol.RequireKYC && p.KYCStatus != "passed":
			return x.stop(3, Suppress, ReasonGateKYC, "kycStatus "+orNone(p.KYCStatus))
		case pol.RequireAge && !p.AgeVerified:
			return x.stop(3, Suppress, ReasonGateAge, "")
		case pol.ExcludeCooling && p.CoolingOffUntil > players.UnixOf(now):
			return x.stop(3, Suppress, ReasonGateCoolingOff, "until "+p.CoolingOffUntil.Time().Format(time.RFC3339))
		case it.Category == crmv1.CategoryMarketing && InHoldout(it.Brand, it.Player, pol.HoldoutPercent):
			return x.stop(3, Suppress, ReasonGlobalHoldout, "")
		}
	}
	x.pass(3, "")

	// 4. candidates: the category's priority order, filtered by availability
	avail := Available(p) & in.Offered & in.Configured.With(crmv1.ChannelInApp) &^ in.Suppressed
	var cands [len(prefs.Channels)]crmv1.Channel
	n := 0
	for _, ch := range rule.Channels {
		if avail.Has(ch) {
			cands[n] = ch
			n++
		}
	}
	if n == 0 {
		return x.stop(4, Suppress, ReasonNoChannel, "")
	}
	x.pass(4, "")

	// 5. consent and preferences (mandatory categories ignore them)
	if !rule.Mandatory {
		m := 0
		for _, ch := range cands[:n] {
			if prefs.Consents(pol, in.Prefs, rule, ch) {
				cands[m] = ch
				m++
			}
		}
		if m == 0 {
			return x.stop(5, Suppress, ReasonNoConsent, "")
		}
		n = m
		x.pass(5, "")
	} else {
		x.pass(5, "mandatory: consent not required")
	}

	// A test send (kubectl croupier test-send to a seed player) previews the message now:
	// quiet hours, caps and dedup do not hold it, and it records nothing that would hold
	// the player's real messages. Consent and the blocks above still apply.
	if it.Test {
		x.pass(6, "test send: quiet hours, caps and dedup do not apply")
		d.Channel = cands[0]
		if n > 1 {
			d.Fallbacks = append([]crmv1.Channel(nil), cands[1:n]...)
		}
		x.pass(9, string(d.Channel))
		d.Step, d.Result, d.Reason, d.Detail = 9, Send, ReasonTestSend, "a test send: no budget, caps, dedup, quiet hours or pause"
		return d
	}

	// 6. quiet hours in the player's time zone
	local := now.In(Zone(p, pol))
	bypass := ""
	if !it.Due.IsZero() && now.Before(it.Due.Add(-time.Second)) {
		d.SendAt = it.Due
		return x.stop(6, Defer, ReasonArrivedEarly, "due "+it.Due.UTC().Format(time.RFC3339Nano))
	}
	zone := local.Location().String()
	switch {
	case rule.Quiet != nil && rule.Quiet.Contains(local):
		what := "quiet hours " + rule.Quiet.String() + " " + zone + ", local " + local.Format("15:04")
		if rule.QuietAction == crmv1.QuietHoursBypass && rule.Mandatory {
			bypass = what + ": " + string(it.Category) + " is mandatory"
			x.pass(6, bypass)
			break
		}
		d.SendAt = rule.Quiet.EndAfter(local).UTC()
		return x.stop(6, Defer, ReasonQuietHours, what)
	case !rule.Mandatory && in.Prefs.QuietWindow() != nil && in.Prefs.QuietWindow().Contains(local):
		w := in.Prefs.QuietWindow()
		d.SendAt = w.EndAfter(local).UTC()
		return x.stop(6, Defer, ReasonQuietHours, "the player's quiet hours "+w.String()+" "+zone+", local "+local.Format("15:04"))
	default:
		x.pass(6, "")
	}

	// 7. frequency caps across the category (mandatory categories are not capped)
	if !rule.Mandatory {
		m := 0
		var capped string
		for _, ch := range cands[:n] {
			if c := in.History.Capped(rule, in.Prefs, ch, p, local); c != "" {
				capped = c
				continue
			}
			cands[m] = ch
			m++
		}
		if m == 0 {
			return x.stop(7, Suppress, ReasonFrequencyCap, capped)
		}
		n = m
		x.pass(7, "")
	} else {
		x.pass(7, "mandatory: not capped")
	}

	// 8. dedup: one content, one channel within the window
	key := ContentKey(it, in.ContentHash, in.DedupKey)
	if s, ok := in.History.SeenSince(key, now.Add(-pol.DedupWindow)); ok {
		return x.stop(8, Suppress, ReasonDuplicateContent, "sent by "+string(prefs.Channels[s.Ch])+" at "+time.Unix(s.At, 0).UTC().Format(time.RFC3339))
	}
	x.pass(8, "")

	// 9. the first remaining candidate wins; the rest are fallbacks
	d.Channel = cands[0]
	if n > 1 {
		d.Fallbacks = append([]crmv1.Channel(nil), cands[1:n]...)
	}
	x.pass(9, string(d.Channel))

	// 10. budget
	// A fallback may cost more than the first channel: the upper bound covers them all.
	cost := in.Costs[prefs.ChannelIndex(d.Channel)]
	for _, ch := range d.Fallbacks {
		cost = max(cost, in.Costs[prefs.ChannelIndex(ch)])
	}
	if in.Budget != nil {
		if refused := in.Budget.Reserve(it.Brand, it.Campaign, in.RewardMicros+cost, in.PlayerSpent); refused != "" {
			d.Channel, d.Fallbacks = "", nil
			return x.stop(10, Suppress, ReasonBudgetExhausted, refused)
		}
		d.Reserved = in.RewardMicros + cost
	}
	x.pass(10, "")
	d.Step, d.Result, d.Reason, d.Detail = 9, Send, ReasonSent, ""
	if bypass != "" {
		d.Reason, d.Detail = ReasonMandatoryBypass, bypass
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// rgBlock names the responsible-gaming block in force, "" when none.
func rgBlock(p *players.Player, now time.Time) string {
	n := players.UnixOf(now)
	switch {
	case p.NationalExcluded:
		return "national self-exclusion register"
	case p.SelfExcludedAt(now):
		return "self-excluded"
	case p.CoolingOffUntil > n:
		return "cooling off"
	case p.AtRiskUntil > n:
		return "at-risk marker"
	}
	return ""
}
