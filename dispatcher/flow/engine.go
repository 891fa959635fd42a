package flow

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/rules"
	"github.com/nats-io/nats.go"
)

// A player's flow through a campaign's steps runs in the partition owner: send, branch,
// grant and exit run at once; delay and waitFor park the flow in the player's state and
// schedule a durable resume intent (NATS message schedule), so a three-day delay survives
// restarts and handoffs. docs/architecture.md describes what an edit does to parked flows.

// Outcome kind and reasons of the flow engine.
const (
	OutcomeFlow = "flow"

	ReasonAlreadyInFlow   = "AlreadyInFlow"
	ReasonTooManyFlows    = "TooManyFlows"
	ReasonStepRemoved     = "StepRemoved"
	ReasonCampaignChanged = "CampaignReplaced"
	ReasonCampaignEnded   = "CampaignEnded"
	ReasonFlowLoop        = "FlowLoop"
	ReasonGrantRecorded   = "RewardsNotEnabled"
	ReasonGranted         = "RewardGranted"
	ReasonNotInAudience   = "NotInAudience"
	ReasonEntryLimit      = "EntryLimitReached"
	ReasonControlGroup    = "ControlGroup"
	ReasonCouponPoolEmpty = "CouponPoolEmpty"
	// ReasonGrantRefused ends a flow at a grant step that granted nothing and names no
	// onRefused step.
	ReasonGrantRefused = "GrantRefused"
)

// Limits of the flow engine.
const (
	// MaxFlows bounds a player's parked flows.
	MaxFlows = 16
	// MaxDone bounds the finished flows a player's state remembers (for duplicate starts
	// and conversions).
	MaxDone = 64
	// maxStepsPerWalk ends a flow that loops without a delay or wait.
	maxStepsPerWalk = 64
	// PausedRecheck is how often a flow parked in a paused campaign looks again.
	PausedRecheck = 15 * time.Minute
	// maxFlowData is the largest triggering event payload kept for later steps' templates.
	maxFlowData = 4096
)

// Flow waits.
const (
	WaitDelay = "delay"
	WaitEvent = "event"
)

// FlowPos is a player's place in a campaign flow, parked at a delay or waitFor step.
type FlowPos struct {
	Campaign string `json:"campaign"`
	UID      string `json:"uid"`
	Instance string `json:"instance"`
	// Origin makes the flow's intent ids: campaign UID + event key, or run id + player.
	Origin string `json:"origin"`
	Step   string `json:"step"`
	Wait   string `json:"wait"`
	Event  string `json:"event,omitempty"`
	// Until is when the delay ends or the wait times out (Unix milliseconds).
	Until   int64 `json:"until"`
	Started int64 `json:"started"`
	// Seq counts the steps taken; a resume intent must carry the current one.
	Seq int `json:"seq"`
	// Converted is set once the flow counted a conversion.
	Converted bool `json:"converted,omitempty"`
	// Variant is the experiment arm the player is in ("control" receives nothing);
	// Revenue the player's deposits since the start, within the goal window (minor units).
	Variant string `json:"variant,omitempty"`
	Revenue int64  `json:"revenue,omitempty"`
	// Coupon is the promo code the flow issued last (.Coupon in later messages).
	Coupon string `json:"coupon,omitempty"`
	// LastChannel is the channel of the flow's last message a provider took, at LastTouch
	// (Unix seconds): conversions and revenue within the brand's attribution window are
	// attributed to it (last touch, docs/analytics.md).
	LastChannel crmv1.Channel `json:"lastChannel,omitempty"`
	LastTouch   int64         `json:"lastTouch,omitempty"`
	// Held is set while the flow waits past its due time because its campaign is paused
	// (by a person or its budget): the owner wakes it as soon as the campaign resumes.
	Held bool `json:"held,omitempty"`
	// Sent are the send steps already taken (a loop's second visit gets a new intent id).
	Sent []string        `json:"sent,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// FlowDone is a finished flow, kept for duplicate starts and conversions.
type FlowDone struct {
	Campaign  string `json:"campaign"`
	Instance  string `json:"instance"`
	Started   int64  `json:"started"`
	Ended     int64  `json:"ended"`
	Converted bool   `json:"converted,omitempty"`
	Variant   string `json:"variant,omitempty"`
	Revenue   int64  `json:"revenue,omitempty"`
	// LastChannel and LastTouch are the flow's at its end (FlowPos).
	LastChannel crmv1.Channel `json:"lastChannel,omitempty"`
	LastTouch   int64         `json:"lastTouch,omitempty"`
}

// Entry is what a player did in a campaign: entries (N) where it limits them, what the
// campaign spent on the player (micros of its budget's currency), the experiment arm and
// the effect being measured. The UID
// tells a campaign created again under the same name, which counts afresh.
type Entry struct {
	Campaign string `json:"campaign"`
	UID      string `json:"uid"`
	N        int    `json:"n,omitempty"`
	Spent    int64  `json:"spent,omitempty"`
	// Joined is set when the player joined the campaign's tournament; Score is the
	// player's score in it and Prize the rank a prize was granted for.
	Joined bool  `json:"joined,omitempty"`
	Score  int64 `json:"score,omitempty"`
	Prize  int   `json:"prize,omitempty"`
	// Arm is the experiment arm the player was counted in (once, however often the
	// player enters); Converted and Revenue are the player's conversion and revenue in
	// it, so a re-entry cannot add a second sample to the arm's tests.
	Arm       string `json:"arm,omitempty"`
	Converted bool   `json:"converted,omitempty"`
	Revenue   int64  `json:"revenue,omitempty"`
	// Effect is the player's measurement of the campaign's effect, for EffectKeep after
	// the start (every campaign's players are measured).
	Effect *Effect `json:"effect,omitempty"`
}

func (ps *PlayerState) find(cp *Campaign) *Entry {
	for i := range ps.Entries {
		if e := &ps.Entries[i]; e.Campaign == cp.Name && e.UID == cp.UID {
			return e
		}
	}
	return nil
}

// entries is how often the player entered cp.
func (ps *PlayerState) entries(cp *Campaign) int {
	if e := ps.find(cp); e != nil {
		return e.N
	}
	return 0
}

// spent is what cp spent on the player.
func (ps *PlayerState) spent(cp *Campaign) int64 {
	if e := ps.find(cp); e != nil {
		return e.Spent
	}
	return 0
}

// entry is the player's record of cp, made when missing; the records of campaigns b no
// longer has are forgotten then.
func (ps *PlayerState) entry(b *Brand, cp *Campaign) *Entry {
	if e := ps.find(cp); e != nil {
		return e
	}
	ps.Entries = slices.DeleteFunc(ps.Entries, func(e Entry) bool {
		c := b.campaign(e.Campaign)
		return c == nil || c.UID != e.UID
	})
	ps.Entries = append(ps.Entries, Entry{Campaign: cp.Name, UID: cp.UID})
	return &ps.Entries[len(ps.Entries)-1]
}

// Budget is the campaigns' budget leases as the owner uses them (dispatcher/budget).
type Budget interface {
	route.Budget
	// Refund gives micros reserved and not spent back to the campaign's budget.
	Refund(brand, campaign, uid string, micros int64)
	// Exhausted reports whether the campaign's budget is known to be exhausted.
	Exhausted(brand, campaign string) bool
}

// CouponPools hands out the codes of imported coupon pools (reward.Coupons).
type CouponPools interface {
	Draw(ctx context.Context, brand, pool string) (*bus.Coupon, error)
}

// Rewarder values the rewards of grant steps (dispatcher/reward); until one is set,
// NoRewards records each grant step as not granted.
type Rewarder interface {
	// Value fills g.Value with what g.Reward is worth for the player now, given the data
	// of the event that started the flow; false with a reason when nothing is due. It
	// runs in the partition owner's goroutine and does no I/O.
	Value(g *bus.RewardGrant, p *players.Player, event json.RawMessage, now time.Time) (bool, string)
}

// NoRewards records grant steps without granting.
type NoRewards struct{}

// Value implements Rewarder.
func (NoRewards) Value(*bus.RewardGrant, *players.Player, json.RawMessage, time.Time) (bool, string) {
	return false, ReasonGrantRecorded
}

func (ps *PlayerState) flow(instance string) *FlowPos {
	for _, fp := range ps.Flows {
		if fp.Instance == instance {
			return fp
		}
	}
	return nil
}

func (ps *PlayerState) known(instance string) bool {
	if ps.flow(instance) != nil {
		return true
	}
	for _, d := range ps.Done {
		if d.Instance == instance {
			return true
		}
	}
	return false
}

// startFlow starts a player's flow through a campaign at its first step, unless this
// instance already ran or the player is still in an earlier flow of the campaign.
func (s *ownerState) startFlow(ctx context.Context, b *Brand, cp *Campaign, ps *PlayerState, instance, origin string, data json.RawMessage, now time.Time) {
	if ps.known(instance) {
		return
	}
	if e := ps.find(cp); e != nil && e.Joined && cp.Tournament != nil {
		return // in the race already: a tournament campaign triggered by every bet joins once, silently
	}
	s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatLaunched, 1)
	for _, fp := range ps.Flows {
		if fp.Campaign == cp.Name {
			s.flowOutcome(ps, cp.Name, "", ReasonAlreadyInFlow, "a flow of this campaign is still at step "+fp.Step, now)
			s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatSuppressedPrefix+ReasonAlreadyInFlow, 1)
			return
		}
	}
	if cp.MaxEntries > 0 && ps.entries(cp) >= cp.MaxEntries {
		s.flowOutcome(ps, cp.Name, "", ReasonEntryLimit, "entered "+strconv.Itoa(cp.MaxEntries)+" times already", now)
		s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatSuppressedPrefix+ReasonEntryLimit, 1)
		return
	}
	if len(ps.Flows) >= MaxFlows {
		s.flowOutcome(ps, cp.Name, "", ReasonTooManyFlows, strconv.Itoa(MaxFlows)+" flows already parked", now)
		s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatSuppressedPrefix+ReasonTooManyFlows, 1)
		return
	}
	if len(data) > maxFlowData {
		data = nil
	}
	fp := &FlowPos{Campaign: cp.Name, UID: cp.UID, Instance: instance, Origin: origin, Started: now.Unix(), Data: data}
	if cp.MaxEntries > 0 {
		ps.entry(b, cp).N++
	}
	if e := cp.Spec().Experiment; e != nil {
		fp.Variant = Variant(cp.UID, ps.Player, e)
		if en := ps.entry(b, cp); en.Arm == "" {
			en.Arm = fp.Variant
			s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.VariantStat(fp.Variant, bus.StatVariantPlayers), 1)
		}
	}
	s.measure(b, cp, ps, fp.Variant, now)
	if fp.Variant == Control {
		// Measured for conversion, revenue and the effect, sent nothing.
		s.endFlow(ps, fp, ReasonControlGroup, now)
		return
	}
	s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatTargeted, 1)
	s.dimStat(ps.Brand, cp.Name, ps.Player, bus.StatTargeted)
	s.walk(ctx, b, cp, ps, fp, cp.Spec().Steps[0].Name, now)
}

// held says why a campaign sends nothing new now: paused by a person (spec.paused,
// CampaignPaused) or by its budget (a cap this replica found reached still holds,
// BudgetExhausted); "" while it runs.
func (s *ownerState) held(brand string, cp *Campaign) (route.Reason, string) {
	if cp.Spec().Paused {
		return route.ReasonCampaignPaused, "spec.paused is true"
	}
	if s.o.Budget != nil && cp.Caps.Limited() && s.o.Budget.Exhausted(brand, cp.Name) {
		return route.ReasonBudgetExhausted, "its budget is exhausted"
	}
	return "", ""
}

func (o *Owner) pausedRecheck() time.Duration {
	if o.PausedRecheck > 0 {
		return o.PausedRecheck
	}
	return PausedRecheck
}

// walk runs a flow from step name until it parks or ends.
func (s *ownerState) walk(ctx context.Context, b *Brand, cp *Campaign, ps *PlayerState, fp *FlowPos, name string, now time.Time) {
	fp.Wait, fp.Event, fp.Until = "", "", 0
	s.markDirty(ps)
	for range maxStepsPerWalk {
		if name == "" {
			s.endFlow(ps, fp, "", now)
			return
		}
		st := cp.Steps[name]
		if st == nil {
			s.endFlow(ps, fp, ReasonStepRemoved, now)
			return
		}
		fp.Seq++
		fp.Step = name
		switch {
		case st.Send != nil:
			id := fp.Origin + "/" + name
			if slices.Contains(fp.Sent, name) {
				id += "#" + strconv.Itoa(fp.Seq)
			} else {
				fp.Sent = append(fp.Sent, name)
			}
			it := &bus.Intent{ID: id, Brand: ps.Brand, Player: ps.Player, Campaign: cp.Name, Step: name,
				FlowInstance: fp.Instance, Category: cp.Spec().Category, Content: cp.Content(fp.Variant, st.Send.Content), Created: now, Event: fp.Data, Coupon: fp.Coupon, Variant: fp.Variant}
			s.decide(ctx, it, now)
			name = cp.Next(name)
		case st.Delay != nil:
			s.park(ps, fp, cp, WaitDelay, "", now.Add(st.Delay.Duration.Duration), now)
			return
		case st.WaitFor != nil:
			s.park(ps, fp, cp, WaitEvent, string(st.WaitFor.Event), now.Add(st.WaitFor.Timeout.Duration), now)
			return
		case st.Branch != nil:
			name = s.branch(ps, cp, st.Branch, now)
		case st.Grant != nil:
			switch {
			case s.grant(ctx, b, cp, ps, fp, st, now):
				name = cp.Next(name)
			case st.Grant.OnRefused != "":
				name = st.Grant.OnRefused
			default:
				// Nothing after a refused grant may announce the reward.
				s.endFlow(ps, fp, ReasonGrantRefused, now)
				return
			}
		case st.Exit != nil:
			s.endFlow(ps, fp, "", now)
			return
		default:
			name = cp.Next(name)
		}
	}
	s.endFlow(ps, fp, ReasonFlowLoop, now)
}

// branch returns the next step of the first case that holds for the player.
func (s *ownerState) branch(ps *PlayerState, cp *Campaign, br *crmv1.BranchStep, now time.Time) string {
	p, ok := s.pt.Get(ps.Brand, ps.Player)
	if !ok {
		return br.Otherwise
	}
	rp := p.Rules(now)
	for _, c := range br.Cases {
		prog := cp.rules[c.When]
		if prog == nil {
			continue
		}
		if m, err := prog.Match(&rp); err == nil && m {
			return c.Next
		}
	}
	return br.Otherwise
}

// grant values a reward, reserves it from the campaign's budget and publishes it to
// REWARDS (with the owner's other output, before the inputs are acknowledged). It
// reports whether the player got the reward (or joined the tournament).
func (s *ownerState) grant(ctx context.Context, b *Brand, cp *Campaign, ps *PlayerState, fp *FlowPos, st *crmv1.Step, now time.Time) bool {
	g := &bus.RewardGrant{ID: bus.RewardGrantID(cp.Name, st.Name, ps.Player, fp.Instance), Brand: ps.Brand, Player: ps.Player,
		Campaign: cp.Name, Step: st.Name, Granted: now.UTC()}
	for _, r := range cp.Spec().Rewards {
		if r.Name == st.Grant.Reward {
			g.Reward = r
		}
	}
	if g.Reward.Tournament != nil {
		s.join(b, cp, ps, st, now)
		return true
	}
	reason, detail, granted := string(route.ReasonBonusRefusedRG), "reward "+st.Grant.Reward, false
	if p, ok := s.pt.Get(ps.Brand, ps.Player); ok && !p.SelfExcludedAt(now) && p.CoolingOffUntil <= players.UnixOf(now) && p.AtRiskUntil <= players.UnixOf(now) {
		rw := s.o.Rewards
		if rw == nil {
			rw = NoRewards{}
		}
		if ok, why := rw.Value(g, &p, fp.Data, now); !ok {
			reason = why
		} else {
			micros := money.MinorToMicros(g.Value.Minor, g.Value.Currency)
			refused := ""
			if s.o.Budget != nil && cp.Caps.Limited() {
				refused = s.o.Budget.Reserve(ps.Brand, cp.Name, micros, ps.spent(cp))
			}
			if refused != "" {
				reason, detail = string(route.ReasonBudgetExhausted), detail+": "+refused+" budget"
				s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatSuppressedPrefix+reason, 1)
			} else if c, why := s.coupon(ctx, ps, cp, g, now); why != "" {
				reason = why
				if s.o.Budget != nil && cp.Caps.Limited() {
					s.o.Budget.Refund(ps.Brand, cp.Name, cp.UID, micros)
				}
			} else {
				granted, reason = true, ReasonGranted
				detail += ": " + money.Format(g.Value.Minor, g.Value.Currency) + " " + g.Value.Currency + " (" + g.Basis + ")"
				if micros > 0 {
					ps.entry(b, cp).Spent += micros
					s.statArm(ps.Brand, cp.Name, fp.Variant, bus.StatCostRewards, micros)
				}
				if c != nil {
					g.Coupon, fp.Coupon = c.Code, c.Code
					if c.Player != "" { // a generated or drawn code is bound to the player; a shared one exists already
						cm := nats.NewMsg("$KV." + bus.BucketCoupons + "." + bus.CouponKey(ps.Brand, c.Code))
						cm.Data, _ = bus.Encode(c)
						s.out = append(s.out, outMsg{msg: cm})
					}
				}
				raw, _ := bus.Encode(g)
				msg := nats.NewMsg(bus.RewardSubject(ps.Brand, ps.Player))
				msg.Data = raw
				s.out = append(s.out, outMsg{msg: msg, id: g.ID})
			}
		}
	}
	result := "refused"
	if granted {
		result = "granted"
		s.statArm(ps.Brand, cp.Name, fp.Variant, bus.StatRewardsGranted, 1)
	} else {
		s.stat(ps.Brand, bus.KindCampaign, cp.Name, bus.StatRewardsCancelled, 1)
	}
	s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(g.ID), Brand: ps.Brand, Player: ps.Player, Campaign: cp.Name,
		Step: st.Name, Kind: OutcomeFlow, Category: string(cp.Spec().Category), Result: result, Reason: reason, Detail: detail})
	return granted
}

// park leaves the flow at a delay or waitFor step and schedules its resume.
func (s *ownerState) park(ps *PlayerState, fp *FlowPos, cp *Campaign, wait, event string, until, now time.Time) {
	fp.Wait, fp.Event, fp.Until = wait, event, until.UnixMilli()
	if ps.flow(fp.Instance) == nil {
		ps.Flows = append(ps.Flows, fp)
	}
	s.markDirty(ps)
	s.scheduleResume(ps, fp, cp.Spec().Category, until, now)
}

func (s *ownerState) scheduleResume(ps *PlayerState, fp *FlowPos, cat crmv1.Category, at, now time.Time) {
	it := &bus.Intent{ID: fp.Origin + "/" + fp.Step + "/resume/" + strconv.Itoa(fp.Seq), Brand: ps.Brand, Player: ps.Player,
		Campaign: fp.Campaign, Step: fp.Step, FlowInstance: fp.Instance, Category: cat, Created: now,
		Flow: bus.FlowResume, Seq: fp.Seq}
	s.schedule(it, at)
}

// endFlow removes a finished flow and remembers it; an abnormal end is recorded.
func (s *ownerState) endFlow(ps *PlayerState, fp *FlowPos, reason string, now time.Time) {
	if i := slices.Index(ps.Flows, fp); i >= 0 {
		ps.Flows = slices.Delete(ps.Flows, i, i+1)
	}
	floor := now.Add(-KeepHistory).Unix()
	ps.Done = slices.DeleteFunc(ps.Done, func(d FlowDone) bool { return d.Ended < floor })
	ps.Done = append(ps.Done, FlowDone{Campaign: fp.Campaign, Instance: fp.Instance, Started: fp.Started, Ended: now.Unix(), Converted: fp.Converted,
		Variant: fp.Variant, Revenue: fp.Revenue, LastChannel: fp.LastChannel, LastTouch: fp.LastTouch})
	if len(ps.Done) > MaxDone {
		ps.Done = ps.Done[len(ps.Done)-MaxDone:]
	}
	s.markDirty(ps)
	if reason != "" {
		detail := "the flow ended at step " + fp.Step
		switch {
		case reason == ReasonControlGroup:
			detail = "the player is in the experiment's control group: measured, sent nothing"
		case reason == ReasonGrantRefused:
			detail = "the reward of step " + fp.Step + " was not granted and the step names no onRefused step: nothing after it runs"
		case fp.Step == "":
			detail = "the flow ended before its first step"
		}
		s.flowOutcome(ps, fp.Campaign, fp.Step, reason, detail, now)
	}
}

func (s *ownerState) flowOutcome(ps *PlayerState, campaign, step, reason, detail string, now time.Time) {
	s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(ps.Brand + "/" + ps.Player + "/" + campaign + "/" + step + "/" + reason + "/" + strconv.FormatInt(now.UnixNano(), 36)),
		Brand: ps.Brand, Player: ps.Player, Campaign: campaign, Step: step, Kind: OutcomeFlow, Result: "ended", Reason: reason, Detail: detail})
}

// resume continues a parked flow whose delay ended or whose wait timed out.
func (s *ownerState) resume(ctx context.Context, it *bus.Intent, now time.Time) {
	ps, ok := s.players[it.Brand+"/"+it.Player]
	if !ok {
		return
	}
	fp := ps.flow(it.FlowInstance)
	if fp == nil || fp.Step != it.Step || fp.Seq != it.Seq || fp.Wait == "" {
		return // the flow moved on (the event came) or ended
	}
	b := s.o.Catalog.Brand(it.Brand)
	if due := time.UnixMilli(fp.Until); now.Before(due) {
		// A schedule fired early: wait again for the rest.
		var cat crmv1.Category
		if cp := b.campaign(fp.Campaign); cp != nil {
			cat = cp.Spec().Category
		}
		s.scheduleResume(ps, fp, cat, due, now)
		return
	}
	cp := b.campaign(fp.Campaign)
	switch {
	case cp == nil:
		s.endFlow(ps, fp, string(route.ReasonCampaignNotFound), now)
		return
	case cp.UID != fp.UID:
		s.endFlow(ps, fp, ReasonCampaignChanged, now)
		return
	}
	if w := cp.Spec().Window; w != nil && w.End != nil && !now.Before(w.End.Time) {
		// Past the window (paused or not): the flow ends, with the reason recorded.
		s.endFlow(ps, fp, ReasonCampaignEnded, now)
		return
	}
	if held, why := s.held(ps.Brand, cp); held != "" {
		// Paused: the flow stays where it is, is woken when the campaign resumes, and
		// looks again later in any case (a resume this replica did not see).
		at := now.Add(s.o.pausedRecheck())
		fp.Until = at.UnixMilli()
		if !fp.Held {
			fp.Held = true
			s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(ps.Brand + "/" + ps.Player + "/" + fp.Instance + "/held/" + strconv.Itoa(fp.Seq)),
				Brand: ps.Brand, Player: ps.Player, Campaign: fp.Campaign, Step: fp.Step, Kind: OutcomeFlow, Result: "held", Reason: string(held),
				Detail: "the campaign is paused (" + why + "): the flow waits at step " + fp.Step + " and goes on when the campaign resumes"})
		}
		s.heldCampaigns[ps.Brand+"/"+fp.Campaign] = struct{}{}
		s.markDirty(ps)
		s.scheduleResume(ps, fp, cp.Spec().Category, at, now)
		return
	}
	fp.Held = false
	st := cp.Steps[fp.Step]
	switch {
	case st == nil:
		s.endFlow(ps, fp, ReasonStepRemoved, now)
	case st.WaitFor != nil && fp.Wait == WaitEvent:
		s.walk(ctx, b, cp, ps, fp, st.WaitFor.OnTimeout, now)
	default:
		s.walk(ctx, b, cp, ps, fp, cp.Next(fp.Step), now)
	}
}

// awaken moves the player's flows waiting for this event on, and counts conversions.
func (s *ownerState) awaken(ctx context.Context, b *Brand, brand, player, typ string, lead bool, rp func() (*rules.Player, *rules.Event), now time.Time) {
	ps, ok := s.players[brand+"/"+player]
	if !ok {
		return
	}
	for _, fp := range slices.Clone(ps.Flows) {
		if fp.Wait != WaitEvent || fp.Event != typ {
			continue
		}
		cp := b.campaign(fp.Campaign)
		if cp == nil || cp.UID != fp.UID {
			continue
		}
		if held, _ := s.held(brand, cp); held != "" {
			continue // a paused campaign's flow does not move; its wait times out as usual
		}
		st := cp.Steps[fp.Step]
		if st == nil || st.WaitFor == nil || string(st.WaitFor.Event) != typ {
			continue
		}
		if st.WaitFor.Condition != "" {
			prog := cp.events[st.WaitFor.Condition]
			if prog == nil {
				continue
			}
			p, e := rp()
			if m, err := prog.MatchEvent(p, e); err != nil || !m {
				continue
			}
		}
		s.walk(ctx, b, cp, ps, fp, cp.Next(fp.Step), now)
	}
	s.convert(b, ps, typ, lead, now)
}

// convert counts a conversion for each campaign whose experiment's goal is this event and
// whose flow started within the goal window, once per flow; a lead (a registration or a
// first deposit) counts as one too.
func (s *ownerState) convert(b *Brand, ps *PlayerState, typ string, lead bool, now time.Time) {
	goal := func(campaign string, started int64) bool {
		cp := b.campaign(campaign)
		if cp == nil || goalEvent(cp) != typ {
			return false
		}
		return now.Unix()-started <= int64(goalWindow(cp)/time.Second)
	}
	count := func(campaign, instance, variant string, last crmv1.Channel) {
		// A conversion record in OUTCOMES (the player's history, the warehouse export): the
		// goal event, the channel credited, the arm. Its id is the flow's, so a replay
		// after a crash is dropped by the stream's de-duplication.
		result := "converted"
		if lead {
			result = "lead"
		}
		s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(ps.Brand + "/" + ps.Player + "/" + campaign + "/" + instance + "/converted"),
			Brand: ps.Brand, Player: ps.Player, Campaign: campaign, Kind: bus.OutcomeConversion, Result: result, Reason: typ, Channel: last, Detail: variant})
		s.stat(ps.Brand, bus.KindCampaign, campaign, bus.StatConverted, 1)
		s.chanStat(ps.Brand, campaign, last, bus.StatConverted, 1)
		s.dimStat(ps.Brand, campaign, ps.Player, bus.StatConverted)
		if lead {
			s.stat(ps.Brand, bus.KindCampaign, campaign, bus.StatLeads, 1)
			s.chanStat(ps.Brand, campaign, last, bus.StatLeads, 1)
		}
		if variant != "" {
			// An arm counts converted players: a player's second converting flow
			// adds nothing to the arm.
			if cp := b.campaign(campaign); cp != nil {
				if en := ps.find(cp); en != nil && en.Arm == variant && !en.Converted {
					en.Converted = true
					s.stat(ps.Brand, bus.KindCampaign, campaign, bus.VariantStat(variant, bus.StatVariantConverted), 1)
				}
			}
		}
		s.markDirty(ps)
	}
	for i := range ps.Done {
		if d := &ps.Done[i]; !d.Converted && goal(d.Campaign, d.Started) {
			d.Converted = true
			count(d.Campaign, d.Instance, d.Variant, attributed(b, d.LastChannel, d.LastTouch, now))
		}
	}
	for _, fp := range ps.Flows {
		if !fp.Converted && goal(fp.Campaign, fp.Started) {
			fp.Converted = true
			count(fp.Campaign, fp.Instance, fp.Variant, attributed(b, fp.LastChannel, fp.LastTouch, now))
		}
	}
}

// goalWindow is how long after a flow's start its player's goal events and deposits count
// for the campaign (the experiment's goal window, else the goal's, 7 days by default).
func goalWindow(cp *Campaign) time.Duration {
	if e := cp.Spec().Experiment; e != nil && e.GoalWindow != nil {
		return e.GoalWindow.Duration
	}
	if g := cp.Spec().Goal; g != nil && g.Window != nil {
		return g.Window.Duration
	}
	return 7 * 24 * time.Hour
}

// attributed is the channel a conversion at now is credited to: the last touch's, when it
// was within the brand's attribution window ("" otherwise).
func attributed(b *Brand, last crmv1.Channel, at int64, now time.Time) crmv1.Channel {
	window := 7 * 24 * time.Hour
	if b.Policy != nil && b.Policy.AttributionWindow > 0 {
		window = b.Policy.AttributionWindow
	}
	if last == "" || now.Unix()-at > int64(window/time.Second) {
		return ""
	}
	return last
}

// goalEvent is the campaign's conversion event type ("" when it counts none): the
// experiment's goal, else the campaign's goal.
func goalEvent(cp *Campaign) string {
	if e := cp.Spec().Experiment; e != nil {
		return string(e.GoalEvent)
	}
	if g := cp.Spec().Goal; g != nil {
		return string(g.Event)
	}
	return ""
}

// earn adds a deposit to the revenue of the campaigns whose flows the player started
// within their goal window, once per campaign however many of its flows are open: the
// campaign's revenue and, per experiment arm, the sums Welch's test needs, over players.
func (s *ownerState) earn(b *Brand, ps *PlayerState, amount int64, now time.Time) {
	seen := map[string]bool{}
	add := func(campaign, variant string, started int64, revenue *int64, last crmv1.Channel) {
		cp := b.campaign(campaign)
		if cp == nil || seen[campaign] || now.Unix()-started > int64(goalWindow(cp)/time.Second) {
			return
		}
		seen[campaign] = true
		*revenue += amount
		s.stat(ps.Brand, bus.KindCampaign, campaign, bus.StatRevenue, amount)
		s.chanStat(ps.Brand, campaign, last, bus.StatRevenue, amount)
		if en := ps.find(cp); variant != "" && en != nil && en.Arm == variant {
			s.stat(ps.Brand, bus.KindCampaign, campaign, bus.VariantStat(variant, bus.StatVariantRevenue), amount)
			// (r + x)^2 - r^2: the sum of squared per-player revenue moves by 2rx + x^2.
			s.stat(ps.Brand, bus.KindCampaign, campaign, bus.VariantStat(variant, bus.StatVariantRevenueSq), 2*en.Revenue*amount+amount*amount)
			en.Revenue += amount
		}
		s.markDirty(ps)
	}
	for _, fp := range ps.Flows {
		add(fp.Campaign, fp.Variant, fp.Started, &fp.Revenue, attributed(b, fp.LastChannel, fp.LastTouch, now))
	}
	for i := range ps.Done {
		d := &ps.Done[i]
		add(d.Campaign, d.Variant, d.Started, &d.Revenue, attributed(b, d.LastChannel, d.LastTouch, now))
	}
}

func (b *Brand) campaign(name string) *Campaign {
	if b == nil {
		return nil
	}
	return b.Campaigns[name]
}

// Control is the experiment arm that receives nothing.
const Control = "control"

// Variant is a player's sticky experiment arm in a campaign: a hash of the campaign's UID
// and the player's id placed on 0-99, the control group first, then the variants by
// weight. The same player always lands in the same arm of the same campaign, and arms of
// different campaigns are independent.
func Variant(uid, player string, e *crmv1.Experiment) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(player))
	slot := int32(h.Sum64() % 100)
	if slot < e.ControlPercent {
		return Control
	}
	acc := e.ControlPercent
	for _, v := range e.Variants {
		acc += v.Weight
		if slot < acc {
			return v.Name
		}
	}
	return e.Variants[len(e.Variants)-1].Name
}

// coupon is the code a coupon reward gives the player: generated, drawn from the imported
// pool (bound to the player here), or the shared code; nil for other rewards. A reason
// says why none could be given.
func (s *ownerState) coupon(ctx context.Context, ps *PlayerState, cp *Campaign, g *bus.RewardGrant, now time.Time) (*bus.Coupon, string) {
	r := g.Reward.Coupon
	if r == nil {
		return nil, ""
	}
	if !r.Imported {
		return reward.Issue(ps.Brand, cp.Name, &g.Reward, ps.Player, g.Value, now), ""
	}
	if s.o.Coupons == nil {
		return nil, ReasonCouponPoolEmpty
	}
	c, err := s.o.Coupons.Draw(ctx, ps.Brand, r.Pool)
	if err != nil {
		if !errors.Is(err, reward.ErrPoolEmpty) {
			s.o.Log.Error("drawing a coupon code", "brand", ps.Brand, "campaign", cp.Name, "pool", r.Pool, "err", err)
		}
		return nil, ReasonCouponPoolEmpty
	}
	issued := reward.Issue(ps.Brand, cp.Name, &g.Reward, ps.Player, g.Value, now)
	c.Campaign, c.Reward, c.Player, c.Value, c.PerPlayer, c.Segment = cp.Name, g.Reward.Name, ps.Player, g.Value, issued.PerPlayer, issued.Segment
	if !issued.ValidUntil.IsZero() && (c.ValidUntil.IsZero() || issued.ValidUntil.Before(c.ValidUntil)) {
		c.ValidUntil = issued.ValidUntil
	}
	return c, ""
}
