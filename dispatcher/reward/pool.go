package reward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// Pool errors.
var (
	ErrPoolEmpty    = errors.New("the coupon pool has no codes left")
	ErrCodeExists   = errors.New("the code exists already")
	ErrTooManyCodes = errors.New("too many codes in one import")
)

// MaxImport is the most codes one import takes.
const MaxImport = 100000

// Import adds codes to an imported pool: each becomes a single-use coupon record (its
// value and player are set when a grant draws it) and takes the next positions of the
// pool, in order. Codes that exist already are returned by name and not added; the rest
// are.
func (cs *Coupons) Import(ctx context.Context, brand, pool string, codes []string, validUntil time.Time, now time.Time) (added int, dup []string, err error) {
	if len(codes) > MaxImport {
		return 0, nil, ErrTooManyCodes
	}
	fresh := make([]string, 0, len(codes))
	for _, code := range codes {
		c := bus.Coupon{Code: code, Brand: brand, Pool: pool, MaxUses: 1, PerPlayer: 1, ValidUntil: validUntil.UTC(), Issued: now.UTC()}
		b, _ := bus.Encode(&c)
		if _, err := cs.KV.Create(ctx, bus.CouponKey(brand, code), b); errors.Is(err, jetstream.ErrKeyExists) {
			dup = append(dup, code)
			continue
		} else if err != nil {
			return 0, dup, err
		}
		fresh = append(fresh, code)
	}
	if len(fresh) == 0 {
		return 0, dup, nil
	}
	key := bus.CouponPoolKey(brand, pool)
	// Reserve positions, write the codes there, then mark them ready in order: a draw
	// reads only ready positions, and concurrent imports never write the same one.
	start := -1
	for round := range 200 {
		p, rev, err := cs.pool(ctx, key)
		if err != nil {
			return 0, dup, err
		}
		start = p.Size
		p.Size += len(fresh)
		if err := cs.putPool(ctx, key, p, rev); errors.Is(err, jetstream.ErrKeyExists) {
			start = -1
			backoff(ctx, round)
			continue
		} else if err != nil {
			return 0, dup, err
		}
		break
	}
	if start < 0 {
		return 0, dup, errCASExhausted
	}
	for i, code := range fresh {
		if _, err := cs.KV.Put(ctx, bus.CouponPoolCodeKey(brand, pool, start+i), []byte(code)); err != nil {
			return 0, dup, err
		}
	}
	for round := range 2000 {
		p, rev, err := cs.pool(ctx, key)
		if err != nil {
			return 0, dup, err
		}
		if p.Ready != start {
			backoff(ctx, round) // an earlier import is still writing
			continue
		}
		p.Ready = start + len(fresh)
		if err := cs.putPool(ctx, key, p, rev); errors.Is(err, jetstream.ErrKeyExists) {
			continue
		} else if err != nil {
			return 0, dup, err
		}
		return len(fresh), dup, nil
	}
	return 0, dup, errCASExhausted
}

// Draw hands out an imported pool's next code, once, however many owners draw at once.
func (cs *Coupons) Draw(ctx context.Context, brand, pool string) (*bus.Coupon, error) {
	key := bus.CouponPoolKey(brand, pool)
	for round := range 200 {
		p, rev, err := cs.pool(ctx, key)
		if err != nil {
			return nil, err
		}
		if p.Next >= p.Ready {
			return nil, ErrPoolEmpty
		}
		n := p.Next
		p.Next++
		if err := cs.putPool(ctx, key, p, rev); errors.Is(err, jetstream.ErrKeyExists) {
			backoff(ctx, round)
			continue
		} else if err != nil {
			return nil, err
		}
		e, err := cs.KV.Get(ctx, bus.CouponPoolCodeKey(brand, pool, n))
		if err != nil {
			return nil, fmt.Errorf("code %d of pool %s: %w", n, pool, err)
		}
		ce, err := cs.KV.Get(ctx, bus.CouponKey(brand, string(e.Value())))
		if err != nil {
			return nil, fmt.Errorf("coupon %s: %w", e.Value(), err)
		}
		c, err := bus.Decode[bus.Coupon](ce.Value())
		if err != nil {
			return nil, err
		}
		return &c, nil
	}
	return nil, errCASExhausted
}

func (cs *Coupons) pool(ctx context.Context, key string) (bus.CouponPool, uint64, error) {
	e, err := cs.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return bus.CouponPool{}, 0, nil
	}
	if err != nil {
		return bus.CouponPool{}, 0, err
	}
	p, err := bus.Decode[bus.CouponPool](e.Value())
	return p, e.Revision(), err
}

func (cs *Coupons) putPool(ctx context.Context, key string, p bus.CouponPool, rev uint64) error {
	b, _ := bus.Encode(&p)
	var err error
	if rev == 0 {
		_, err = cs.KV.Create(ctx, key, b)
	} else {
		_, err = cs.KV.Update(ctx, key, b, rev)
	}
	return err
}
