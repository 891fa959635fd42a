package budget_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/budget"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const azn = 1_000_000 // micros in one AZN

type settableCaps struct {
	mu   sync.Mutex
	caps budget.Caps
}

func (c *settableCaps) get(string, string) *budget.Caps {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := c.caps
	return &cp
}

func (c *settableCaps) set(f func(*budget.Caps)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.caps)
}

func ledger(t *testing.T, l *budget.Leases) bus.BudgetLedger {
	t.Helper()
	e, err := l.KV.Get(context.Background(), bus.BudgetKey("baku", "cashback"))
	if err != nil {
		t.Fatal(err)
	}
	led, err := bus.Decode[bus.BudgetLedger](e.Value())
	if err != nil {
		t.Fatal(err)
	}
	return led
}

// Four dispatchers, eight owners each, race on one campaign's 1,000 AZN: what they
// reserve never exceeds the cap, nearly all of it is used, and after they give back
// their blocks the ledger holds exactly what was spent.
func TestFourDispatchersNeverExceedTheCap(t *testing.T) {
	srv := bustest.Start(t, 4)
	caps := &settableCaps{caps: budget.Caps{UID: "u1", Total: 1000 * azn}}
	var replicas []*budget.Leases
	for range 4 {
		_, js := srv.Connect(t)
		replicas = append(replicas, &budget.Leases{KV: bustest.KV(t, js, bus.BucketBudget), Caps: caps.get, Log: quiet})
	}
	const maxNeed = 5 * azn
	var spent atomic.Int64
	var wg sync.WaitGroup
	for i, l := range replicas {
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), uint64(g)))
				for {
					need := 1 + r.Int64N(maxNeed)
					err := l.Take(context.Background(), &budget.Reservation{Brand: "baku", Campaign: "cashback", Micros: need})
					var ref *budget.Refusal
					if errors.As(err, &ref) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					spent.Add(need)
				}
			}()
		}
	}
	wg.Wait()
	if s := spent.Load(); s > 1000*azn {
		t.Fatalf("spent %d micros over a cap of %d", s, 1000*azn)
	} else if s < 1000*azn-4*8*maxNeed {
		t.Fatalf("spent only %d of %d: budget stranded in blocks", s, 1000*azn)
	}
	for _, l := range replicas {
		if !l.Exhausted("baku", "cashback") {
			t.Error("a replica does not know the budget is exhausted")
		}
		l.ReturnAll(context.Background(), time.Time{})
	}
	led := ledger(t, replicas[0])
	if led.Granted != spent.Load() {
		t.Fatalf("ledger granted %d after every block was given back, spent %d", led.Granted, spent.Load())
	}
	if led.Exhausted == nil || led.Exhausted.Scope != bus.BudgetTotal || led.Exhausted.Cap != 1000*azn {
		t.Fatalf("exhaustion %+v", led.Exhausted)
	}
	// What was asked did not fit in what was left: the figures the Paused message quotes.
	if ex := led.Exhausted; ex.Asked < 1 || ex.Asked > maxNeed || ex.Granted > 1000*azn || ex.Asked <= 1000*azn-ex.Granted {
		t.Fatalf("exhaustion figures: asked %d with %d granted of %d", ex.Asked, ex.Granted, ex.Cap)
	}

	// Raising the budget lifts the exhaustion.
	caps.set(func(c *budget.Caps) { c.Total = 1100 * azn })
	if replicas[1].Exhausted("baku", "cashback") {
		t.Fatal("still exhausted after the budget was raised")
	}
	if err := replicas[1].Take(context.Background(), &budget.Reservation{Brand: "baku", Campaign: "cashback", Micros: 50 * azn}); err != nil {
		t.Fatal(err)
	}
	if led := ledger(t, replicas[0]); led.Exhausted != nil || led.Granted <= spent.Load() {
		t.Fatalf("after the raise %+v", led)
	}
}

// A per-day cap refuses at the cap and opens again the next local day; the total cap
// still holds over the days; a player over the per-player cap is refused without I/O;
// a Campaign created again (new UID) starts a new ledger.
func TestPeriodPlayerAndRecreatedCampaign(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	baku, _ := clock.Location("Asia/Baku")
	now := time.Date(2026, 11, 22, 19, 0, 0, 0, time.UTC) // 23:00 in Baku
	var clk atomic.Int64
	clk.Store(now.UnixNano())
	caps := &settableCaps{caps: budget.Caps{UID: "u1", Total: 250 * azn, PerPeriod: 100 * azn, Period: crmv1.PeriodDay, Zone: baku, PerPlayer: 30 * azn}}
	l := &budget.Leases{KV: bustest.KV(t, js, bus.BucketBudget), Caps: caps.get, Log: quiet,
		Clock: clock.Func(func() time.Time { return time.Unix(0, clk.Load()) })}
	ctx := context.Background()
	reserve := func(micros int64) error {
		return l.Take(ctx, &budget.Reservation{Brand: "baku", Campaign: "cashback", Micros: micros})
	}
	scope := func(err error) string {
		var ref *budget.Refusal
		if errors.As(err, &ref) {
			return ref.Scope
		}
		return ""
	}
	day := func() (n int64) {
		for reserve(10*azn) == nil {
			n += 10 * azn
		}
		return n
	}
	if got := day(); got != 100*azn {
		t.Fatalf("day one: %d", got)
	}
	if s := scope(reserve(azn)); s != bus.BudgetPerPeriod {
		t.Fatalf("refused by %q", s)
	}
	led := ledger(t, l)
	if led.Exhausted == nil || !led.Exhausted.Until.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, baku)) {
		t.Fatalf("exhausted until %+v, want midnight in Baku", led.Exhausted)
	}
	clk.Store(now.Add(2 * time.Hour).UnixNano()) // 01:00 the next day in Baku
	if got := day(); got != 100*azn {
		t.Fatalf("day two: %d", got)
	}
	clk.Store(now.Add(26 * time.Hour).UnixNano())
	if got := day(); got != 50*azn {
		t.Fatalf("day three is cut by the total: %d", got)
	}
	if s := scope(reserve(10 * azn)); s != bus.BudgetTotal {
		t.Fatalf("refused by %q, want total", s)
	}
	err := l.Take(ctx, &budget.Reservation{Brand: "baku", Campaign: "cashback", Micros: 5 * azn, PlayerSpent: 26 * azn})
	if s := scope(err); s != bus.BudgetPerPlayer {
		t.Fatalf("per player: %v", err)
	}
	caps.set(func(c *budget.Caps) { c.UID = "u2" })
	if err := reserve(10 * azn); err != nil {
		t.Fatalf("the campaign created again: %v", err)
	}
	if led := ledger(t, l); led.UID != "u2" || led.Granted < 10*azn || led.Granted > 100*azn {
		t.Fatalf("new ledger %+v", led)
	}
}

func TestPeriodStart(t *testing.T) {
	baku, _ := clock.Location("Asia/Baku")
	at := time.Date(2026, 11, 22, 21, 30, 0, 0, time.UTC) // Monday 01:30 in Baku
	for _, c := range []struct {
		p          crmv1.Period
		start, end time.Time
	}{
		{crmv1.PeriodDay, time.Date(2026, 11, 23, 0, 0, 0, 0, baku), time.Date(2026, 11, 24, 0, 0, 0, 0, baku)},
		{crmv1.PeriodWeek, time.Date(2026, 11, 23, 0, 0, 0, 0, baku), time.Date(2026, 11, 30, 0, 0, 0, 0, baku)},
		{crmv1.PeriodMonth, time.Date(2026, 11, 1, 0, 0, 0, 0, baku), time.Date(2026, 12, 1, 0, 0, 0, 0, baku)},
	} {
		s, e := budget.PeriodStart(c.p, at, baku)
		if !s.Equal(c.start) || !e.Equal(c.end) {
			t.Errorf("%s: %s..%s, want %s..%s", c.p, s, e, c.start, c.end)
		}
	}
}
