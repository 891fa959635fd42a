package reward_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// BenchmarkRedeem redeems distinct single-use codes from parallel callers: two
// compare-and-sets each (the player's count, the code).
func BenchmarkRedeem(b *testing.B) {
	srv := bustest.Start(b, 1)
	_, js := srv.Connect(b)
	cs := &reward.Coupons{KV: bustest.KV(b, js, bus.BucketCoupons)}
	now := time.Now()
	for i := range b.N {
		c := &bus.Coupon{Code: fmt.Sprintf("BENCH%08d", i), Brand: "baku", Pool: "bench", MaxUses: 1, PerPlayer: 1, Player: fmt.Sprintf("p-%d", i)}
		raw, _ := bus.Encode(c)
		if _, err := cs.KV.Put(context.Background(), bus.CouponKey("baku", c.Code), raw); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := cs.Redeem(context.Background(), "baku", fmt.Sprintf("BENCH%08d", i), fmt.Sprintf("p-%d", i), "", now); err != nil {
				b.Error(err)
			}
		}
	})
}
