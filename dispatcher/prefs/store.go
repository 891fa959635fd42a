package prefs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// SuppressionToken is the second token of suppression-list keys in croupier-prefs:
// <brand>.suppression.<address hash>.
const SuppressionToken = "suppression"

// SuppressionKey is the croupier-prefs key of an address on the brand's suppression list.
func SuppressionKey(brand, hash string) string { return brand + "." + SuppressionToken + "." + hash }

// AddressHash is the suppression list's name for an address: sha256 of the channel kind
// and the normalised address, so the list holds no contact data.
func AddressHash(ch crmv1.Channel, address string) string {
	a := strings.TrimSpace(address)
	switch ch {
	case crmv1.ChannelEmail:
		a = strings.ToLower(a)
	case crmv1.ChannelSMS:
		var b strings.Builder
		for _, r := range a {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		a = b.String()
	}
	sum := sha256.Sum256([]byte(string(ch) + ":" + a))
	return hex.EncodeToString(sum[:16])
}

// ValidHash reports whether h has the form of an AddressHash (32 lowercase hex digits),
// the only form accepted from callers: it is also a key token.
func ValidHash(h string) bool {
	if len(h) != 32 {
		return false
	}
	for _, r := range h {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Suppression is one address on a brand's suppression list: no message of a
// non-mandatory category goes to it on the listed channels.
type Suppression struct {
	Hash     string          `json:"hash"`
	Channels []crmv1.Channel `json:"channels"`
	Reason   string          `json:"reason"`
	Source   string          `json:"source"`
	Actor    string          `json:"actor,omitempty"`
	Added    time.Time       `json:"added"`
}

// Cache is every player's preferences and every brand's suppression list in memory, kept
// current by a watch on croupier-prefs. Routing reads it without touching NATS.
type Cache struct {
	mu         sync.RWMutex
	prefs      map[string]*Prefs
	suppressed map[string]map[string]Set
	revision   uint64
	changed    chan struct{}
}

// NewCache is an empty cache.
func NewCache() *Cache {
	return &Cache{prefs: map[string]*Prefs{}, suppressed: map[string]map[string]Set{}, changed: make(chan struct{})}
}

// Run keeps the cache current until ctx ends; ready is closed when every current value
// has been read.
func (c *Cache) Run(ctx context.Context, kv jetstream.KeyValue, ready chan<- struct{}) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", bus.BucketPrefs, err)
	}
	err = bus.Follow(ctx, w, bus.BucketPrefs, func(e jetstream.KeyValueEntry) error {
		c.apply(e.Key(), e.Value(), e.Operation() != jetstream.KeyValuePut, e.Revision())
		return nil
	}, func() bool {
		if ready != nil {
			close(ready)
		}
		return false
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Cache) apply(key string, value []byte, deleted bool, rev uint64) {
	brand, rest, _ := strings.Cut(key, ".")
	c.mu.Lock()
	defer func() {
		if rev > c.revision {
			c.revision = rev
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}()
	if hash, ok := strings.CutPrefix(rest, SuppressionToken+"."); ok {
		if deleted {
			delete(c.suppressed[brand], hash)
			return
		}
		var s Suppression
		if json.Unmarshal(value, &s) != nil {
			return
		}
		var set Set
		for _, ch := range s.Channels {
			set = set.With(ch)
		}
		if c.suppressed[brand] == nil {
			c.suppressed[brand] = map[string]Set{}
		}
		c.suppressed[brand][hash] = set
		return
	}
	if deleted {
		delete(c.prefs, key)
		return
	}
	p := &Prefs{}
	if json.Unmarshal(value, p) != nil || p.Prepare(nil) != nil {
		return
	}
	c.prefs[key] = p
}

// Get is a player's preferences, nil when they never changed one. The value must not be
// changed.
func (c *Cache) Get(brand string, part int, player string) *Prefs {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.prefs[bus.PlayerKey(brand, part, player)]
}

// Suppressed are the channels on which one of the addresses is on the brand's list.
func (c *Cache) Suppressed(brand string, addresses map[crmv1.Channel]string) Set {
	c.mu.RLock()
	list := c.suppressed[brand]
	c.mu.RUnlock()
	if len(list) == 0 {
		return 0
	}
	var out Set
	for ch, a := range addresses {
		if a == "" {
			continue
		}
		c.mu.RLock()
		s, ok := list[AddressHash(ch, a)]
		c.mu.RUnlock()
		if ok && (s == 0 || s.Has(ch)) {
			out = out.With(ch)
		}
	}
	return out
}

// WaitFor returns when the cache has seen revision rev of croupier-prefs, or ctx ends.
func (c *Cache) WaitFor(ctx context.Context, rev uint64) error {
	for {
		c.mu.RLock()
		seen, ch := c.revision, c.changed
		c.mu.RUnlock()
		if seen >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
