package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/render"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/rules"
)

// Reasons the owner gives besides the routing decision's.
const (
	ReasonFailover     = "Failover"
	ReasonRenderFailed = "RenderFailed"
	// ReasonRetryScheduled: every channel of a mandatory message failed before its
	// deadline; the whole chain is tried again after a backoff.
	ReasonRetryScheduled = "RetryScheduled"
	// ReasonRetry: the chain of a mandatory message is tried again from its first channel.
	ReasonRetry = "Retry"
	// ReasonMandatoryUndelivered: a mandatory message reached its deadline (the category's
	// retryFor) without a channel taking it; it is dead-lettered and counted.
	ReasonMandatoryUndelivered = "MandatoryUndelivered"
)

// Backoff between two rounds of a mandatory message's chain: it doubles from
// RetryBackoff up to MaxRetryBackoff, with up to a quarter more at random.
const (
	RetryBackoff    = 5 * time.Second
	MaxRetryBackoff = 5 * time.Minute
)

// Owner is the partition handler of a dispatcher: the players keeper plus routing. It
// consumes a partition's events and intents in one goroutine, so a player's profile,
// caps, dedup keys and pending deliveries change in one order.
type Owner struct {
	Keeper *players.Keeper
	JS     jetstream.JetStream
	// State is the croupier-state bucket.
	State   jetstream.KeyValue
	Catalog *Catalog
	Prefs   *prefs.Cache
	// Budget reserves before a send or grant (unlimited when nil).
	Budget Budget
	// Rewards grants the rewards of grant steps (NoRewards when nil).
	Rewards Rewarder
	// Coupons draws codes of imported coupon pools (none when nil).
	Coupons CouponPools
	// Stats is the croupier-stats bucket the owner writes its partitions' counters to
	// (none when nil); StatsEvery is the least time between two writes (default 1s).
	Stats      jetstream.KeyValue
	StatsEvery time.Duration
	// RunBatch is the most intents one expansion step publishes (default 10,000).
	RunBatch int
	// Links returns a player's one-click unsubscribe URL for a category and channel, naming
	// the campaign and decision it came with (counted as the campaign's unsubscribe); nil
	// or "" when the brand has no link key.
	Links func(ctx context.Context, brand, player string, cat crmv1.Category, ch crmv1.Channel, campaign, decision string) string
	Log   *slog.Logger
	Clock clock.Func
	// Partitions is P, to spread deferred releases of a campaign's rollout rate.
	Partitions int
	// TournamentGrace is how long after a tournament's end late bets may still score
	// before the scores close (default TournamentGrace).
	TournamentGrace time.Duration
	// PausedRecheck is how often a flow parked in a paused campaign, or a message it
	// deferred, looks again whether the campaign resumed (default PausedRecheck).
	PausedRecheck time.Duration

	mu   sync.Mutex
	open map[int]*ownerState

	// Decided counts decisions; Dispatched observes a mandatory message's time from
	// intent to delivery job against its SLA.
	Decided    func(category, result, reason string)
	Dispatched func(brand string, category crmv1.Category, took, sla time.Duration)
	// Undelivered counts a mandatory message given up at its deadline.
	Undelivered func(brand string, category crmv1.Category)
	// RetryBackoff is the first backoff between two rounds of a mandatory message's
	// chain (default RetryBackoff).
	RetryBackoff time.Duration
}

var _ partition.Handler = (*Owner)(nil)

// PlayerState is a player's routing state: the croupier-state value.
type PlayerState struct {
	Brand   string        `json:"brand"`
	Player  string        `json:"player"`
	History route.History `json:"history"`
	// Pending are sent decisions whose delivery may still fail over to the next channel.
	Pending []Pending `json:"pending,omitempty"`
	// Flows are the player's parked campaign flows; Done the finished ones remembered.
	Flows []*FlowPos `json:"flows,omitempty"`
	Done  []FlowDone `json:"done,omitempty"`
	// Entries count the player's entries into campaigns that limit them.
	Entries []Entry `json:"entries,omitempty"`

	rev   uint64
	dirty bool
}

// Pending is a sent decision awaiting its delivery outcome.
type Pending struct {
	DecisionID string          `json:"decisionID"`
	Intent     bus.Intent      `json:"intent"`
	Channel    crmv1.Channel   `json:"channel"`
	Fallbacks  []crmv1.Channel `json:"fallbacks,omitempty"`
	At         int64           `json:"at"`
	// Cost is the upper-bound message cost reserved from the budget (micros) until the
	// real cost is settled.
	Cost int64 `json:"cost,omitempty"`
	// Deadline (Unix seconds) is set on a mandatory message: until then an exhausted
	// chain is tried again from its first channel (Chain, in round Round); at it the
	// message is recorded undelivered. Such an entry is never trimmed.
	Deadline int64           `json:"deadline,omitempty"`
	Chain    []crmv1.Channel `json:"chain,omitempty"`
	Round    int             `json:"round,omitempty"`
}

// mandatory reports whether the entry is a mandatory message still inside its deadline.
func (p *Pending) mandatory(now time.Time) bool { return p.Deadline > 0 && now.Unix() < p.Deadline }

// MaxPending bounds a player's pending deliveries; PendingFor is how long one is kept.
const (
	MaxPending = 32
	PendingFor = 7 * 24 * time.Hour
	// KeepHistory covers the longest frequency cap window and dedup window.
	KeepHistory = 91 * 24 * time.Hour
)

// Open loads a partition's players and routing state.
func (o *Owner) Open(ctx context.Context, part int, epoch uint64) (partition.State, error) {
	fence, err := o.raiseFence(ctx, part, epoch)
	if err != nil {
		return nil, err
	}
	ks, err := o.Keeper.OpenState(ctx, part)
	if err != nil {
		return nil, err
	}
	st := &ownerState{o: o, part: part, ks: ks, pt: ks.Partition(), players: map[string]*PlayerState{}, slots: map[string]int{},
		runs: map[string]*runsDoc{}, members: map[string][]string{}, segs: map[string]*segMembers{}, stats: map[string]*statsDoc{},
		boards: map[string]*board{}, asks: make(chan previewAsk, 8), epoch: epoch, fenceRev: fence, heldCampaigns: map[string]struct{}{}}
	if err := st.load(ctx); err != nil {
		ks.Close()
		return nil, err
	}
	if err := st.loadStats(ctx); err != nil {
		ks.Close()
		return nil, err
	}
	st.rebuildBoards()
	o.mu.Lock()
	if o.open == nil {
		o.open = map[int]*ownerState{}
	}
	o.open[part] = st
	o.mu.Unlock()
	return st, nil
}

type outMsg struct {
	msg *nats.Msg
	id  string
}

type fenceDoc struct {
	Epoch uint64 `json:"epoch"`
}

// raiseFence writes the partition's fence with this owner's epoch before it loads
// anything: every earlier owner's next publish is refused. An owner of an older epoch
// than the fence's is itself fenced.
func (o *Owner) raiseFence(ctx context.Context, part int, epoch uint64) (uint64, error) {
	key := bus.FenceKey(part)
	raw, _ := json.Marshal(fenceDoc{Epoch: epoch})
	for range 100 {
		e, err := o.State.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err := o.State.Create(ctx, key, raw)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return rev, err
		case err != nil:
			return 0, fmt.Errorf("reading the fence of partition %d: %w", part, err)
		}
		var f fenceDoc
		if json.Unmarshal(e.Value(), &f) == nil && f.Epoch > epoch {
			return 0, fmt.Errorf("%w: the fence of partition %d holds epoch %d, this owner's is %d", partition.ErrSuperseded, part, f.Epoch, epoch)
		}
		rev, err := o.State.Update(ctx, key, raw, e.Revision())
		if err == nil {
			return rev, nil
		}
		if !bus.Conflict(err) {
			return 0, fmt.Errorf("raising the fence of partition %d: %w", part, err)
		}
	}
	return 0, fmt.Errorf("raising the fence of partition %d: too many concurrent owners", part)
}

// checkFence proves, by a conditional write, that no newer owner opened the partition
// since this one did (or last checked).
func (s *ownerState) checkFence(ctx context.Context) error {
	raw, _ := json.Marshal(fenceDoc{Epoch: s.epoch})
	rev, err := s.o.State.Update(ctx, bus.FenceKey(s.part), raw, s.fenceRev)
	if err != nil {
		if bus.Conflict(err) {
			return players.ErrFenced
		}
		return fmt.Errorf("checking the fence of partition %d: %w", s.part, err)
	}
	s.fenceRev = rev
	return nil
}

type ownerState struct {
	o       *Owner
	part    int
	ks      *players.PartitionState
	pt      *players.Partition
	players map[string]*PlayerState
	dirty   []*PlayerState
	// out are the publishes of this batch, made after the fence check and before the
	// state that covers them is persisted.
	out []outMsg
	// epoch is this owner's lease epoch; fenceRev the fence's revision it last wrote.
	epoch, fenceRev uint64
	observed        []observation
	// slots count deferred releases per campaign and due time, to spread them.
	slots map[string]int
	// runs are the brands' scheduled runs in this partition (croupier-state); members the
	// sorted members of each run being expanded (rebuilt after a handoff).
	runs       map[string]*runsDoc
	runsDirty  []*runsDoc
	members    map[string][]string
	segs       map[string]*segMembers
	stats      map[string]*statsDoc
	boards     map[string]*board
	asks       chan previewAsk
	statsDirty bool
	statsAt    time.Time
	// starts are the run intents of this Pump, confirmed before the cursor is persisted.
	starts   []jetstream.PubAckFuture
	startErr error
	// heldCampaigns are the campaigns (brand/name) with flows held by a pause, woken by
	// Pump once the campaign resumes.
	heldCampaigns map[string]struct{}
}

// observation is a mandatory message's job, timed from its intent's creation to the
// publish of the job (after the batch's persist) against the category's SLA.
type observation struct {
	brand    string
	category crmv1.Category
	created  time.Time
	sla      time.Duration
}

func (s *ownerState) load(ctx context.Context) error {
	w, err := s.o.State.Watch(ctx, "*."+strconv.Itoa(s.part)+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("loading routing state of partition %d: %w", s.part, err)
	}
	return bus.Follow(ctx, w, "croupier-state", func(e jetstream.KeyValueEntry) error {
		if strings.HasSuffix(e.Key(), ".="+runsToken) {
			rd := &runsDoc{rev: e.Revision()}
			if err := json.Unmarshal(e.Value(), rd); err != nil {
				return fmt.Errorf("loading %s: %w", e.Key(), err)
			}
			s.runs[rd.Brand] = rd
			return nil
		}
		ps := &PlayerState{rev: e.Revision()}
		if err := json.Unmarshal(e.Value(), ps); err != nil {
			return fmt.Errorf("loading %s: %w", e.Key(), err)
		}
		s.players[ps.Brand+"/"+ps.Player] = ps
		for _, fp := range ps.Flows {
			if fp.Held {
				s.heldCampaigns[ps.Brand+"/"+fp.Campaign] = struct{}{}
			}
		}
		return nil
	}, func() bool { return true })
}

func (s *ownerState) state(brand, player string) *PlayerState {
	k := brand + "/" + player
	ps, ok := s.players[k]
	if !ok {
		ps = &PlayerState{Brand: brand, Player: player}
		s.players[k] = ps
	}
	return ps
}

func (s *ownerState) markDirty(ps *PlayerState) {
	if !ps.dirty {
		ps.dirty = true
		s.dirty = append(s.dirty, ps)
	}
}

func (s *ownerState) Close() {
	s.o.mu.Lock()
	if s.o.open[s.part] == s {
		delete(s.o.open, s.part)
	}
	s.o.mu.Unlock()
	s.ks.Close()
}

func (s *ownerState) Tick(ctx context.Context, now time.Time) error {
	for k := range s.slots {
		due, _ := strconv.ParseInt(k[strings.LastIndexByte(k, '@')+1:], 10, 64)
		if due < now.Unix() {
			delete(s.slots, k)
		}
	}
	if err := s.closeTournaments(ctx, now); err != nil {
		return err
	}
	return s.ks.Tick(ctx, now)
}

func (s *ownerState) Handle(ctx context.Context, msg jetstream.Msg) error {
	subj := msg.Subject()
	switch {
	case strings.HasPrefix(subj, bus.Root+".intents."):
		return s.handleIntent(ctx, msg)
	case strings.HasPrefix(subj, bus.Root+".outcomes."):
		s.countOutcome(msg.Data())
		return nil
	case strings.HasPrefix(subj, bus.Root+".runs."):
		return s.acceptRun(ctx, msg)
	}
	ev, res, err := s.ks.HandleEvent(ctx, msg)
	if err != nil || ev == nil {
		return err
	}
	switch {
	case res == players.Erased && ev.Type == ingest.TypeErasureRequested:
		delete(s.players, ev.Brand+"/"+ev.Player)
		return nil
	case res != players.Applied:
		return nil
	}
	if ev.Type == ingest.TypeDeliveryFailed && ev.Data.DecisionID != nil {
		ch := ""
		if ev.Data.Channel != nil {
			ch = *ev.Data.Channel
		}
		reason := ""
		if ev.Data.Reason != nil {
			reason = *ev.Data.Reason
		}
		s.failover(ctx, ev.Brand, ev.Player, *ev.Data.DecisionID, crmv1.Channel(ch), reason)
		return nil
	}
	if ev.Type == ingest.TypeCostSettled && ev.Data.DecisionID != nil {
		ps := s.state(ev.Brand, ev.Player)
		for i := range ps.Pending {
			if pd := &ps.Pending[i]; pd.DecisionID == *ev.Data.DecisionID {
				s.settle(ps, pd, ev.CostMicros)
				break
			}
		}
		return nil
	}
	s.onEvent(ctx, ev)
	return nil
}

func (s *ownerState) handleIntent(ctx context.Context, msg jetstream.Msg) error {
	brand, _, player, ok := bus.IntentAddress(msg.Subject())
	it, err := bus.Decode[bus.Intent](msg.Data())
	switch {
	case !ok:
		err = errors.New("subject is not croupier.intents.<brand>.<part>.<player>")
	case err != nil:
	case it.Brand != brand || it.Player != player:
		err = fmt.Errorf("intent for %s/%s published on the subject of %s/%s", it.Brand, it.Player, brand, player)
	case it.ID == "":
		err = errors.New("id: must not be empty")
	case bus.CheckToken("campaign", it.Campaign) != nil:
		err = bus.CheckToken("campaign", it.Campaign)
	}
	if err != nil {
		return ingest.DeadLetterNow(ctx, s.o.JS, bus.StreamIntents, msg, err.Error(), s.o.Clock.Now())
	}
	now := s.o.Clock.Now()
	switch it.Flow {
	case bus.FlowRetry:
		s.retry(ctx, &it, now)
	case bus.FlowResume:
		s.resume(ctx, &it, now)
	case bus.FlowStart:
		s.startRunFlow(ctx, &it, now)
	default:
		// A test send is not held by a pause or a spent budget: it previews the message.
		if it.Test || !s.hold(&it, now) {
			s.decide(ctx, &it, now)
		}
	}
	return nil
}

// hold keeps a message of a paused campaign (by a person or by its budget) for later: a
// run's message or one deferred before the pause is decided again when the campaign
// resumes (looked at every PausedRecheck), or dropped with CampaignNotActive if its
// window ended by then. Steps of a walk already under way (an onRefused step after the
// grant that found the budget spent) are decided as usual.
func (s *ownerState) hold(it *bus.Intent, now time.Time) bool {
	b := s.o.Catalog.Brand(it.Brand)
	if b == nil {
		return false
	}
	cp := b.Campaigns[it.Campaign]
	if cp == nil {
		return false
	}
	if ok, _ := cp.InWindow(now); !ok {
		return false
	}
	held, why := s.held(it.Brand, cp)
	if held == "" {
		return false
	}
	at := now.Add(s.o.pausedRecheck())
	s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(it.ID), Brand: it.Brand, Player: it.Player, Campaign: it.Campaign, Step: it.Step,
		Kind: bus.OutcomeDecision, Category: string(it.Category), IntentID: it.ID, Result: string(route.Defer), Reason: string(held), SendAt: at,
		Detail: "the campaign is paused (" + why + "): held, looked at again at " + at.UTC().Format(time.RFC3339)})
	s.schedule(it, at)
	s.count(it.Category, string(route.Defer), string(held))
	return true
}

// onEvent follows an applied event: it starts the event-triggered campaigns it matches,
// moves on the player's flows waiting for it, counts conversions and re-evaluates the
// Segments that list it.
func (s *ownerState) onEvent(ctx context.Context, ev *ingest.Event) {
	b := s.o.Catalog.Brand(ev.Brand)
	if b == nil {
		return
	}
	p, ok := s.pt.Get(ev.Brand, ev.Player)
	if !ok || p.Erased {
		return
	}
	now := s.o.Clock.Now()
	var rp *rules.Player
	var re *rules.Event
	view := func() (*rules.Player, *rules.Event) {
		if rp == nil {
			v := p.Rules(now)
			rp = &v
			re = &rules.Event{ID: ev.ID, Source: ev.Source, Type: ev.Type, Time: ev.Time}
			_ = json.Unmarshal(ev.CloudEvent.Data, &re.Data)
		}
		return rp, re
	}
	// A lead: a registration, or a first deposit (the platform marks it data.first).
	lead := ev.Type == ingest.TypeRegistered || (ev.Type == ingest.TypeDepositCompleted && ev.Data.First != nil && *ev.Data.First)
	s.awaken(ctx, b, ev.Brand, ev.Player, ev.Type, lead, view, now)
	if ev.Type == ingest.TypeDepositCompleted && ev.Data.Currency != nil && *ev.Data.Currency == p.Currency {
		if ps, ok := s.players[ev.Brand+"/"+ev.Player]; ok {
			s.earn(b, ps, ev.AmountMinor, now)
		}
	}
	if ps, ok := s.players[ev.Brand+"/"+ev.Player]; ok && len(ps.Entries) > 0 {
		var dep, ngr int64
		if ev.Data.Currency != nil && *ev.Data.Currency == p.Currency {
			switch ev.Type {
			case ingest.TypeDepositCompleted:
				dep = ev.AmountMinor
			case ingest.TypeBetPlaced:
				ngr = ev.AmountMinor
			case ingest.TypeBetSettled:
				ngr = -ev.WinMinor
			}
		}
		s.effectEvent(ps, players.Active(ev.Type), dep, ngr, now)
	}
	if ev.Type == ingest.TypeCouponRedeemed && ev.Data.Campaign != nil {
		if cp := b.campaign(*ev.Data.Campaign); cp != nil {
			s.stat(ev.Brand, bus.KindCampaign, cp.Name, bus.StatCouponsRedeemed, 1)
		}
	}
	if ev.Type == ingest.TypeBonusActivated && ev.Data.Campaign != nil {
		if cp := b.campaign(*ev.Data.Campaign); cp != nil {
			s.stat(ev.Brand, bus.KindCampaign, cp.Name, bus.StatBonusesActivated, 1)
		}
	}
	s.reevaluate(b, ev, &p, now)
	for _, cp := range b.Triggers[ev.Type] {
		if ok, _ := cp.InWindow(now); !ok {
			continue
		}
		held, why := s.held(ev.Brand, cp)
		pl, e := view()
		if cp.Condition != nil {
			if m, err := cp.Condition.MatchEvent(pl, e); err != nil || !m {
				continue
			}
		}
		if !s.inAudience(b, cp, pl) {
			continue
		}
		key := ev.IdempotencyKey()
		if held != "" {
			// A paused Campaign (by a person or by its budget) starts nothing, and says so
			// in the player's history.
			s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(cp.UID + "/" + key + "/paused"), Brand: ev.Brand, Player: ev.Player,
				Campaign: cp.Name, Kind: OutcomeFlow, Result: string(route.Suppress), Reason: string(held),
				Detail: "the campaign is paused (" + why + "): the " + ev.Type + " event started nothing"})
			s.stat(ev.Brand, bus.KindCampaign, cp.Name, bus.StatSuppressedPrefix+string(held), 1)
			continue
		}
		s.startFlow(ctx, b, cp, s.state(ev.Brand, ev.Player), shortHash(cp.UID+"/"+key), cp.UID+"/"+key, ingest.WithoutContacts(ev.CloudEvent.Data), now)
	}
	// After the triggers, so the bet that made a player join a race counts in it.
	if ev.Type == ingest.TypeBetSettled {
		if ps, ok := s.players[ev.Brand+"/"+ev.Player]; ok {
			s.score(b, ps, ev)
		}
	}
}

// inAudience reports whether the player is in the campaign's audience (everyone when it
// has none).
func (s *ownerState) inAudience(b *Brand, cp *Campaign, rp *rules.Player) bool {
	if cp.Audience != nil {
		if m, err := cp.Audience.Match(rp); err != nil || !m {
			return false
		}
	}
	if cp.SegmentRef != "" {
		seg := b.Segments[cp.SegmentRef]
		if seg == nil {
			return false
		}
		if m, err := seg.Program.Match(rp); err != nil || !m {
			return false
		}
	}
	return true
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func (s *ownerState) count(cat crmv1.Category, result, reason string) {
	if s.o.Decided != nil {
		s.o.Decided(string(cat), result, reason)
	}
}

// outcome buffers an OUTCOMES record. Its message id makes a record published again
// after a crash a duplicate, while a decision taken again later (a deferral released into
// quiet hours, deferred a second time) is a record of its own.
func (s *ownerState) outcome(o *bus.Outcome) {
	b, _ := bus.Encode(o)
	msg := nats.NewMsg(bus.OutcomeSubject(o.Brand, s.part, o.Player))
	msg.Data = b
	id := o.DecisionID + "/" + o.Kind + "/" + o.Result + "/" + o.Reason + "/" + string(o.Channel)
	if !o.SendAt.IsZero() {
		id += "@" + strconv.FormatInt(o.SendAt.UnixNano(), 10)
	}
	s.out = append(s.out, outMsg{msg: msg, id: id})
}

// routeInput is what routing reads for an intent of cp to the player (no budget: the
// caller adds it when the decision may spend), and the player's profile if known.
func (s *ownerState) routeInput(b *Brand, cp *Campaign, it *bus.Intent, ps *PlayerState, content *render.Content, now time.Time) (route.Input, *players.Player) {
	offered := content.Offered
	if st := cp.Steps[it.Step]; st != nil && st.Send != nil && len(st.Send.Channels) > 0 {
		var allowed prefs.Set
		for _, ch := range st.Send.Channels {
			allowed = allowed.With(ch)
		}
		offered &= allowed
	}
	var pp *players.Player
	if p, ok := s.pt.Get(it.Brand, it.Player); ok {
		pp = &p
	}
	in := route.Input{Intent: it, Player: pp, Policy: b.Policy, Offered: offered, Configured: b.Configured,
		History: &ps.History, ContentHash: content.Hash, DedupKey: content.DedupKey, Costs: b.Costs, Now: now}
	if pp != nil {
		in.Prefs = s.o.Prefs.Get(it.Brand, s.part, it.Player)
		in.Suppressed = s.o.Prefs.Suppressed(it.Brand, map[crmv1.Channel]string{
			crmv1.ChannelEmail: pp.Email, crmv1.ChannelSMS: pp.Phone, crmv1.ChannelViber: pp.ViberID})
	}
	if it.Reward != "" && cp.Config.RewardValues != nil {
		v := cp.Config.RewardValues[it.Reward]
		in.RewardMicros = money.MinorToMicros(v.Minor, v.Currency)
	}
	return in, pp
}

// decide routes one intent and buffers what follows: the job, the schedule, the outcome.
func (s *ownerState) decide(ctx context.Context, it *bus.Intent, now time.Time) {
	ps := s.state(it.Brand, it.Player)
	did := route.DecisionID(it.ID)
	for _, pd := range ps.Pending {
		if pd.DecisionID == did {
			// Redelivered after a crash between persist and publish: issue the same job
			// again; its message id makes JetStream drop it if it did go out.
			s.issue(ctx, ps, &pd, now, false)
			return
		}
	}
	oc := &bus.Outcome{Time: now.UTC(), DecisionID: did, Brand: it.Brand, Player: it.Player, Campaign: it.Campaign, Step: it.Step,
		Kind: bus.OutcomeDecision, Category: string(it.Category), IntentID: it.ID, Test: it.Test}
	b := s.o.Catalog.Brand(it.Brand)
	var cp *Campaign
	if b != nil {
		cp = b.Campaigns[it.Campaign]
	}
	if cp == nil {
		s.stopped(oc, route.Suppress, route.ReasonCampaignNotFound, "")
		return
	}
	if ok, why := cp.InWindow(now); !ok && !it.Test {
		s.stopped(oc, route.Suppress, route.ReasonCampaignNotActive, why)
		return
	}
	content := cp.Contents[it.Content]
	if content == nil {
		s.stopped(oc, route.Suppress, route.ReasonContentNotFound, it.Content)
		return
	}
	oc.ContentHash = content.Hash
	in, pp := s.routeInput(b, cp, it, ps, content, now)
	if s.o.Budget != nil && cp.Caps.Limited() && !it.Test {
		// A test send costs the campaign nothing.
		in.Budget, in.PlayerSpent = s.o.Budget, ps.spent(cp)
	}
	d := route.Decide(&in)
	oc.Result, oc.Reason, oc.Detail, oc.RouteStep = string(d.Result), string(d.Reason), d.Detail, d.Step
	switch d.Result {
	case route.Send:
		pd := Pending{DecisionID: did, Intent: *it, Channel: d.Channel, Fallbacks: d.Fallbacks, At: now.Unix(), Cost: d.Reserved - in.RewardMicros}
		if rule := b.Policy.Rule(it.Category); rule != nil && rule.Mandatory && rule.RetryFor > 0 {
			pd.Deadline = now.Add(rule.RetryFor).Unix()
			pd.Chain = append([]crmv1.Channel{d.Channel}, d.Fallbacks...)
		}
		if d.Reserved > 0 {
			ps.entry(b, cp).Spent += d.Reserved
			if in.RewardMicros > 0 {
				s.statArm(it.Brand, it.Campaign, it.Variant, bus.StatCostRewards, in.RewardMicros)
			}
		}
		r, err := s.render(ctx, b, cp, content, pp, in.Prefs, &pd)
		r.Unsubscribe = s.unsubscribe(ctx, it, d.Channel, did)
		if err != nil {
			s.o.Log.Error("rendering a message", "brand", it.Brand, "campaign", it.Campaign, "content", it.Content, "err", err)
			s.stopped(oc, route.Suppress, ReasonRenderFailed, err.Error())
			return
		}
		oc.Channel, oc.Fallbacks, oc.Locale, oc.TemplateID = d.Channel, d.Fallbacks, r.Locale, r.TemplateID
		if !it.Test {
			// A test send counts toward no cap and no dedup of the player's real messages.
			ps.History.Prune(now, KeepHistory)
			ps.History.Record(it.Category, d.Channel, route.ContentKey(it, content.Hash, content.DedupKey), now)
		}
		ps.addPending(pd, now)
		s.markDirty(ps)
		s.outcome(oc)
		s.publishJob(b, cp, it, did, d.Channel, d.Fallbacks, 0, pp, r, in.Costs)
		if rule := b.Policy.Rule(it.Category); rule != nil && rule.Mandatory && !it.Created.IsZero() {
			s.observed = append(s.observed, observation{it.Brand, it.Category, it.Created, rule.SLA})
		}
	case route.Defer:
		at := s.spread(cp, it, d.SendAt)
		oc.SendAt = at
		s.outcome(oc)
		s.schedule(it, at)
	default:
		s.outcome(oc)
		if !it.Test {
			s.stat(it.Brand, bus.KindCampaign, it.Campaign, bus.StatSuppressedPrefix+string(d.Reason), 1)
		}
	}
	s.count(it.Category, string(d.Result), string(d.Reason))
}

func (s *ownerState) stopped(oc *bus.Outcome, r route.Result, reason route.Reason, detail string) {
	oc.Result, oc.Reason, oc.Detail = string(r), string(reason), detail
	s.outcome(oc)
	s.count(crmv1.Category(oc.Category), oc.Result, oc.Reason)
	s.stat(oc.Brand, bus.KindCampaign, oc.Campaign, bus.StatSuppressedPrefix+oc.Reason, 1)
}

// addPending adds a sent decision. Entries older than PendingFor and, beyond MaxPending,
// the oldest go; a mandatory message inside its deadline never does (it is bounded by its
// deadline instead), so its late failure report still finds it.
func (ps *PlayerState) addPending(pd Pending, now time.Time) {
	floor := now.Add(-PendingFor).Unix()
	keep := ps.Pending[:0]
	for _, p := range ps.Pending {
		if p.At >= floor || p.mandatory(now) {
			keep = append(keep, p)
		}
	}
	ps.Pending = append(keep, pd)
	for over := len(ps.Pending) - MaxPending; over > 0; {
		i := slices.IndexFunc(ps.Pending, func(p Pending) bool { return !p.mandatory(now) })
		if i < 0 {
			break
		}
		ps.Pending = slices.Delete(ps.Pending, i, i+1)
		over--
	}
}

// spread places a deferred release within the campaign's rollout rate: each partition
// releases its share of maxPerMinute per minute after the due time.
func (s *ownerState) spread(cp *Campaign, it *bus.Intent, due time.Time) time.Time {
	ro := cp.Spec().Rollout
	if ro == nil || ro.MaxPerMinute <= 0 || it.Due.Equal(due) {
		return due
	}
	share := max(1, int(ro.MaxPerMinute)/max(1, s.o.Partitions))
	k := it.Brand + "/" + cp.Name + "@" + strconv.FormatInt(due.Unix(), 10)
	n := s.slots[k]
	s.slots[k] = n + 1
	return due.Add(time.Duration(n/share) * time.Minute)
}

// schedule buffers a durable schedule that re-enters the intent at its due time.
func (s *ownerState) schedule(it *bus.Intent, at time.Time) {
	next := *it
	next.Due = at
	b, _ := bus.Encode(&next)
	fi := it.FlowInstance
	if !bus.ValidToken(fi) {
		fi = shortHash(it.ID)
	}
	step := it.Step
	if !bus.ValidToken(step) {
		step = "send"
	}
	if it.Flow == bus.FlowRetry {
		// Its own subject: a schedule replaces the one on its subject.
		step += "-retry"
	}
	msg := nats.NewMsg(bus.ScheduleSubject(it.Brand, s.part, it.Player, it.Campaign, fi, step))
	msg.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Nats-Schedule-Target", bus.IntentSubject(it.Brand, s.part, it.Player))
	msg.Data = b
	s.out = append(s.out, outMsg{msg: msg})
}

// failover issues the next candidate's job when a worker reports a channel failed.
func (s *ownerState) failover(ctx context.Context, brand, player, decisionID string, failed crmv1.Channel, reason string) {
	ps := s.state(brand, player)
	for i := range ps.Pending {
		pd := &ps.Pending[i]
		if pd.DecisionID != decisionID || pd.Channel != failed {
			continue
		}
		now := s.o.Clock.Now()
		oc := &bus.Outcome{Time: now.UTC(), DecisionID: decisionID, Brand: brand, Player: player, Campaign: pd.Intent.Campaign,
			Step: pd.Intent.Step, Kind: bus.OutcomeFailover, Category: string(pd.Intent.Category), IntentID: pd.Intent.ID}
		if !pd.Intent.Test {
			s.chanStat(brand, pd.Intent.Campaign, failed, bus.StatFailed, 1)
		}
		if len(pd.Fallbacks) == 0 && pd.Deadline > 0 {
			s.exhausted(ps, pd, oc, failed, reason, now)
			return
		}
		if len(pd.Fallbacks) == 0 {
			oc.Result, oc.Reason, oc.Detail = string(route.Suppress), string(route.ReasonAllChannelsFailed), string(failed)+": "+reason
			s.outcome(oc)
			s.count(pd.Intent.Category, oc.Result, oc.Reason)
			if !pd.Intent.Test {
				s.stat(brand, bus.KindCampaign, pd.Intent.Campaign, bus.StatFailed, 1)
			}
			s.settle(ps, pd, 0)
			ps.Pending = append(ps.Pending[:i], ps.Pending[i+1:]...)
			s.markDirty(ps)
			return
		}
		pd.Channel, pd.Fallbacks = pd.Fallbacks[0], pd.Fallbacks[1:]
		s.markDirty(ps)
		oc.Result, oc.Reason, oc.Channel, oc.Fallbacks = string(route.Send), ReasonFailover, pd.Channel, pd.Fallbacks
		oc.Detail = string(failed) + " failed: " + reason
		if pd.Round > 0 {
			oc.SendAt = now // a record of its own, not a repeat of the first round's
		}
		s.outcome(oc)
		s.count(pd.Intent.Category, oc.Result, oc.Reason)
		s.issue(ctx, ps, pd, now, true)
		return
	}
}

// exhausted follows a mandatory message whose every channel failed: before its deadline
// the chain is tried again from its first channel after a backoff (a durable schedule that
// comes back as a FlowRetry intent); at the deadline it is undelivered.
func (s *ownerState) exhausted(ps *PlayerState, pd *Pending, oc *bus.Outcome, failed crmv1.Channel, reason string, now time.Time) {
	deadline := time.Unix(pd.Deadline, 0)
	if !now.Before(deadline) {
		s.undelivered(ps, pd.DecisionID, oc, string(failed)+": "+reason, now)
		return
	}
	first := s.o.RetryBackoff
	if first <= 0 {
		first = RetryBackoff
	}
	backoff := min(first<<min(pd.Round, 16), MaxRetryBackoff)
	backoff += rand.N(backoff/4 + 1)
	at := now.Add(backoff)
	if at.After(deadline) {
		at = deadline
	}
	pd.Round++
	s.markDirty(ps)
	oc.Result, oc.Reason, oc.SendAt = string(route.Defer), ReasonRetryScheduled, at
	oc.Detail = fmt.Sprintf("every channel failed (last %s: %s); round %d of the chain %v at %s; undelivered at %s",
		failed, reason, pd.Round+1, pd.Chain, at.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339))
	s.outcome(oc)
	s.count(pd.Intent.Category, oc.Result, oc.Reason)
	retry := pd.Intent
	retry.Flow, retry.Seq = bus.FlowRetry, pd.Round
	s.schedule(&retry, at)
}

// retry runs the next round of a mandatory message's chain, or records it undelivered
// at its deadline. A message delivered meanwhile (no longer pending) is left alone.
func (s *ownerState) retry(ctx context.Context, it *bus.Intent, now time.Time) {
	ps := s.state(it.Brand, it.Player)
	did := route.DecisionID(it.ID)
	i := slices.IndexFunc(ps.Pending, func(p Pending) bool { return p.DecisionID == did })
	if i < 0 || len(ps.Pending[i].Chain) == 0 || ps.Pending[i].Deadline == 0 {
		return // delivered meanwhile, or given up
	}
	pd := &ps.Pending[i]
	if pd.Round != it.Seq || len(pd.Fallbacks) > 0 {
		// A repeat of a round already run, or a round under way: its channels report.
		return
	}
	oc := &bus.Outcome{Time: now.UTC(), DecisionID: did, Brand: it.Brand, Player: it.Player, Campaign: pd.Intent.Campaign,
		Step: pd.Intent.Step, Kind: bus.OutcomeFailover, Category: string(pd.Intent.Category), IntentID: pd.Intent.ID}
	if now.Unix() >= pd.Deadline {
		s.undelivered(ps, did, oc, "every channel failed in every round", now)
		return
	}
	pd.Channel, pd.Fallbacks = pd.Chain[0], slices.Clone(pd.Chain[1:])
	s.markDirty(ps)
	oc.Result, oc.Reason, oc.Channel, oc.Fallbacks = string(route.Send), ReasonRetry, pd.Channel, pd.Fallbacks
	oc.Detail = fmt.Sprintf("round %d of the chain %v", pd.Round+1, pd.Chain)
	// The outcome's id must differ from the first round's send of this channel.
	oc.SendAt = now
	s.outcome(oc)
	s.count(pd.Intent.Category, oc.Result, oc.Reason)
	s.issue(ctx, ps, pd, now, true)
}

// undelivered gives a mandatory message up at its deadline: recorded in OUTCOMES (history
// and explain show it), dead-lettered with the reason, counted, its reservation returned.
func (s *ownerState) undelivered(ps *PlayerState, did string, oc *bus.Outcome, last string, now time.Time) {
	i := slices.IndexFunc(ps.Pending, func(p Pending) bool { return p.DecisionID == did })
	if i < 0 {
		return
	}
	pd := ps.Pending[i]
	deadline := time.Unix(pd.Deadline, 0).UTC()
	oc.Result, oc.Reason = string(route.Suppress), ReasonMandatoryUndelivered
	oc.Detail = fmt.Sprintf("undelivered: tried %v in %d rounds until %s (the category's retryFor); last failure %s; dead-lettered",
		pd.Chain, pd.Round+1, deadline.Format(time.RFC3339), last)
	s.outcome(oc)
	s.count(pd.Intent.Category, oc.Result, oc.Reason)
	if !pd.Intent.Test {
		s.stat(ps.Brand, bus.KindCampaign, pd.Intent.Campaign, bus.StatFailed, 1)
	}
	// The dead letter holds the intent (ids, the event's data without contact fields),
	// under the player's intents subject, so erasure finds it.
	raw, _ := bus.Encode(&pd.Intent)
	dl, _ := bus.Encode(bus.DeadLetter{Time: now.UTC(), Stream: bus.StreamIntents, Subject: bus.IntentSubject(ps.Brand, s.part, ps.Player),
		Reason: ReasonMandatoryUndelivered + ": " + oc.Detail, Data: raw})
	msg := nats.NewMsg(bus.DeadLetterSubject(bus.StreamIntents))
	msg.Data = dl
	s.out = append(s.out, outMsg{msg: msg, id: "undelivered/" + did})
	s.settle(ps, &ps.Pending[i], 0)
	ps.Pending = slices.Delete(ps.Pending, i, i+1)
	s.markDirty(ps)
	if s.o.Undelivered != nil {
		s.o.Undelivered(ps.Brand, pd.Intent.Category)
	}
	s.o.Log.Warn("mandatory message undelivered at its deadline", "brand", ps.Brand, "partition", s.part, "campaign", pd.Intent.Campaign,
		"category", string(pd.Intent.Category), "decision", did, "rounds", pd.Round+1)
}

// settle records a send's real message cost and gives what its reservation held above it
// back to the campaign's budget (all of it when every channel failed).
func (s *ownerState) settle(ps *PlayerState, pd *Pending, actual int64) {
	if actual > 0 && !pd.Intent.Test {
		s.statArm(ps.Brand, pd.Intent.Campaign, pd.Intent.Variant, bus.StatCostMessages, actual)
		s.chanStat(ps.Brand, pd.Intent.Campaign, pd.Channel, bus.StatCostMessages, actual)
	}
	if pd.Cost <= 0 {
		return
	}
	refund := pd.Cost - actual
	pd.Cost = 0
	s.markDirty(ps)
	b := s.o.Catalog.Brand(ps.Brand)
	cp := b.campaign(pd.Intent.Campaign)
	if refund <= 0 || s.o.Budget == nil || cp == nil {
		return
	}
	s.o.Budget.Refund(ps.Brand, cp.Name, cp.UID, refund)
	if e := ps.entry(b, cp); e.Spent >= refund {
		e.Spent -= refund
	}
}

// issue renders and buffers the job of a pending decision on its current channel.
func (s *ownerState) issue(ctx context.Context, ps *PlayerState, pd *Pending, now time.Time, fresh bool) {
	b := s.o.Catalog.Brand(ps.Brand)
	if b == nil {
		return
	}
	cp := b.Campaigns[pd.Intent.Campaign]
	if cp == nil {
		return
	}
	content := cp.Contents[pd.Intent.Content]
	p, ok := s.pt.Get(ps.Brand, ps.Player)
	if content == nil || !ok {
		return
	}
	r, err := s.render(ctx, b, cp, content, &p, s.o.Prefs.Get(ps.Brand, s.part, ps.Player), pd)
	r.Unsubscribe = s.unsubscribe(ctx, &pd.Intent, pd.Channel, pd.DecisionID)
	if err != nil {
		s.o.Log.Error("rendering a message", "brand", ps.Brand, "campaign", cp.Name, "err", err)
		return
	}
	s.publishJob(b, cp, &pd.Intent, pd.DecisionID, pd.Channel, pd.Fallbacks, pd.Round, &p, r, b.Costs)
}

// render executes the content for the pending decision's channel in the player's language.
func (s *ownerState) render(ctx context.Context, b *Brand, cp *Campaign, content *render.Content, p *players.Player, pp *prefs.Prefs, pd *Pending) (render.Rendered, error) {
	ch := pd.Channel
	m := content.Pick(ch, pp.Language(ch), p.Language, b.Policy.DefaultLanguage)
	if m == nil {
		return render.Rendered{}, fmt.Errorf("content %s has no %s message", content.Name, ch)
	}
	data := &render.Data{Campaign: cp.Name, Links: map[string]string{}, Coupon: pd.Intent.Coupon, Player: render.PlayerOf(p)}
	if len(pd.Intent.Event) > 0 {
		_ = json.Unmarshal(pd.Intent.Event, &data.Event)
	}
	for k, v := range pd.Intent.Links {
		data.Links[k] = v
	}
	if u := s.unsubscribe(ctx, &pd.Intent, ch, pd.DecisionID); u != "" {
		data.Links["Unsubscribe"] = u
	}
	return m.Execute(content.Name, data)
}

// unsubscribe is the one-click unsubscribe link of a marketing message, "" otherwise.
func (s *ownerState) unsubscribe(ctx context.Context, it *bus.Intent, ch crmv1.Channel, decision string) string {
	if s.o.Links == nil || it.Category != crmv1.CategoryMarketing {
		return ""
	}
	campaign := it.Campaign
	if it.Test {
		campaign, decision = "", "" // a test send counts nowhere
	}
	return s.o.Links(ctx, it.Brand, it.Player, it.Category, ch, campaign, decision)
}

// Address is where a channel reaches a player ("" for inApp and webhook, which use the
// player id).
func Address(p *players.Player, ch crmv1.Channel) string {
	switch ch {
	case crmv1.ChannelEmail:
		return p.Email
	case crmv1.ChannelSMS:
		return p.Phone
	case crmv1.ChannelViber:
		return p.ViberID
	case crmv1.ChannelPush:
		for _, t := range p.PushTokens {
			if t.Platform != "web" {
				return t.Token
			}
		}
	case crmv1.ChannelWebPush:
		if len(p.WebPushSubscription) > 0 {
			return string(p.WebPushSubscription)
		}
		for _, t := range p.PushTokens {
			if t.Platform == "web" {
				return t.Token
			}
		}
	}
	return p.ID
}

// round is the mandatory chain's round (0 the first): the job of a later round is a new
// message to JetStream, whose dedup would otherwise drop it as a repeat of the first.
func (s *ownerState) publishJob(b *Brand, cp *Campaign, it *bus.Intent, did string, ch crmv1.Channel, fallbacks []crmv1.Channel, round int, p *players.Player, r render.Rendered, costs [len(prefs.Channels)]int64) {
	job := bus.DeliveryJob{DecisionID: did, Brand: it.Brand, Player: it.Player, Campaign: it.Campaign, Step: it.Step,
		Channel: ch, Fallbacks: fallbacks, Locale: r.Locale, TemplateID: r.TemplateID, ContentHash: cp.Config.ContentHashes[it.Content],
		To: Address(p, ch), Subject: r.Subject, Text: r.Text, HTML: r.HTML, Test: it.Test, Round: round}
	data := map[string]string{"category": string(it.Category)}
	if r.DeepLink != "" {
		data["deepLink"] = r.DeepLink
	}
	if r.ImageURL != "" {
		data["imageURL"] = r.ImageURL
	}
	if r.Button != "" {
		data["buttonText"] = r.Button
	}
	if ch == crmv1.ChannelPush {
		for _, t := range p.PushTokens {
			if t.Token == job.To {
				data["platform"] = t.Platform
			}
		}
	}
	if r.Unsubscribe != "" {
		data["unsubscribeURL"] = r.Unsubscribe
	}
	job.Data = data
	if c := costs[prefs.ChannelIndex(ch)]; c > 0 {
		if cfg := b.Channels[ch]; cfg != nil {
			for _, pc := range cfg.ProviderCosts {
				job.MaxCost = &bus.MinorAmount{Minor: c, Currency: pc.Currency}
				break
			}
		}
	}
	if keys := s.ks.Keys(); keys != nil {
		if err := job.Seal(keys.Seal); err != nil {
			s.o.Log.Error("sealing a delivery job", "partition", s.part, "decision", did, "err", err)
			return
		}
	}
	raw, _ := bus.Encode(&job)
	msg := nats.NewMsg(bus.DeliverySubject(string(ch), it.Brand, s.part, it.Player))
	msg.Data = raw
	id := did + "." + string(ch)
	if round > 0 {
		id += ".r" + strconv.Itoa(round)
	}
	s.out = append(s.out, outMsg{msg: msg, id: id})
}

// Flush persists players, then the routing state (fenced), and only then publishes the
// batch's jobs, schedules and outcomes and waits for them.
func (s *ownerState) Flush(ctx context.Context) error {
	// What the batch decided is stored first, the state that records it after: a crash
	// in between makes the next owner decide the same events again from the older state,
	// and the ids (decision ids, intent ids) drop the repeats. The other order lost
	// messages: a player persisted as having applied an event whose delivery job was never
	// stored made the redelivered event a duplicate (docs/decisions.md). The fence comes
	// first: an owner a newer one replaced publishes nothing.
	if len(s.out) > 0 {
		if err := s.checkFence(ctx); err != nil {
			return err
		}
	}
	// Data keys created for this batch are stored before the jobs sealed with them.
	if keys := s.ks.Keys(); keys != nil {
		if err := keys.Persist(ctx); errors.Is(err, datakey.ErrTaken) {
			return players.ErrFenced
		} else if err != nil {
			return err
		}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(s.out))
	for _, m := range s.out {
		var opts []jetstream.PublishOpt
		if m.id != "" {
			opts = append(opts, jetstream.WithMsgID(m.id))
		}
		opts = append(opts, jetstream.WithStallWait(30*time.Second))
		f, err := s.o.JS.PublishMsgAsync(m.msg, opts...)
		if err != nil {
			return fmt.Errorf("publishing %s: %w", m.msg.Subject, err)
		}
		futures = append(futures, f)
	}
	if err := awaitAll(ctx, futures); err != nil {
		return err
	}
	s.out = s.out[:0]
	if s.o.Dispatched != nil {
		published := s.o.Clock.Now()
		for _, ob := range s.observed {
			s.o.Dispatched(ob.brand, ob.category, published.Sub(ob.created), ob.sla)
		}
	}
	s.observed = s.observed[:0]
	// The two persists are independent fenced writes; they share one round trip.
	persisted := make(chan error, 1)
	go func() { persisted <- s.ks.Flush(ctx) }()
	stateErr := s.flushState(ctx)
	if err := <-persisted; err != nil {
		return err
	}
	return stateErr
}

// flushState writes every changed player state, the changed run records and (at most
// every StatsEvery) the changed counters, with asynchronous puts conditional on the
// revision this owner last saw; a refused write is partition.ErrFenced.
func (s *ownerState) flushState(ctx context.Context) error {
	type pending struct {
		rev *uint64
		ack jetstream.PubAckFuture
	}
	var ps []pending
	put := func(bucket, key string, v any, rev *uint64) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		f, err := s.o.JS.PublishAsync("$KV."+bucket+"."+key, b,
			jetstream.WithExpectLastSequencePerSubject(*rev), jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return err
		}
		ps = append(ps, pending{rev, f})
		return nil
	}
	for _, st := range s.dirty {
		st.dirty = false
		if err := put(bus.BucketState, bus.PlayerKey(st.Brand, s.part, st.Player), st, &st.rev); err != nil {
			return err
		}
	}
	s.dirty = s.dirty[:0]
	for _, rd := range s.runsDirty {
		rd.dirty = false
		if err := put(bus.BucketState, bus.RunsKey(rd.Brand, s.part), rd, &rd.rev); err != nil {
			return err
		}
	}
	s.runsDirty = s.runsDirty[:0]
	if s.statsDue() {
		for _, bd := range s.boards {
			if !bd.dirty {
				continue
			}
			bd.dirty = false
			if err := put(bus.BucketStats, bus.StatsKey(bd.brand, bus.KindLeaderboard, bd.campaign, s.part), bd.doc(s.part, s.o.Clock.Now()), &bd.rev); err != nil {
				return err
			}
		}
		for key, sd := range s.stats {
			if !sd.dirty {
				continue
			}
			sd.dirty = false
			sd.Updated = s.o.Clock.Now().UTC()
			s.pruneDays(sd)
			if err := put(bus.BucketStats, key, &sd.PartitionStats, &sd.rev); err != nil {
				return err
			}
		}
	}
	fenced := false
	for _, p := range ps {
		select {
		case a := <-p.ack.Ok():
			*p.rev = a.Sequence
		case err := <-p.ack.Err():
			if bus.Conflict(err) {
				fenced = true
			} else {
				return fmt.Errorf("persisting routing state of partition %d: %w", s.part, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fenced {
		return players.ErrFenced
	}
	return nil
}

// awaitAll waits for every asynchronous publish to be confirmed.
func awaitAll(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publishing %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
