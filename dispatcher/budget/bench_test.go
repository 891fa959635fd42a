package budget_test

import (
	"context"
	"testing"

	"github.com/croupier-crm/croupier/dispatcher/budget"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// BenchmarkReserve is the send path's budget step: reservations from the local block,
// with a compare-and-set on croupier-budget for each new block (1/64 of the cap).
func BenchmarkReserve(b *testing.B) {
	srv := bustest.Start(b, 1)
	_, js := srv.Connect(b)
	caps := budget.Caps{UID: "u1", Total: 1 << 60}
	l := &budget.Leases{KV: bustest.KV(b, js, bus.BucketBudget), Caps: func(string, string) *budget.Caps { c := caps; return &c }, Log: quiet}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if refused := l.Reserve("baku", "cashback", 35_000, 0); refused != "" {
			b.Fatal(refused)
		}
	}
}

// BenchmarkReserveNearTheCap takes a new block for nearly every reservation: the
// compare-and-set round trip is the cost.
func BenchmarkReserveNearTheCap(b *testing.B) {
	srv := bustest.Start(b, 1)
	_, js := srv.Connect(b)
	caps := budget.Caps{UID: "u1", Total: 0}
	l := &budget.Leases{KV: bustest.KV(b, js, bus.BucketBudget), Caps: func(string, string) *budget.Caps { c := caps; return &c }, Log: quiet}
	b.ResetTimer()
	for range b.N {
		caps.Total += 1_000_000 // the cap keeps moving: every reservation needs a new block
		if err := l.Take(context.Background(), &budget.Reservation{Brand: "baku", Campaign: "c", Micros: 1_000_000}); err != nil {
			b.Fatal(err)
		}
	}
}
