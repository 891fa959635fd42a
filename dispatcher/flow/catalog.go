// Package flow is the partition owner's side of campaigns: it keeps the brands' compiled
// configuration, starts event-triggered flows, turns intents into routing decisions and
// delivery jobs, keeps each player's caps, dedup keys and pending deliveries, and records
// every decision in OUTCOMES.
package flow

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/budget"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/render"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/rules"
)

// Campaign is a published Campaign ready to run.
type Campaign struct {
	Name     string
	UID      string
	Config   *bus.CampaignConfig
	Contents render.Contents
	// Condition is the event trigger's condition, nil when it has none.
	Condition *rules.Program
	// MaxEntries is how often a player may enter the flow (0: no limit).
	MaxEntries int
	// Caps are the budget's caps in micros (nil: no budget); the zone is the brand's.
	Caps *budget.Caps
	// Tournament is the campaign's tournament reward, if any (the first).
	Tournament *crmv1.Reward
	// overrides are the experiment variants' contents: variant -> content -> use.
	overrides map[string]map[string]string
	// Audience is the inline audience rule, nil when the audience is a Segment or everyone.
	Audience   *rules.Program
	SegmentRef string
	Steps      map[string]*crmv1.Step
	// order is each step's index in the spec, for the default next step.
	order map[string]int
	// rules are the branch conditions and events the waitFor conditions, by source.
	rules, events map[string]*rules.Program
}

// Content is the content a send step naming content sends to a player in variant.
func (c *Campaign) Content(variant, content string) string {
	if use, ok := c.overrides[variant][content]; ok {
		return use
	}
	return content
}

// Next is the step after name: its next, else the following step in the list, else ""
// (the end of the flow).
func (c *Campaign) Next(name string) string {
	st := c.Steps[name]
	if st == nil {
		return ""
	}
	if st.Next != "" {
		return st.Next
	}
	steps := c.Spec().Steps
	if i := c.order[name] + 1; i < len(steps) {
		return steps[i].Name
	}
	return ""
}

// Segment is a published Segment ready to evaluate.
type Segment struct {
	Name    string
	Program *rules.Program
	// Interval is how often every player is evaluated again.
	Interval time.Duration
	// Events re-evaluate the one player they concern.
	Events map[string]bool
}

// DefaultSegmentRefresh is the full re-evaluation interval when a Segment names none.
const DefaultSegmentRefresh = time.Hour

// Spec is the campaign's spec.
func (c *Campaign) Spec() *crmv1.CampaignSpec { return &c.Config.Spec }

// Active reports whether the campaign may send at now, and why not.
func (c *Campaign) Active(now time.Time) (bool, string) {
	if c.Spec().Paused {
		return false, "paused"
	}
	return c.InWindow(now)
}

// InWindow reports whether now is within the campaign's window, and why not.
func (c *Campaign) InWindow(now time.Time) (bool, string) {
	if w := c.Spec().Window; w != nil {
		if w.Start != nil && now.Before(w.Start.Time) {
			return false, "starts " + w.Start.UTC().Format(time.RFC3339)
		}
		if w.End != nil && !now.Before(w.End.Time) {
			return false, "ended " + w.End.UTC().Format(time.RFC3339)
		}
	}
	return true, ""
}

// Brand is one brand's published configuration. A Brand value is never changed once
// published: an update makes a new one.
type Brand struct {
	Name   string
	Policy *prefs.Policy
	// Configured are the channels with a ChannelPolicy; Costs the dearest provider's cost
	// per message in micros, the upper bound budgets reserve.
	Configured prefs.Set
	Costs      [len(prefs.Channels)]int64
	Channels   map[crmv1.Channel]*bus.ChannelPolicyConfig
	Campaigns  map[string]*Campaign
	Segments   map[string]*Segment
	// Triggers are the event-triggered campaigns by event type.
	Triggers map[string][]*Campaign
}

// Catalog is every brand's configuration from croupier-config, kept current by a watch.
type Catalog struct {
	Log *slog.Logger

	mu      sync.RWMutex
	brands  map[string]*Brand
	records map[string]*bus.ConfigRecord
}

// Brand is the brand's configuration, nil when nothing is published for it.
func (c *Catalog) Brand(name string) *Brand {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.brands[name]
}

// Policy is the brand's compiled PreferencePolicy, nil when none.
func (c *Catalog) Policy(brand string) *prefs.Policy {
	if b := c.Brand(brand); b != nil {
		return b.Policy
	}
	return nil
}

// ChannelPolicy is a brand's compiled ChannelPolicy for a channel, or nil: what the
// channel workers send through.
func (c *Catalog) ChannelPolicy(brand string, ch crmv1.Channel) *bus.ChannelPolicyConfig {
	if b := c.Brand(brand); b != nil {
		return b.Channels[ch]
	}
	return nil
}

// Run keeps the catalog current until ctx ends; ready is closed after the first full read.
func (c *Catalog) Run(ctx context.Context, kv jetstream.KeyValue, ready chan<- struct{}) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", bus.BucketConfig, err)
	}
	// Until the initial values are read, brands are only marked, then rebuilt once each.
	dirty := map[string]bool{}
	err = bus.Follow(ctx, w, bus.BucketConfig, func(e jetstream.KeyValueEntry) error {
		brand, _, _ := strings.Cut(e.Key(), ".")
		c.put(e.Key(), e.Value(), e.Operation() != jetstream.KeyValuePut)
		if dirty != nil {
			dirty[brand] = true
		} else {
			c.rebuild(brand)
		}
		return nil
	}, func() bool {
		for b := range dirty {
			c.rebuild(b)
		}
		dirty = nil
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

// Put applies one croupier-config value (tests and the dev stack use it directly).
func (c *Catalog) Put(key string, value []byte) {
	c.put(key, value, false)
	brand, _, _ := strings.Cut(key, ".")
	c.rebuild(brand)
}

func (c *Catalog) put(key string, value []byte, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.records == nil {
		c.records = map[string]*bus.ConfigRecord{}
	}
	if deleted {
		delete(c.records, key)
		return
	}
	rec, err := bus.Decode[bus.ConfigRecord](value)
	if err != nil {
		c.log().Warn("unreadable configuration record", "key", key, "err", err)
		return
	}
	c.records[key] = &rec
}

func (c *Catalog) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// rebuild compiles a brand's records into a new Brand.
func (c *Catalog) rebuild(brand string) {
	c.mu.RLock()
	prefix := brand + "."
	var keys []string
	for k := range c.records {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	recs := make([]*bus.ConfigRecord, len(keys))
	for i, k := range keys {
		recs[i] = c.records[k]
	}
	c.mu.RUnlock()

	b := &Brand{Name: brand, Channels: map[crmv1.Channel]*bus.ChannelPolicyConfig{}, Campaigns: map[string]*Campaign{},
		Segments: map[string]*Segment{}, Triggers: map[string][]*Campaign{}}
	for _, r := range recs {
		switch {
		case r.PreferencePolicy != nil && b.Policy == nil:
			pol, err := prefs.Compile(brand, r.PreferencePolicy, r.Generation)
			if err != nil {
				c.log().Error("preference policy does not compile", "brand", brand, "name", r.Name, "err", err)
				continue
			}
			b.Policy = pol
		case r.ChannelPolicy != nil:
			ch := r.ChannelPolicy.Spec.Channel
			if _, taken := b.Channels[ch]; taken {
				continue
			}
			b.Channels[ch] = r.ChannelPolicy
			b.Configured = b.Configured.With(ch)
			var most int64
			for _, cost := range r.ChannelPolicy.ProviderCosts {
				most = max(most, cost.Micros)
			}
			if i := prefs.ChannelIndex(ch); i >= 0 {
				b.Costs[i] = most
			}
		case r.Segment != nil:
			prog, err := rules.Compile(rules.PlayerRule, r.Segment.Spec.Rule)
			if err != nil {
				c.log().Error("segment rule does not compile", "brand", brand, "name", r.Name, "err", err)
				continue
			}
			seg := &Segment{Name: r.Name, Program: prog, Interval: DefaultSegmentRefresh, Events: map[string]bool{}}
			if rf := r.Segment.Spec.Refresh; rf != nil {
				if rf.Interval != nil && rf.Interval.Duration >= time.Minute {
					seg.Interval = rf.Interval.Duration
				}
				for _, e := range rf.Events {
					seg.Events[string(e)] = true
				}
			}
			b.Segments[r.Name] = seg
		}
	}
	for _, r := range recs {
		if r.Campaign == nil {
			continue
		}
		cp, err := compileCampaign(r)
		if err != nil {
			c.log().Error("campaign does not compile", "brand", brand, "name", r.Name, "err", err)
			continue
		}
		b.Campaigns[r.Name] = cp
		if t := cp.Spec().Trigger.Event; t != nil {
			b.Triggers[string(t.Type)] = append(b.Triggers[string(t.Type)], cp)
		}
	}
	for _, cs := range b.Triggers {
		slices.SortStableFunc(cs, func(x, y *Campaign) int { return int(y.Spec().Priority - x.Spec().Priority) })
	}
	c.mu.Lock()
	if c.brands == nil {
		c.brands = map[string]*Brand{}
	}
	if len(recs) == 0 {
		delete(c.brands, brand)
	} else {
		c.brands[brand] = b
	}
	c.mu.Unlock()
}

func compileCampaign(r *bus.ConfigRecord) (*Campaign, error) {
	cfg := r.Campaign
	cp := &Campaign{Name: r.Name, UID: r.UID, Config: cfg, Steps: map[string]*crmv1.Step{}, order: map[string]int{},
		rules: map[string]*rules.Program{}, events: map[string]*rules.Program{}}
	var err error
	if cp.Contents, err = render.Compile(cfg); err != nil {
		return nil, err
	}
	cp.Caps = compileCaps(r.UID, cfg)
	for i := range cfg.Spec.Rewards {
		if cfg.Spec.Rewards[i].Tournament != nil && cp.Tournament == nil {
			cp.Tournament = &cfg.Spec.Rewards[i]
		}
	}
	if e := cfg.Spec.Experiment; e != nil {
		for _, v := range e.Variants {
			for _, o := range v.Contents {
				if cp.overrides == nil {
					cp.overrides = map[string]map[string]string{}
				}
				if cp.overrides[v.Name] == nil {
					cp.overrides[v.Name] = map[string]string{}
				}
				cp.overrides[v.Name][o.Content] = o.Use
			}
		}
	}
	if t := cfg.Spec.Trigger.Event; t != nil && t.MaxEntriesPerPlayer != nil {
		cp.MaxEntries = int(*t.MaxEntriesPerPlayer)
	}
	if t := cfg.Spec.Trigger.Event; t != nil && t.Condition != "" {
		if cp.Condition, err = rules.Compile(rules.EventRule, t.Condition); err != nil {
			return nil, fmt.Errorf("spec.trigger.event.condition: %w", err)
		}
	}
	if a := cfg.Spec.Audience; a != nil {
		if a.Rule != "" {
			if cp.Audience, err = rules.Compile(rules.PlayerRule, a.Rule); err != nil {
				return nil, fmt.Errorf("spec.audience.rule: %w", err)
			}
		}
		if a.SegmentRef != nil {
			cp.SegmentRef = a.SegmentRef.Name
		}
	}
	for i := range cfg.Spec.Steps {
		cp.Steps[cfg.Spec.Steps[i].Name] = &cfg.Spec.Steps[i]
		st := &cfg.Spec.Steps[i]
		cp.order[st.Name] = i
		if br := st.Branch; br != nil {
			for j, c := range br.Cases {
				if cp.rules[c.When], err = rules.Compile(rules.PlayerRule, c.When); err != nil {
					return nil, fmt.Errorf("spec.steps[%s].branch.cases[%d].when: %w", st.Name, j, err)
				}
			}
		}
		if w := st.WaitFor; w != nil && w.Condition != "" {
			if cp.events[w.Condition], err = rules.Compile(rules.EventRule, w.Condition); err != nil {
				return nil, fmt.Errorf("spec.steps[%s].waitFor.condition: %w", st.Name, err)
			}
		}
	}
	return cp, nil
}

// Brands lists the brands' configurations.
func (c *Catalog) Brands() []*Brand {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Collect(maps.Values(c.brands))
}

// Names lists the brands with configuration.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.brands))
}

func compileCaps(uid string, cfg *bus.CampaignConfig) *budget.Caps {
	micros := func(m *bus.MinorAmount) int64 {
		if m == nil {
			return 0
		}
		return money.MinorToMicros(m.Minor, m.Currency)
	}
	c := &budget.Caps{UID: uid, Total: micros(cfg.BudgetTotal), PerPeriod: micros(cfg.BudgetPerPeriod), PerPlayer: micros(cfg.BudgetPerPlayer)}
	if b := cfg.Spec.Budget; b != nil && b.PerPeriod != nil {
		c.Period = b.PerPeriod.Period
	}
	if !c.Limited() {
		return nil
	}
	return c
}

// Caps is the campaign's budget caps with the brand's time zone, nil when it has no
// budget: the lookup budget leases use.
func (c *Catalog) Caps(brand, campaign string) *budget.Caps {
	b := c.Brand(brand)
	cp := b.campaign(campaign)
	if cp == nil || cp.Caps == nil {
		return nil
	}
	caps := *cp.Caps
	if b.Policy != nil {
		caps.Zone = b.Policy.DefaultZone
	}
	return &caps
}
