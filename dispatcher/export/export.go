// Package export copies what the dispatcher decided and did to the casino's data
// warehouse: every OUTCOMES record (each decision and attempt with its reason, channel,
// provider and cost), every bonus granted, and snapshots of the players' revenue metrics,
// as Parquet and as NDJSON, partitioned brand=<b>/date=<d>/, with the
// players' ids pseudonymised by a per-brand HMAC key, and with each batch the ids erased
// since the batch before, so copies downstream can honour erasure. It runs in the
// dispatcher, off unless configured (docs/export.md).
//
// At least once: a batch's files are written (to a temporary name, then renamed) before
// its messages are acknowledged; a crash in between writes the same records again in a
// later batch, with the same record ids (the stream's sequence), so loaders dedup on id.
package export

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"

	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
)

// SchemaVersion is the version of Record's columns; a change of meaning or a removed
// column makes a new version (docs/export.md keeps every version).
const SchemaVersion = 1

// Record is one OUTCOMES record as the warehouse gets it.
type Record struct {
	// ID is stable across redeliveries: "o-" and the OUTCOMES stream sequence.
	ID     string    `parquet:"id" json:"id"`
	Schema int32     `parquet:"schema_version" json:"schema_version"`
	Brand  string    `parquet:"brand" json:"brand"`
	Time   time.Time `parquet:"time,timestamp(millisecond)" json:"time"`
	// Player is HMAC-SHA256(brand key, player id), hex: the same player always gets the
	// same pseudonym within a brand; the id itself never leaves.
	Player     string `parquet:"player" json:"player"`
	DecisionID string `parquet:"decision_id" json:"decision_id"`
	Campaign   string `parquet:"campaign,optional" json:"campaign,omitempty"`
	Step       string `parquet:"step,optional" json:"step,omitempty"`
	Kind       string `parquet:"kind" json:"kind"`
	Category   string `parquet:"category,optional" json:"category,omitempty"`
	Result     string `parquet:"result" json:"result"`
	Reason     string `parquet:"reason,optional" json:"reason,omitempty"`
	Channel    string `parquet:"channel,optional" json:"channel,omitempty"`
	Provider   string `parquet:"provider,optional" json:"provider,omitempty"`
	Locale     string `parquet:"locale,optional" json:"locale,omitempty"`
	Attempt    int32  `parquet:"attempt" json:"attempt,omitempty"`
	// CostMicros is what a sent message cost at its provider (micros of Currency).
	CostMicros int64  `parquet:"cost_micros" json:"cost_micros,omitempty"`
	Currency   string `parquet:"currency,optional" json:"currency,omitempty"`
	Test       bool   `parquet:"test" json:"test,omitempty"`
	// Variant is a conversion's experiment arm (added to schema 1 as an optional column).
	Variant string `parquet:"variant,optional" json:"variant,omitempty"`
}

// Reward is one bonus a campaign granted (REWARDS), as the warehouse gets it: what it was
// and what it was worth. Its grant id (which names the player) does not leave, nor a
// coupon's code.
type Reward struct {
	// ID is "r-" and the REWARDS stream sequence.
	ID         string    `parquet:"id" json:"id"`
	Schema     int32     `parquet:"schema_version" json:"schema_version"`
	Brand      string    `parquet:"brand" json:"brand"`
	Granted    time.Time `parquet:"granted,timestamp(millisecond)" json:"granted"`
	Player     string    `parquet:"player" json:"player"`
	Campaign   string    `parquet:"campaign" json:"campaign"`
	Step       string    `parquet:"step" json:"step"`
	Kind       string    `parquet:"kind" json:"kind"`
	ValueMinor int64     `parquet:"value_minor" json:"value_minor"`
	Currency   string    `parquet:"currency" json:"currency"`
	Basis      string    `parquet:"basis,optional" json:"basis,omitempty"`
	Variant    string    `parquet:"variant,optional" json:"variant,omitempty"`
	Coupon     bool      `parquet:"coupon" json:"coupon,omitempty"`
	Expires    time.Time `parquet:"expires,timestamp(millisecond),optional" json:"expires,omitzero"`
}

// PlayerMetrics is a player's revenue metrics as of one revision of their croupier-players
// record: what they deposited, withdrew, staked and won, lifetime and over the last 7
// days. The table is a series of snapshots: each export of it holds the players changed
// since the one before, at their latest revision (docs/export.md). Contact data, identity
// and attributes do not leave.
type PlayerMetrics struct {
	// ID is "p-" and the KV_croupier-players stream sequence of the revision.
	ID     string `parquet:"id" json:"id"`
	Schema int32  `parquet:"schema_version" json:"schema_version"`
	Brand  string `parquet:"brand" json:"brand"`
	// Time is when the revision was stored: the figures are as of then.
	Time               time.Time `parquet:"time,timestamp(millisecond)" json:"time"`
	Player             string    `parquet:"player" json:"player"`
	Country            string    `parquet:"country,optional" json:"country,omitempty"`
	Currency           string    `parquet:"currency,optional" json:"currency,omitempty"`
	Segment            string    `parquet:"rfm_segment,optional" json:"rfm_segment,omitempty"`
	AcquisitionChannel string    `parquet:"acquisition_channel,optional" json:"acquisition_channel,omitempty"`
	Registered         time.Time `parquet:"registered,timestamp(millisecond),optional" json:"registered,omitzero"`
	LastDeposit        time.Time `parquet:"last_deposit,timestamp(millisecond),optional" json:"last_deposit,omitzero"`
	LastActivity       time.Time `parquet:"last_activity,timestamp(millisecond),optional" json:"last_activity,omitzero"`
	DepositCount       int64     `parquet:"deposit_count" json:"deposit_count"`
	DepositsMinor      int64     `parquet:"deposits_minor" json:"deposits_minor"`
	WithdrawalsMinor   int64     `parquet:"withdrawals_minor" json:"withdrawals_minor"`
	BetCount           int64     `parquet:"bet_count" json:"bet_count"`
	StakesMinor        int64     `parquet:"stakes_minor" json:"stakes_minor"`
	WinsMinor          int64     `parquet:"wins_minor" json:"wins_minor"`
	// NGRMinor is stakes minus wins (the gaming result docs/analytics.md calls NGR).
	NGRMinor int64 `parquet:"ngr_minor" json:"ngr_minor"`
	// Deposits7dMinor and NGR7dMinor cover the 7 local days (the player's zone) ending
	// with the revision's day.
	Deposits7dMinor int64 `parquet:"deposits_7d_minor" json:"deposits_7d_minor"`
	NGR7dMinor      int64 `parquet:"ngr_7d_minor" json:"ngr_7d_minor"`
	VIPLevel        int32 `parquet:"vip_level" json:"vip_level"`
}

// Erasure is a player erased since the batch before (by pseudonym).
type Erasure struct {
	ID     string    `json:"id"`
	Schema int32     `json:"schema_version"`
	Brand  string    `json:"brand"`
	Player string    `json:"player"`
	Erased time.Time `json:"erased"`
}

// Sink stores a batch's files.
type Sink interface {
	// Put stores data at path (slash-separated, relative), replacing what is there. It
	// keeps no reference to data once it returns: the exporter reuses the buffer.
	Put(ctx context.Context, path string, data []byte) error
}

// Dir is a Sink writing under a directory: to a temporary name, synced, then renamed,
// so a reader never sees half a file.
type Dir string

// Put writes data at path under the directory.
func (d Dir) Put(_ context.Context, path string, data []byte) error {
	full := filepath.Join(string(d), filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(full), "."+filepath.Base(full)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, full)
}

// Exporter copies OUTCOMES and the erasures to a Sink.
type Exporter struct {
	JS   jetstream.JetStream
	Sink Sink
	// Key is the HMAC key pseudonymising a brand's player ids (nil: the brand is not
	// exported: no id leaves unkeyed).
	Key func(brand string) []byte
	// Batch bounds the records of a batch (default 10,000); Wait how long a batch waits
	// to fill (default 5 s).
	Batch int
	Wait  time.Duration
	// AckWait is how long a batch may take before its messages are delivered again
	// (default 2 min).
	AckWait time.Duration
	// PlayersEvery is how often the players' metrics are exported (default 15 min): the
	// players changed since the time before, each at their latest revision (the bucket
	// keeps one, so a player changed a thousand times in between is one row).
	PlayersEvery time.Duration
	Log          *slog.Logger
	// Metrics, when set, receive the export's figures (NewMetrics).
	Metrics *Metrics
	// crashAfter, in tests, stops a batch after that many files were written, before
	// anything is acknowledged (a crash mid-batch).
	crashAfter int
	erased     map[brandID]bool // by pseudonym
	// The tables' encoders, reused batch after batch.
	outcomesTable table[Record]
	rewardsTable  table[Reward]
	playersTable  table[PlayerMetrics]
	// outcome is the record being decoded, reused; spare the largest records slice of the
	// batch before, for the next (appending 10,000 records of 300 bytes to a growing slice
	// was a tenth of the export's CPU).
	outcome bus.Outcome
	spare   []Record
}

// Consumer names (durable, on OUTCOMES, REWARDS and AUDIT).
const (
	ConsumerOutcomes = "croupier-export"
	ConsumerRewards  = "croupier-export-rewards"
	ConsumerErasures = "croupier-export-erasures"
	ConsumerPlayers  = "croupier-export-players"
)

var errCrash = errors.New("export: crashed mid-batch (test)")

func (e *Exporter) defaults() {
	if e.Batch <= 0 {
		e.Batch = 10_000
	}
	if e.Wait <= 0 {
		e.Wait = 5 * time.Second
	}
	if e.AckWait <= 0 {
		e.AckWait = 2 * time.Minute
	}
	if e.PlayersEvery <= 0 {
		e.PlayersEvery = 15 * time.Minute
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
}

// BrandKeys derives each brand's pseudonymisation key from one secret:
// HMAC-SHA256(secret, "croupier-export/" + brand). Brands never share pseudonyms, and
// replacing the secret gives every player new ones (say so to the warehouse first).
func BrandKeys(secret []byte) func(brand string) []byte {
	return func(brand string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("croupier-export/" + brand))
		return m.Sum(nil)
	}
}

// Pseudonym is a player's id under the brand's key.
func Pseudonym(key []byte, player string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(player))
	return hex.EncodeToString(m.Sum(nil))
}

// Run exports until ctx ends.
func (e *Exporter) Run(ctx context.Context) error {
	e.defaults()
	if err := e.loadErased(ctx); err != nil {
		return fmt.Errorf("export: reading the erasures so far: %w", err)
	}
	outcomes, err := e.JS.CreateOrUpdateConsumer(ctx, bus.StreamOutcomes, jetstream.ConsumerConfig{
		// Each message acknowledged on its own: an ack of all below a sequence would also
		// acknowledge a crashed batch's messages still owed a redelivery.
		Durable: ConsumerOutcomes, AckPolicy: jetstream.AckExplicitPolicy, AckWait: e.AckWait,
		MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("export: the OUTCOMES consumer: %w", err)
	}
	rewards, err := e.JS.CreateOrUpdateConsumer(ctx, bus.StreamRewards, jetstream.ConsumerConfig{
		Durable: ConsumerRewards, AckPolicy: jetstream.AckExplicitPolicy, AckWait: e.AckWait,
		MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("export: the REWARDS consumer: %w", err)
	}
	erasures, err := e.JS.CreateOrUpdateConsumer(ctx, bus.StreamAudit, jetstream.ConsumerConfig{
		Durable: ConsumerErasures, AckPolicy: jetstream.AckExplicitPolicy, AckWait: e.AckWait,
		FilterSubject: bus.Root + ".audit.*." + bus.KindPlayer + ".*", DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return fmt.Errorf("export: the erasure consumer: %w", err)
	}
	// The players' records (<brand>.<part>.<player>; not their sealed .contact parts).
	players, err := e.JS.CreateOrUpdateConsumer(ctx, "KV_"+bus.BucketPlayers, jetstream.ConsumerConfig{
		Durable: ConsumerPlayers, AckPolicy: jetstream.AckExplicitPolicy, AckWait: e.AckWait,
		MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: "$KV." + bus.BucketPlayers + ".*.*.*"})
	if err != nil {
		return fmt.Errorf("export: the players consumer: %w", err)
	}
	var nextPlayers time.Time // the first export of the players at once
	for ctx.Err() == nil {
		err := e.batch(ctx, outcomes, rewards, erasures)
		if err == nil && !time.Now().Before(nextPlayers) {
			if err = e.players(ctx, players); err == nil {
				nextPlayers = time.Now().Add(e.PlayersEvery)
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errCrash) {
				return err
			}
			if m := e.Metrics; m != nil {
				m.Batches.WithLabelValues(BatchFailed).Inc()
				m.Failing.Inc()
			}
			e.Log.Warn("export batch failed; it is delivered again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return ctx.Err()
}

// loadErased reads every erasure recorded so far, so an erased player's records never
// leave again after a restart.
func (e *Exporter) loadErased(ctx context.Context) error {
	e.erased = map[brandID]bool{}
	c, err := e.JS.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.Root + ".audit.*." + bus.KindPlayer + ".*"}})
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	for pending := info.NumPending; pending > 0; {
		batch, err := c.Fetch(int(min(pending, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if brand, player, ok := erasure(m.Data()); ok {
				if key := e.Key(brand); key != nil {
					e.erased[brandID{brand, Pseudonym(key, player)}] = true
				}
			}
		}
		if n == 0 {
			break
		}
		pending -= uint64(n)
	}
	return nil
}

func erasure(data []byte) (brand, player string, ok bool) {
	a, err := bus.Decode[bus.AuditEntry](data)
	if err != nil || a.Kind != bus.KindPlayer || a.Action != ActionErased {
		return "", "", false
	}
	return a.Brand, a.Name, true
}

// ActionErased is the AUDIT action the owner appends when it erased a player
// (players.AuditErased).
const ActionErased = "erased"

// brandID is a player's id or pseudonym in a brand: a map key made without allocating.
type brandID struct{ brand, id string }

// brandDay is a part's key: a brand and a UTC day (days since 1970-01-01).
type brandDay struct {
	brand string
	day   int64
}

type part struct {
	brand, date string
	records     []Record
	rewards     []Reward
	players     []PlayerMetrics
	erasures    []Erasure
}

// files is what one batch writes, by brand and date.
type files struct {
	e     *Exporter
	parts map[brandDay]*part
	// pseudonyms: one HMAC per player and batch, which holds many of their records.
	pseudonyms map[brandID]string
	// last is the part the record before went to (nearly always the next one's).
	last    *part
	lastKey brandDay
}

func (e *Exporter) files() *files {
	return &files{e: e, parts: map[brandDay]*part{}, pseudonyms: map[brandID]string{}}
}

// who is a player's pseudonym and whether their records leave (a brand with a key, a
// player not erased).
func (f *files) who(brand, player string) (string, bool) {
	k := brandID{brand, player}
	p, ok := f.pseudonyms[k]
	if !ok {
		if key := f.e.Key(brand); key != nil {
			p = Pseudonym(key, player)
		}
		f.pseudonyms[k] = p // "": the brand has no key
	}
	return p, p != "" && !f.e.erased[brandID{brand, p}]
}

// get is the part of brand's records on at's UTC date.
func (f *files) get(brand string, at time.Time) *part {
	k := brandDay{brand, at.Unix() / 86400}
	if at.Unix() < 0 && at.Unix()%86400 != 0 {
		k.day-- // before 1970: the day below
	}
	if f.last != nil && f.lastKey == k {
		return f.last
	}
	p := f.parts[k]
	if p == nil {
		p = &part{brand: brand, date: at.UTC().Format(time.DateOnly), records: f.e.spare}
		f.e.spare = nil
		f.parts[k] = p
	}
	f.last, f.lastKey = p, k
	return p
}

// write stores every part's files named after the batch.
func (f *files) write(ctx context.Context, name string) error {
	keys := make([]brandDay, 0, len(f.parts))
	for k := range f.parts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].brand < keys[j].brand || keys[i].brand == keys[j].brand && keys[i].day < keys[j].day
	})
	written := 0
	for _, k := range keys {
		p := f.parts[k]
		dir := "brand=" + p.brand + "/date=" + p.date + "/"
		if err := putTable(ctx, f.e, &f.e.outcomesTable, dir+"outcomes-"+name, p.records, &written); err != nil {
			return err
		}
		if err := putTable(ctx, f.e, &f.e.rewardsTable, dir+"rewards-"+name, p.rewards, &written); err != nil {
			return err
		}
		if err := putTable(ctx, f.e, &f.e.playersTable, dir+"players-"+name, p.players, &written); err != nil {
			return err
		}
		if len(p.erasures) > 0 {
			if err := f.e.Sink.Put(ctx, dir+"erasures-"+name+".ndjson", appendLines(nil, p.erasures)); err != nil {
				return err
			}
			written++
		}
	}
	if m := f.e.Metrics; m != nil && written > 0 {
		for _, p := range f.parts {
			m.Rows.WithLabelValues(TableOutcomes).Add(float64(len(p.records)))
			m.Rows.WithLabelValues(TableRewards).Add(float64(len(p.rewards)))
			m.Rows.WithLabelValues(TablePlayers).Add(float64(len(p.players)))
			m.Rows.WithLabelValues(TableErasures).Add(float64(len(p.erasures)))
		}
		m.Batches.WithLabelValues(BatchWritten).Inc()
		m.Failing.Set(0)
		m.LastWritten.SetToCurrentTime()
	}
	return nil
}

// batch writes one batch and acknowledges it.
func (e *Exporter) batch(ctx context.Context, outcomes, rewards, erasures jetstream.Consumer) error {
	f := e.files()
	// Erasures first: a player erased now has no record in this batch or any after.
	var acks []jetstream.Msg
	eb, err := erasures.FetchNoWait(1000)
	if err != nil {
		return err
	}
	for m := range eb.Messages() {
		acks = append(acks, m)
		brand, player, ok := erasure(m.Data())
		if !ok {
			continue
		}
		key := e.Key(brand)
		if key == nil {
			continue
		}
		md, _ := m.Metadata()
		pseudo := Pseudonym(key, player)
		e.erased[brandID{brand, pseudo}] = true
		at := time.Now().UTC()
		if md != nil {
			at = md.Timestamp.UTC()
		}
		p := f.get(brand, at)
		p.erasures = append(p.erasures, Erasure{ID: "e-" + strconv.FormatUint(seq(md), 10), Schema: SchemaVersion, Brand: brand, Player: pseudo, Erased: at})
	}
	ob, err := outcomes.Fetch(e.Batch, jetstream.FetchMaxWait(e.Wait))
	if err != nil {
		return err
	}

	var outcomeSeqs, rewardSeqs seqRange
	for m := range ob.Messages() {
		acks = append(acks, m)
		s := outcomeSeqs.add(m)
		// encoding/json/v2's decoder (go-json-experiment): a third of v1's CPU, and this
		// is the exporter's largest cost (docs/benchmarks.md). The records are bus.Encode's.
		o := &e.outcome
		*o = bus.Outcome{}
		if err := jsonv2.Unmarshal(m.Data(), o); err != nil || o.Brand == "" {
			continue
		}
		pseudo, ok := f.who(o.Brand, o.Player)
		if !ok {
			continue
		}
		r := Record{ID: "o-" + strconv.FormatUint(s, 10), Schema: SchemaVersion, Brand: o.Brand, Time: o.Time.UTC(), Player: pseudo,
			DecisionID: o.DecisionID, Campaign: o.Campaign, Step: o.Step, Kind: o.Kind, Category: o.Category, Result: o.Result,
			Reason: o.Reason, Channel: string(o.Channel), Provider: o.Provider, Locale: o.Locale, Attempt: int32(o.Attempt), Test: o.Test}
		if c := o.ProviderCost; c != nil {
			r.CostMicros, r.Currency = c.Micros, c.Currency
		}
		if o.Kind == bus.OutcomeConversion {
			r.Variant = o.Detail
		}
		p := f.get(o.Brand, r.Time)
		p.records = append(p.records, r)
	}
	if err := ob.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	rb, err := rewards.FetchNoWait(e.Batch)
	if err != nil {
		return err
	}
	for m := range rb.Messages() {
		acks = append(acks, m)
		s := rewardSeqs.add(m)
		g, err := bus.Decode[bus.RewardGrant](m.Data())
		if err != nil || g.Brand == "" {
			continue
		}
		pseudo, ok := f.who(g.Brand, g.Player)
		if !ok {
			continue
		}
		r := Reward{ID: "r-" + strconv.FormatUint(s, 10), Schema: SchemaVersion, Brand: g.Brand, Granted: g.Granted.UTC(), Player: pseudo,
			Campaign: g.Campaign, Step: g.Step, Kind: rewardKind(g), ValueMinor: g.Value.Minor, Currency: g.Value.Currency,
			Basis: g.Basis, Variant: g.Variant, Coupon: g.Coupon != "", Expires: g.Expires.UTC()}
		p := f.get(g.Brand, r.Granted)
		p.rewards = append(p.rewards, r)
	}
	if m := e.Metrics; m != nil {
		m.Pending.WithLabelValues(TableOutcomes).Set(float64(outcomeSeqs.pending))
		m.Pending.WithLabelValues(TableRewards).Set(float64(rewardSeqs.pending))
	}
	if len(acks) == 0 {
		return nil
	}
	name := "batch-" + outcomeSeqs.String()
	switch {
	case outcomeSeqs.n > 0:
	case rewardSeqs.n > 0:
		name = "batch-r" + rewardSeqs.String()
	default:
		name = "batch-erasures-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if err := f.write(ctx, name); err != nil {
		return retry(acks, err)
	}
	// Written: now the messages may go.
	for _, m := range acks {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	for _, p := range f.parts {
		if cap(p.records) > cap(e.spare) {
			e.spare = p.records
		}
	}
	if e.spare == nil {
		e.spare = make([]Record, 0, min(e.Batch, 10_000))
	}
	clear(e.spare[:cap(e.spare)]) // no strings of this batch kept alive
	e.spare = e.spare[:0]
	return nil
}

// players exports the players' records changed since the last time, each at its latest
// revision, in batches of at most e.Batch, until none is pending.
func (e *Exporter) players(ctx context.Context, c jetstream.Consumer) error {
	for ctx.Err() == nil {
		b, err := c.FetchNoWait(e.Batch)
		if err != nil {
			return err
		}
		f := e.files()
		var acks []jetstream.Msg
		var seqs seqRange
		for m := range b.Messages() {
			acks = append(acks, m)
			s := seqs.add(m)
			if len(m.Data()) == 0 {
				continue // a purge or a delete
			}
			var p players.Player
			if err := json.Unmarshal(m.Data(), &p); err != nil || p.Brand == "" || p.ID == "" || p.Erased {
				continue // an erased player's tombstone
			}
			pseudo, ok := f.who(p.Brand, p.ID)
			if !ok {
				continue
			}
			at := time.Now().UTC()
			if md, _ := m.Metadata(); md != nil {
				at = md.Timestamp.UTC()
			}
			pt := f.get(p.Brand, at)
			pt.players = append(pt.players, metricsOf(&p, "p-"+strconv.FormatUint(s, 10), pseudo, at))
		}
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if len(acks) == 0 {
			return nil
		}
		if err := f.write(ctx, "batch-p"+seqs.String()); err != nil {
			return retry(acks, err)
		}
		for _, m := range acks {
			if err := m.Ack(); err != nil {
				return err
			}
		}
		if len(acks) < e.Batch {
			return nil
		}
	}
	return ctx.Err()
}

// metricsOf is p's row of the players table as of at.
func metricsOf(p *players.Player, id, pseudo string, at time.Time) PlayerMetrics {
	dep7, ngr7 := p.Through(at, 7)
	r := PlayerMetrics{ID: id, Schema: SchemaVersion, Brand: p.Brand, Time: at, Player: pseudo,
		Country: p.Country, Currency: p.Currency, Segment: p.RFM.Segment, AcquisitionChannel: p.AcquisitionChannel,
		DepositCount: p.DepositCount, DepositsMinor: p.DepositSum, WithdrawalsMinor: p.WithdrawalSum, BetCount: p.BetCount,
		StakesMinor: p.StakeSum, WinsMinor: p.WinSum, NGRMinor: p.StakeSum - p.WinSum,
		Deposits7dMinor: dep7, NGR7dMinor: ngr7, VIPLevel: p.VIPLevel}
	for _, t := range []struct {
		u  players.Unix
		to *time.Time
	}{{p.RegisteredAt, &r.Registered}, {p.LastDeposit, &r.LastDeposit}, {p.LastActivity, &r.LastActivity}} {
		if t.u != 0 {
			*t.to = t.u.Time().UTC()
		}
	}
	return r
}

// putTable writes rows as base.parquet and base.ndjson (nothing for no rows), counting the
// files written (a test's crash comes after crashAfter of them).
func putTable[T any](ctx context.Context, e *Exporter, t *table[T], base string, rows []T, written *int) error {
	if len(rows) == 0 {
		return nil
	}
	pq, err := t.parquet(rows)
	if err != nil {
		return err
	}
	if err := e.Sink.Put(ctx, base+".parquet", pq); err != nil {
		return err
	}
	*written++
	if e.crashAfter > 0 && *written >= e.crashAfter {
		return errCrash
	}
	if err := e.Sink.Put(ctx, base+".ndjson", t.ndjson(rows)); err != nil {
		return err
	}
	*written++
	return nil
}

// table encodes a table's files, reusing its Parquet writer and buffers from one batch to
// the next (a Sink keeps no data past Put).
type table[T any] struct {
	w  *parquet.GenericWriter[T]
	pq bytes.Buffer
	nd []byte
}

func (t *table[T]) parquet(rows []T) ([]byte, error) {
	t.pq.Reset()
	if t.w == nil {
		t.w = parquet.NewGenericWriter[T](&t.pq, parquet.Compression(&parquet.Snappy))
	} else {
		t.w.Reset(&t.pq)
	}
	if _, err := t.w.Write(rows); err != nil {
		return nil, err
	}
	if err := t.w.Close(); err != nil {
		return nil, err
	}
	return t.pq.Bytes(), nil
}

// ndjson is rows as JSON lines: Records by appendRecord (the hot table), the others by
// encoding/json.
func (t *table[T]) ndjson(rows []T) []byte {
	b := t.nd[:0]
	if rs, ok := any(rows).([]Record); ok {
		for i := range rs {
			b = appendRecord(b, &rs[i])
		}
	} else {
		b = appendLines(b, rows)
	}
	t.nd = b
	return b
}

// retry hands a batch that could not be written back to the server, to be delivered again
// in a second (not after the ack wait), and returns err. A crash (in tests) hands nothing
// back: the messages come again after the ack wait, as after a real crash.
func retry(msgs []jetstream.Msg, err error) error {
	if errors.Is(err, errCrash) {
		return err
	}
	for _, m := range msgs {
		_ = m.NakWithDelay(time.Second)
	}
	return err
}

// seqRange is the stream sequences a batch read from one stream.
type seqRange struct {
	first, last uint64
	n           int
	// pending is what the stream held for the consumer after the last message read.
	pending uint64
}

// add counts m and answers its stream sequence.
func (r *seqRange) add(m jetstream.Msg) uint64 {
	md, _ := m.Metadata()
	s := seq(md)
	if md != nil {
		r.pending = md.NumPending
	}
	if r.n == 0 {
		r.first = s
	}
	r.last, r.n = s, r.n+1
	return s
}

func (r seqRange) String() string {
	return strconv.FormatUint(r.first, 10) + "-" + strconv.FormatUint(r.last, 10)
}

func seq(md *jetstream.MsgMetadata) uint64 {
	if md == nil {
		return 0
	}
	return md.Sequence.Stream
}

// rewardKind names what a grant gave.
func rewardKind(g bus.RewardGrant) string {
	switch r := g.Reward; {
	case r.FreeSpins != nil:
		return "freeSpins"
	case r.MatchDeposit != nil:
		return "matchDeposit"
	case r.Cashback != nil:
		return "cashback"
	case r.Coupon != nil:
		return "coupon"
	case r.Tournament != nil:
		return "tournament"
	}
	return "other"
}

// appendLines appends rows to b as JSON lines by encoding/json.
func appendLines[T any](b []byte, rows []T) []byte {
	w := bytes.NewBuffer(b)
	enc := json.NewEncoder(w)
	for i := range rows {
		_ = enc.Encode(&rows[i])
	}
	return w.Bytes()
}
