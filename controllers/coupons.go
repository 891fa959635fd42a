package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// ensureSharedCodes writes the record of each multi-use coupon code of the Campaign to
// croupier-coupons, keeping its redemptions when the spec changes (compare-and-set), and
// refuses a code another Campaign of the brand already uses.
func (k campaignKind) ensureSharedCodes(ctx context.Context, c *crmv1.Campaign, values map[string]bus.MinorAmount) error {
	var kv jetstream.KeyValue
	for _, r := range c.Spec.Rewards {
		cr := r.Coupon
		if cr == nil || !cr.MultiUse || cr.Code == "" {
			continue
		}
		if kv == nil {
			var err error
			if kv, err = k.store.JS.KeyValue(ctx, bus.BucketCoupons); err != nil {
				return err
			}
		}
		want := bus.Coupon{Code: cr.Code, Brand: c.Namespace, Pool: cr.Pool, Campaign: c.Name, Reward: r.Name, Value: values[r.Name], PerPlayer: 1}
		if cr.MaxUses != nil {
			want.MaxUses = int(*cr.MaxUses)
		}
		if cr.PerPlayer != nil {
			want.PerPlayer = int(*cr.PerPlayer)
		}
		if cr.SegmentRef != nil {
			want.Segment = cr.SegmentRef.Name
		}
		if cr.ValidUntil != nil {
			want.ValidUntil = cr.ValidUntil.UTC()
		}
		key := bus.CouponKey(c.Namespace, cr.Code)
		for range 16 {
			e, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				want.Issued = c.CreationTimestamp.UTC()
				b, _ := bus.Encode(&want)
				if _, err = kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
					continue
				}
				if err != nil {
					return err
				}
				break
			}
			if err != nil {
				return err
			}
			have, err := bus.Decode[bus.Coupon](e.Value())
			if err != nil {
				return err
			}
			if have.Campaign != c.Name {
				return invalid(fmt.Sprintf("spec.rewards[%s].coupon.code", r.Name), "%s is already the code of Campaign %q in this namespace", cr.Code, have.Campaign)
			}
			want.Uses, want.Recent, want.Issued = have.Uses, have.Recent, have.Issued
			if want.MaxUses == have.MaxUses && want.PerPlayer == have.PerPlayer && want.Segment == have.Segment &&
				want.ValidUntil.Equal(have.ValidUntil) && want.Value == have.Value && want.Pool == have.Pool && want.Reward == have.Reward {
				break
			}
			b, _ := bus.Encode(&want)
			if _, err = kv.Update(ctx, key, b, e.Revision()); errors.Is(err, jetstream.ErrKeyExists) {
				continue // a redemption came in between: read again
			}
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}
