// Package budget keeps campaigns' spend under their caps across dispatcher replicas with
// budget leases (DESIGN.md section 4): a replica takes a block of a campaign's budget from
// croupier-budget by compare-and-set, reserves sends and grants from it in memory, settles
// real message costs into it, and gives back what it did not spend. The sum of blocks
// taken never exceeds the cap, and nothing is spent outside a block, so spend never
// overshoots however many replicas race.
package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Caps are a campaign's budget caps in micros of its currency (0: no such cap).
type Caps struct {
	UID       string
	Total     int64
	PerPeriod int64
	Period    crmv1.Period
	// Zone is where periods start (the brand's time zone).
	Zone      *time.Location
	PerPlayer int64
}

// Limited reports whether any cap applies.
func (c *Caps) Limited() bool { return c != nil && (c.Total > 0 || c.PerPeriod > 0 || c.PerPlayer > 0) }

// Reservation asks for the most a send or grant may cost.
type Reservation struct {
	Brand, Campaign string
	// Micros is the amount: a reward's value plus the upper-bound message cost.
	Micros int64
	// PlayerSpent is what the campaign already spent on this player (the owner keeps it).
	PlayerSpent int64
}

// Refusal says which cap refused a reservation.
type Refusal struct {
	Scope string
}

func (r *Refusal) Error() string { return "the campaign's " + r.Scope + " budget is exhausted" }

// Defaults.
const (
	// BlockShare is the fraction of a cap one block takes at most (1/BlockShare), so many
	// replicas share a campaign and little is stranded in idle blocks near the cap.
	BlockShare = 64
	// IdleReturn is how long an unused block stays before it is given back.
	IdleReturn = 30 * time.Second
	// casRetries bounds the compare-and-set rounds of one take or give-back; a conflict
	// waits a random moment that grows with the round, so racing replicas spread out.
	casRetries = 200
)

func backoff(ctx context.Context, round int) {
	d := time.Duration(rand.Int64N(int64(min(round+1, 50)) * int64(time.Millisecond)))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Leases is one dispatcher's budget leases, shared by its partition owners.
type Leases struct {
	KV jetstream.KeyValue
	// Caps returns a campaign's caps; nil when it has no budget.
	Caps  func(brand, campaign string) *Caps
	Log   *slog.Logger
	Clock clock.Func
	// Timeout bounds one compare-and-set round (default 5 s).
	Timeout time.Duration

	mu     sync.Mutex
	blocks map[string]*block
}

// block is the budget this replica holds for a campaign.
type block struct {
	brand, campaign, uid string
	period               time.Time
	avail                int64
	used                 time.Time
	// exhausted is the last exhaustion this replica saw, so it stops asking.
	exhausted *bus.BudgetExhaustion
}

func key(brand, campaign string) string { return bus.BudgetKey(brand, campaign) }

// PeriodStart is the start of the period holding t in loc (weeks start on Monday) and
// the start of the next one.
func PeriodStart(p crmv1.Period, t time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	l := t.In(loc)
	y, m, d := l.Date()
	switch p {
	case crmv1.PeriodWeek:
		wd := (int(l.Weekday()) + 6) % 7 // Monday 0
		start = time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 7)
	case crmv1.PeriodMonth:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 1, 0)
	default:
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 1)
	}
}

// Reserve is Take for the routing decision (route.Budget): "" when it fits, else the cap
// that refused. A ledger that cannot be read refuses too (the cap is never risked).
func (l *Leases) Reserve(brand, campaign string, micros, playerSpent int64) string {
	err := l.Take(context.Background(), &Reservation{Brand: brand, Campaign: campaign, Micros: micros, PlayerSpent: playerSpent})
	var ref *Refusal
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ref):
		return ref.Scope
	}
	l.Log.Error("taking a budget block", "brand", brand, "campaign", campaign, "err", err)
	return "unavailable"
}

// Take takes r.Micros from the campaign's block, taking a new block from the ledger when
// this one is short. It does I/O only then: once per block, not per send.
func (l *Leases) Take(ctx context.Context, r *Reservation) error {
	caps := l.Caps(r.Brand, r.Campaign)
	if !caps.Limited() {
		return nil
	}
	if caps.PerPlayer > 0 && r.PlayerSpent+r.Micros > caps.PerPlayer {
		return &Refusal{Scope: bus.BudgetPerPlayer}
	}
	if caps.Total <= 0 && caps.PerPeriod <= 0 {
		return nil
	}
	now := l.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.block(ctx, r.Brand, r.Campaign, caps, now)
	if b.avail >= r.Micros {
		b.avail -= r.Micros
		b.used = now
		return nil
	}
	if b.exhausted.Holds(caps.Total, caps.PerPeriod, now) {
		return &Refusal{Scope: b.exhausted.Scope}
	}
	if err := l.take(ctx, b, caps, r.Micros-b.avail, now); err != nil {
		return err
	}
	b.avail -= r.Micros
	b.used = now
	return nil
}

// Refund gives micros reserved and not spent back to the campaign's block (a message's
// upper-bound cost above its real cost, a send that failed on every channel).
func (l *Leases) Refund(brand, campaign, uid string, micros int64) {
	if micros <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.blocks[key(brand, campaign)]; b != nil && b.uid == uid {
		b.avail += micros
	}
}

// Exhausted reports whether this replica found the campaign's budget exhausted and the
// exhaustion still holds (what is left in its block is less than its last need): its runs
// wait instead of being refused player by player.
func (l *Leases) Exhausted(brand, campaign string) bool {
	caps := l.Caps(brand, campaign)
	if !caps.Limited() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.blocks[key(brand, campaign)]
	return b != nil && b.uid == caps.UID && b.exhausted.Holds(caps.Total, caps.PerPeriod, l.Clock.Now())
}

// block is the campaign's current block, a fresh one after the campaign was created again
// or its period turned (the old period's remainder is given back first).
func (l *Leases) block(ctx context.Context, brand, campaign string, caps *Caps, now time.Time) *block {
	if l.blocks == nil {
		l.blocks = map[string]*block{}
	}
	var period time.Time
	if caps.PerPeriod > 0 {
		period, _ = PeriodStart(caps.Period, now, caps.Zone)
	}
	k := key(brand, campaign)
	b := l.blocks[k]
	if b != nil && b.uid == caps.UID && b.period.Equal(period) {
		return b
	}
	if b != nil && b.uid == caps.UID && b.avail > 0 {
		if err := l.giveBack(ctx, b); err != nil {
			l.Log.Warn("giving back a budget block", "brand", brand, "campaign", campaign, "err", err)
		}
	}
	b = &block{brand: brand, campaign: campaign, uid: caps.UID, period: period, used: now}
	l.blocks[k] = b
	return b
}

// take grows b by at least need from the ledger, or reports the cap that refused.
func (l *Leases) take(ctx context.Context, b *block, caps *Caps, need int64, now time.Time) error {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	k := key(b.brand, b.campaign)
	for round := range casRetries {
		led, rev, err := l.get(ctx, k)
		if err != nil {
			return err
		}
		if led.UID != caps.UID {
			led = bus.BudgetLedger{UID: caps.UID}
		}
		if caps.PerPeriod > 0 && !led.Period.Equal(b.period) {
			if led.Period.After(b.period) {
				return &Refusal{Scope: bus.BudgetPerPeriod} // another replica is in a later period: the clock moved
			}
			led.Period, led.PeriodGranted = b.period, 0
		}
		room := int64(-1)
		scope := ""
		if caps.Total > 0 {
			room, scope = caps.Total-led.Granted, bus.BudgetTotal
		}
		if caps.PerPeriod > 0 {
			if pr := caps.PerPeriod - led.PeriodGranted; room < 0 || pr < room {
				room, scope = pr, bus.BudgetPerPeriod
			}
		}
		grant := need
		if share := max(caps.Total, caps.PerPeriod) / BlockShare; share > grant {
			grant = share
		}
		grant = min(grant, room)
		if grant < need {
			ex := &bus.BudgetExhaustion{Scope: scope, Cap: caps.Total, At: now.UTC(), Asked: need + b.avail, Granted: led.Granted}
			if scope == bus.BudgetPerPeriod {
				_, end := PeriodStart(caps.Period, now, caps.Zone)
				ex.Cap, ex.Until, ex.Granted = caps.PerPeriod, end.UTC(), led.PeriodGranted
			}
			b.exhausted = ex
			if !led.Exhausted.Holds(caps.Total, caps.PerPeriod, now) {
				led.Exhausted = ex
				if err := l.put(ctx, k, &led, rev); errors.Is(err, jetstream.ErrKeyExists) {
					backoff(ctx, round)
					continue
				} else if err != nil {
					return err
				}
			}
			return &Refusal{Scope: scope}
		}
		led.Granted += grant
		if caps.PerPeriod > 0 {
			led.PeriodGranted += grant
		}
		led.Exhausted = nil
		err = l.put(ctx, k, &led, rev)
		if errors.Is(err, jetstream.ErrKeyExists) {
			backoff(ctx, round) // another replica took a block: read again
			continue
		}
		if err != nil {
			return err
		}
		b.avail += grant
		b.exhausted = nil
		return nil
	}
	return fmt.Errorf("budget %s: %d compare-and-set conflicts in a row", k, casRetries)
}

// giveBack returns b's unspent budget to the ledger.
func (l *Leases) giveBack(ctx context.Context, b *block) error {
	if b.avail <= 0 {
		return nil
	}
	k := key(b.brand, b.campaign)
	for round := range casRetries {
		led, rev, err := l.get(ctx, k)
		if err != nil {
			return err
		}
		if led.UID != b.uid {
			b.avail = 0 // a new campaign's ledger: the old one's budget is gone with it
			return nil
		}
		led.Granted -= b.avail
		if led.Period.Equal(b.period) && !b.period.IsZero() {
			led.PeriodGranted -= b.avail
		}
		err = l.put(ctx, k, &led, rev)
		if errors.Is(err, jetstream.ErrKeyExists) {
			backoff(ctx, round)
			continue
		}
		if err != nil {
			return err
		}
		b.avail = 0
		return nil
	}
	return fmt.Errorf("budget %s: %d compare-and-set conflicts in a row", k, casRetries)
}

func (l *Leases) get(ctx context.Context, k string) (bus.BudgetLedger, uint64, error) {
	e, err := l.KV.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return bus.BudgetLedger{}, 0, nil
	}
	if err != nil {
		return bus.BudgetLedger{}, 0, fmt.Errorf("reading budget %s: %w", k, err)
	}
	led, err := bus.Decode[bus.BudgetLedger](e.Value())
	if err != nil {
		return bus.BudgetLedger{}, 0, fmt.Errorf("budget %s: %w", k, err)
	}
	return led, e.Revision(), nil
}

func (l *Leases) put(ctx context.Context, k string, led *bus.BudgetLedger, rev uint64) error {
	v, err := bus.Encode(led)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = l.KV.Create(ctx, k, v)
	} else {
		_, err = l.KV.Update(ctx, k, v, rev)
	}
	return err
}

// Run gives back blocks unused for IdleReturn until ctx ends, then every block.
func (l *Leases) Run(ctx context.Context) error {
	t := time.NewTicker(IdleReturn / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.ReturnAll(context.WithoutCancel(ctx), time.Time{})
			return nil
		case <-t.C:
			l.ReturnAll(ctx, l.Clock.Now().Add(-IdleReturn))
		}
	}
}

// ReturnAll gives back every block not used since before (every block when zero).
func (l *Leases) ReturnAll(ctx context.Context, before time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.blocks {
		if b.avail > 0 && (before.IsZero() || b.used.Before(before)) {
			if err := l.giveBack(ctx, b); err != nil {
				l.Log.Warn("giving back a budget block", "brand", b.brand, "campaign", b.campaign, "err", err)
			}
		}
	}
}
