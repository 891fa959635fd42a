package reward_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func put(t *testing.T, cs *reward.Coupons, c *bus.Coupon) {
	t.Helper()
	b, _ := bus.Encode(c)
	if _, err := cs.KV.Put(context.Background(), bus.CouponKey(c.Brand, c.Code), b); err != nil {
		t.Fatal(err)
	}
}

// race redeems code as each of players at once and counts the outcomes by error.
func race(cs *reward.Coupons, code string, players []string, now time.Time) map[error]int {
	var mu sync.Mutex
	got := map[error]int{}
	var wg sync.WaitGroup
	for i, p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.Redeem(context.Background(), "baku", code, p, fmt.Sprint("req-", i), now)
			mu.Lock()
			got[err]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

func TestRedeemUnderConcurrency(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	cs := &reward.Coupons{KV: bustest.KV(t, js, bus.BucketCoupons),
		InSegment: func(_ context.Context, _, seg, player string) (bool, error) { return player != "p-outsider", nil }}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	value := bus.MinorAmount{Minor: 1000, Currency: "AZN"}

	// A generated single-use code: 32 redemptions at once by its player, one wins.
	single := reward.Issue("baku", "win-back", &crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "comeback", Prefix: "BACK", Value: crmv1.Money{Amount: "10.00", Currency: "AZN"}}}, "p-1", value, now)
	if single.MaxUses != 1 || single.Player != "p-1" || len(single.Code) != 14 || !reward.ValidCode(single.Code) {
		t.Fatalf("issued %+v", single)
	}
	put(t, cs, single)
	same := make([]string, 32)
	for i := range same {
		same[i] = "p-1"
	}
	// The losers are refused as used up or, having raced the winner's count, over the
	// player's limit; never a second success.
	if got := race(cs, single.Code, same, now); got[nil] != 1 || got[reward.ErrUsedUp]+got[reward.ErrPlayerLimit] != 31 {
		t.Fatalf("single-use: %v", got)
	}
	if _, err := cs.Redeem(context.Background(), "baku", single.Code, "p-2", "", now); !errors.Is(err, reward.ErrNotYours) && !errors.Is(err, reward.ErrUsedUp) {
		t.Fatalf("another player: %v", err)
	}

	// A shared code with 10 uses: 40 players at once, 10 win.
	maxUses := int32(10)
	shared := reward.Issue("baku", "welcome", &crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "welcome", Code: "WELCOME50", MultiUse: true,
		MaxUses: &maxUses, Value: crmv1.Money{Amount: "10.00", Currency: "AZN"}, SegmentRef: &crmv1.LocalObjectReference{Name: "vips"}}}, "p-1", value, now)
	put(t, cs, shared)
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("p-%02d", i)
	}
	if got := race(cs, "WELCOME50", many, now); got[nil] != 10 || got[reward.ErrUsedUp] != 30 {
		t.Fatalf("shared: %v", got)
	}

	// Two uses per player of an uncapped shared code: ten attempts at once, two win.
	two := int32(2)
	put(t, cs, reward.Issue("baku", "weekend", &crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "weekend", Code: "WEEKEND", MultiUse: true,
		PerPlayer: &two, Value: crmv1.Money{Amount: "5.00", Currency: "AZN"}}}, "", value, now))
	if got := race(cs, "WEEKEND", same[:10], now); got[nil] != 2 || got[reward.ErrPlayerLimit] != 8 {
		t.Fatalf("per player: %v", got)
	}
	// A retried request gets its first answer, not a refusal, and uses nothing more.
	first, err := cs.Redeem(context.Background(), "baku", "WEEKEND", "p-7", "req-x", now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cs.Redeem(context.Background(), "baku", "WEEKEND", "p-7", "req-x", now)
	if err != nil || again.Uses != first.Uses {
		t.Fatalf("retry: %v uses %d then %d", err, first.Uses, again.Uses)
	}

	// Outside the segment, unknown, expired.
	put(t, cs, &bus.Coupon{Code: "VIPONLY", Brand: "baku", Pool: "vip", Campaign: "vip", Segment: "vips", PerPlayer: 1, Value: value})
	for _, c := range []struct {
		code, player string
		at           time.Time
		want         error
	}{
		{"VIPONLY", "p-outsider", now, reward.ErrNotEligible},
		{"NOSUCHCODE", "p-1", now, reward.ErrUnknownCode},
		{single.Code, "p-1", now.Add(24 * time.Hour), reward.ErrUsedUp},
	} {
		if _, err := cs.Redeem(context.Background(), "baku", c.code, c.player, "", c.at); !errors.Is(err, c.want) {
			t.Errorf("%s by %s: %v, want %v", c.code, c.player, err, c.want)
		}
	}
	week := reward.Issue("baku", "win-back", &crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{Pool: "comeback", Prefix: "BACK",
		ValidFor: ptr(metav1Duration(7 * 24 * time.Hour)), Value: crmv1.Money{Amount: "10.00", Currency: "AZN"}}}, "p-3", value, now)
	put(t, cs, week)
	if _, err := cs.Redeem(context.Background(), "baku", week.Code, "p-3", "", now.Add(8*24*time.Hour)); !errors.Is(err, reward.ErrExpired) {
		t.Fatalf("a week later: %v", err)
	}
	if _, err := cs.Redeem(context.Background(), "baku", week.Code, "p-3", "", now.Add(6*24*time.Hour)); err != nil {
		t.Fatalf("within the week: %v", err)
	}
}

// Two imports and eight drawers at once: every imported code is handed out exactly once,
// in no particular order, and then the pool is empty; a code imported twice is named.
func TestImportedPoolUnderConcurrency(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	cs := &reward.Coupons{KV: bustest.KV(t, js, bus.BucketCoupons)}
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	batch := func(prefix string) []string {
		codes := make([]string, 300)
		for i := range codes {
			codes[i] = fmt.Sprintf("%s%04d", prefix, i)
		}
		return codes
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	drawn := map[string]int{}
	for _, prefix := range []string{"PARTNERA", "PARTNERB"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, dup, err := cs.Import(ctx, "baku", "partner", batch(prefix), now.Add(30*24*time.Hour), now); err != nil || n != 300 || len(dup) != 0 {
				t.Errorf("import %s: %d %v %v", prefix, n, dup, err)
			}
		}()
	}
	empty := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for misses := 0; misses < 200; {
				c, err := cs.Draw(ctx, "baku", "partner")
				if errors.Is(err, reward.ErrPoolEmpty) {
					misses++
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				drawn[c.Code]++
				mu.Unlock()
			}
			mu.Lock()
			empty++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(drawn) != 600 {
		t.Fatalf("%d distinct codes drawn, want 600", len(drawn))
	}
	for code, n := range drawn {
		if n != 1 {
			t.Fatalf("%s drawn %d times", code, n)
		}
	}
	if _, err := cs.Draw(ctx, "baku", "partner"); !errors.Is(err, reward.ErrPoolEmpty) {
		t.Fatalf("after 600 draws: %v", err)
	}
	n, dup, err := cs.Import(ctx, "baku", "partner", []string{"PARTNERA0001", "PARTNERC0001"}, time.Time{}, now)
	if err != nil || n != 1 || len(dup) != 1 || dup[0] != "PARTNERA0001" {
		t.Fatalf("re-import: %d %v %v", n, dup, err)
	}
	if c, err := cs.Draw(ctx, "baku", "partner"); err != nil || c.Code != "PARTNERC0001" || c.MaxUses != 1 {
		t.Fatalf("the new code: %+v %v", c, err)
	}
}
