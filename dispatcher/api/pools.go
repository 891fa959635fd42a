package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// PoolRow is one coupon pool of a brand: the campaigns whose rewards draw from it, its
// kind, and its stock: an imported pool's codes imported, drawn and left; a shared code's
// redemptions against its cap; the campaigns' redemptions of it.
type PoolRow struct {
	Pool      string   `json:"pool"`
	Kind      string   `json:"kind"` // imported, generated or shared
	Campaigns []string `json:"campaigns"`
	Value     string   `json:"value,omitempty"`
	Currency  string   `json:"currency,omitempty"`
	// Imported pools: codes imported (ready to draw), drawn by grants, left.
	Imported int `json:"imported,omitempty"`
	Drawn    int `json:"drawn,omitempty"`
	Left     int `json:"left,omitempty"`
	// Shared codes: the code, its redemptions and cap (0: none).
	Code    string `json:"code,omitempty"`
	Uses    int    `json:"uses,omitempty"`
	MaxUses int    `json:"maxUses,omitempty"`
	// Redeemed is the campaigns' couponsRedeemed counter.
	Redeemed int64 `json:"redeemed"`
}

// PoolsBody is GET /v1/brands/{brand}/coupons/pools.
type PoolsBody struct {
	Brand string    `json:"brand"`
	Pools []PoolRow `json:"pools"`
}

func (in *Insight) pools(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	body, err := in.Pools(r.Context(), brand)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the coupon pools cannot be read now: " + err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, body)
}

// Pools are the coupon pools the brand's published campaigns name, and imported pools no
// campaign names (yet), by name.
func (in *Insight) Pools(ctx context.Context, brand string) (PoolsBody, error) {
	out := PoolsBody{Brand: brand, Pools: []PoolRow{}}
	kv, err := in.JS.KeyValue(ctx, bus.BucketCoupons)
	if err != nil {
		return out, err
	}
	rows := map[string]*PoolRow{}
	row := func(pool string) *PoolRow {
		if rows[pool] == nil {
			rows[pool] = &PoolRow{Pool: pool, Kind: "generated", Campaigns: []string{}}
		}
		return rows[pool]
	}
	if b := in.Catalog.Brand(brand); b != nil {
		names := make([]string, 0, len(b.Campaigns))
		for n := range b.Campaigns {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cp := b.Campaigns[n]
			var redeemed int64
			counted := false
			for _, rw := range cp.Spec().Rewards {
				c := rw.Coupon
				if c == nil {
					continue
				}
				pr := row(c.Pool)
				pr.Campaigns = append(pr.Campaigns, n)
				pr.Value, pr.Currency = c.Value.Amount, c.Value.Currency
				switch {
				case c.Imported:
					pr.Kind = "imported"
				case c.MultiUse:
					pr.Kind, pr.Code = "shared", c.Code
				}
				if !counted {
					sum, err := in.sumStats(ctx, brand, bus.KindCampaign, n)
					if err != nil {
						return out, err
					}
					redeemed, counted = sum[bus.StatCouponsRedeemed], true
					pr.Redeemed += redeemed
				}
			}
		}
	}
	// Imported pools' counters: <brand>.=pool.<pool> (their codes are one token deeper).
	keys, err := kv.ListKeysFiltered(ctx, brand+".=pool.*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, err
	}
	for k := range keysOf(keys) {
		pool := strings.TrimPrefix(k, brand+".=pool.")
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		p, err := bus.Decode[bus.CouponPool](e.Value())
		if err != nil {
			continue
		}
		pr := row(pool)
		pr.Kind = "imported"
		pr.Imported, pr.Drawn, pr.Left = p.Ready, min(p.Next, p.Ready), max(p.Ready-p.Next, 0)
	}
	for _, pr := range rows {
		if pr.Kind == "shared" && pr.Code != "" {
			e, err := kv.Get(ctx, bus.CouponKey(brand, pr.Code))
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return out, err
			}
			if err == nil {
				if c, err := bus.Decode[bus.Coupon](e.Value()); err == nil {
					pr.Uses, pr.MaxUses = c.Uses, c.MaxUses
				}
			}
		}
		if pr.Value != "" {
			if m, err := money.ParseMicros(pr.Value, pr.Currency); err == nil {
				pr.Value = money.FormatMicrosIn(m, pr.Currency)
			}
		}
		out.Pools = append(out.Pools, *pr)
	}
	sort.Slice(out.Pools, func(i, j int) bool { return out.Pools[i].Pool < out.Pools[j].Pool })
	return out, nil
}

func keysOf(l jetstream.KeyLister) <-chan string {
	if l == nil {
		c := make(chan string)
		close(c)
		return c
	}
	return l.Keys()
}

// primaryPrice is what one message costs at the first provider of the brand's ChannelPolicy
// for ch (its name and price; ok false when the policy prices nothing): the studio and the
// campaign preview price messages as the channel worker first tries them.
func primaryPrice(cat interface {
	ChannelPolicy(brand string, ch crmv1.Channel) *bus.ChannelPolicyConfig
}, brand string, ch crmv1.Channel) (string, bus.MicroAmount, bool) {
	cfg := cat.ChannelPolicy(brand, ch)
	if cfg == nil || len(cfg.Spec.Providers) == 0 {
		return "", bus.MicroAmount{}, false
	}
	name := cfg.Spec.Providers[0].Name
	price, ok := cfg.ProviderCosts[name]
	return name, price, ok && price.Micros > 0
}
