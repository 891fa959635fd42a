package reward

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// codeAlphabet has no 0/O or 1/I, so codes read aloud or typed are not mistaken.
const codeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// NewCode is prefix plus 10 random characters (50 bits).
func NewCode(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return prefix + string(b)
}

// Issue is the coupon a grant of r gives the player at now: a new single-use code bound
// to the player, or the shared code of a multi-use coupon.
func Issue(brand, campaign string, r *crmv1.Reward, player string, value bus.MinorAmount, now time.Time) *bus.Coupon {
	c := r.Coupon
	cp := &bus.Coupon{Brand: brand, Pool: c.Pool, Campaign: campaign, Reward: r.Name, Value: value, PerPlayer: 1, Issued: now.UTC()}
	if c.PerPlayer != nil {
		cp.PerPlayer = int(*c.PerPlayer)
	}
	if c.SegmentRef != nil {
		cp.Segment = c.SegmentRef.Name
	}
	if c.ValidFor != nil {
		cp.ValidUntil = now.Add(c.ValidFor.Duration).UTC()
	}
	if c.ValidUntil != nil && (cp.ValidUntil.IsZero() || c.ValidUntil.Time.Before(cp.ValidUntil)) {
		cp.ValidUntil = c.ValidUntil.UTC()
	}
	if c.MultiUse {
		cp.Code = c.Code
		if c.MaxUses != nil {
			cp.MaxUses = int(*c.MaxUses)
		}
		return cp
	}
	cp.Code, cp.Player, cp.MaxUses = NewCode(c.Prefix), player, 1
	return cp
}

// Redeem refusals, each with the HTTP status the redeem API answers.
var (
	ErrUnknownCode  = errors.New("no such code")
	ErrExpired      = errors.New("the code has expired")
	ErrNotYours     = errors.New("the code was issued to another player")
	ErrNotEligible  = errors.New("the player is not in the coupon's segment")
	ErrUsedUp       = errors.New("the code has been redeemed already")
	ErrPlayerLimit  = errors.New("the player has redeemed this pool's codes as often as allowed")
	errCASExhausted = errors.New("too many concurrent redemptions; retry")
)

// Coupons redeems codes by compare-and-set on croupier-coupons.
type Coupons struct {
	KV jetstream.KeyValue
	// InSegment reports whether the player is a member of the brand's Segment now.
	InSegment func(ctx context.Context, brand, segment, player string) (bool, error)
}

// Redeem uses code for player once: no single-use code is redeemed twice, no shared code
// beyond maxUses, no player beyond the pool's per-player limit, however many redeem at
// once. A request id repeated by the same player gets the first answer again.
func (cs *Coupons) Redeem(ctx context.Context, brand, code, player, request string, now time.Time) (*bus.Coupon, error) {
	key := bus.CouponKey(brand, code)
	for round := range 200 {
		e, err := cs.KV.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrUnknownCode
		}
		if err != nil {
			return nil, err
		}
		c, err := bus.Decode[bus.Coupon](e.Value())
		if err != nil {
			return nil, fmt.Errorf("coupon %s: %w", key, err)
		}
		if request != "" {
			for _, r := range c.Recent {
				if r.Player == player && r.Request == request {
					return &c, nil
				}
			}
		}
		switch {
		case !c.ValidUntil.IsZero() && !now.Before(c.ValidUntil):
			return nil, ErrExpired
		case c.Player != "" && c.Player != player:
			return nil, ErrNotYours
		case c.MaxUses > 0 && c.Uses >= c.MaxUses:
			return nil, ErrUsedUp
		}
		if c.Segment != "" && round == 0 {
			ok, err := cs.InSegment(ctx, brand, c.Segment, player)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, ErrNotEligible
			}
		}
		// The player's count first: a code is never used by a player over the limit; if
		// the code's own update then loses, the count is given back.
		if err := cs.countPlayer(ctx, brand, c.Pool, player, c.PerPlayer, 1); err != nil {
			return nil, err
		}
		c.Uses++
		c.Recent = append(c.Recent, bus.Redemption{Player: player, Request: request, At: now.UTC()})
		if len(c.Recent) > bus.KeepRecentRedemptions {
			c.Recent = c.Recent[len(c.Recent)-bus.KeepRecentRedemptions:]
		}
		b, _ := bus.Encode(&c)
		if _, err := cs.KV.Update(ctx, key, b, e.Revision()); err == nil {
			return &c, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			_ = cs.countPlayer(ctx, brand, c.Pool, player, 0, -1)
			return nil, err
		}
		if err := cs.countPlayer(ctx, brand, c.Pool, player, 0, -1); err != nil {
			return nil, err
		}
		backoff(ctx, round)
	}
	return nil, errCASExhausted
}

// countPlayer moves the player's redemption count in the pool by delta, refusing to pass
// limit (0: no limit).
func (cs *Coupons) countPlayer(ctx context.Context, brand, pool, player string, limit, delta int) error {
	key := bus.PlayerUsesKey(brand, pool, player)
	for range 200 {
		var n int
		var rev uint64
		e, err := cs.KV.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if _, err := fmt.Sscanf(string(e.Value()), "%d", &n); err != nil {
				return fmt.Errorf("redemption count %s: %w", key, err)
			}
			rev = e.Revision()
		}
		if delta > 0 && limit > 0 && n+delta > limit {
			return ErrPlayerLimit
		}
		v := []byte(fmt.Sprint(max(0, n+delta)))
		if rev == 0 {
			_, err = cs.KV.Create(ctx, key, v)
		} else {
			_, err = cs.KV.Update(ctx, key, v, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		backoff(ctx, 1)
	}
	return errCASExhausted
}

// backoff waits a random moment that grows with the round, so racing redeemers spread out.
func backoff(ctx context.Context, round int) {
	var b [1]byte
	_, _ = rand.Read(b[:])
	d := time.Duration(int(b[0])%(min(round+1, 20)+1)) * time.Millisecond
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ValidCode reports whether s can be a code (a KV key token).
func ValidCode(s string) bool {
	if len(s) < 4 || len(s) > 48 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) < 0
}
