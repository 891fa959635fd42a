package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/report"
)

// DefaultStatsInterval is how often the partition counters are summed into status.
const DefaultStatsInterval = 10 * time.Second

// StatsSummer sums the partition owners' counters in croupier-stats into Campaign and
// Segment status, at most every Interval, and writes a status only when its sums changed.
// It runs on the elected manager only.
type StatsSummer struct {
	Client   client.Client
	Store    *Store
	Interval time.Duration
	Log      logr.Logger
	// Writes counts status writes (tests and benchmarks read it).
	Writes func()
}

// NeedLeaderElection makes the summer run on the leader only.
func (s *StatsSummer) NeedLeaderElection() bool { return true }

type statsObject struct{ brand, kind, name string }

// Start follows croupier-stats until ctx ends.
func (s *StatsSummer) Start(ctx context.Context) error {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultStatsInterval
	}
	for {
		err := s.follow(ctx, interval)
		if ctx.Err() != nil {
			return nil
		}
		s.Log.Info("following croupier-stats again", "err", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(topologyRecheck):
		}
	}
}

func (s *StatsSummer) follow(ctx context.Context, interval time.Duration) error {
	if err := s.Store.Ready(ctx); err != nil {
		return err
	}
	kv, err := s.Store.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	parts := map[statsObject]map[int]map[string]int64{}
	boards := map[statsObject]map[int]bus.Leaderboard{} // by the Campaign's object
	dirty := map[statsObject]bool{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the croupier-stats watch ended")
			}
			if e == nil {
				continue // caught up; the next tick writes
			}
			obj, part, ok := parseStatsKey(e.Key())
			if !ok {
				continue
			}
			if obj.kind == bus.KindLeaderboard {
				obj.kind = bus.KindCampaign
				if boards[obj] == nil {
					boards[obj] = map[int]bus.Leaderboard{}
				}
				if lb, err := bus.Decode[bus.Leaderboard](e.Value()); err == nil && e.Operation() == jetstream.KeyValuePut {
					boards[obj][part] = lb
				} else {
					delete(boards[obj], part)
				}
				dirty[obj] = true
				continue
			}
			m := parts[obj]
			if m == nil {
				m = map[int]map[string]int64{}
				parts[obj] = m
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(m, part)
			} else if ps, err := bus.Decode[bus.PartitionStats](e.Value()); err == nil {
				m[part] = ps.Counters
			}
			dirty[obj] = true
		case <-tick.C:
			for obj := range dirty {
				if err := s.apply(ctx, obj, sum(parts[obj]), boards[obj]); err != nil {
					s.Log.Error(err, "writing summed counters", "namespace", obj.brand, "kind", obj.kind, "name", obj.name)
					continue
				}
				delete(dirty, obj)
			}
		}
	}
}

// parseStatsKey reads <brand>.<kind>.<name>.<part>.
func parseStatsKey(key string) (statsObject, int, bool) {
	f := strings.Split(key, ".")
	if len(f) != 4 {
		return statsObject{}, 0, false
	}
	var part int
	if _, err := fmt.Sscanf(f[3], "%d", &part); err != nil {
		return statsObject{}, 0, false
	}
	return statsObject{f[0], f[1], f[2]}, part, true
}

// total is the sum of a counter over the partitions; oldest the smallest non-zero value.
type totals struct {
	sum    map[string]int64
	oldest map[string]int64
}

func sum(parts map[int]map[string]int64) totals {
	t := totals{sum: map[string]int64{}, oldest: map[string]int64{}}
	for _, cs := range parts {
		for k, v := range cs {
			t.sum[k] += v
			if o, ok := t.oldest[k]; v != 0 && (!ok || v < o) {
				t.oldest[k] = v
			}
		}
	}
	return t
}

func (s *StatsSummer) apply(ctx context.Context, obj statsObject, t totals, boards map[int]bus.Leaderboard) error {
	switch obj.kind {
	case bus.KindCampaign:
		var c crmv1.Campaign
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: obj.brand, Name: obj.name}, &c); err != nil {
			return client.IgnoreNotFound(err)
		}
		counters := campaignCounters(t.sum)
		spend := campaignSpend(&c, t.sum)
		variants := report.Variants(c.Spec.Experiment, t.sum)
		rep := report.Campaign(&c.Spec, t.sum)
		channels := report.Channels(t.sum)
		tour := tournamentStatus(string(c.UID), boards, t.sum)
		if c.Status.Counters != nil && equality.Semantic.DeepEqual(*c.Status.Counters, *counters) && equality.Semantic.DeepEqual(c.Status.Spend, spend) &&
			equality.Semantic.DeepEqual(c.Status.Variants, variants) && equality.Semantic.DeepEqual(c.Status.Report, rep) &&
			equality.Semantic.DeepEqual(c.Status.Tournament, tour) && equality.Semantic.DeepEqual(c.Status.Channels, channels) {
			return nil
		}
		before := c.DeepCopy()
		c.Status.Counters, c.Status.Spend, c.Status.Variants, c.Status.Report, c.Status.Tournament = counters, spend, variants, rep, tour
		c.Status.Channels = channels
		return s.write(ctx, &c, before)
	case bus.KindSegment:
		var sg crmv1.Segment
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: obj.brand, Name: obj.name}, &sg); err != nil {
			return client.IgnoreNotFound(err)
		}
		members := t.sum[bus.StatMembers]
		var evaluated *metav1.Time
		if at, ok := t.oldest[bus.StatEvaluated]; ok {
			e := metav1.NewTime(time.Unix(at, 0).UTC())
			evaluated = &e
		}
		if sg.Status.MemberCount != nil && *sg.Status.MemberCount == members && equality.Semantic.DeepEqual(sg.Status.LastEvaluationTime, evaluated) {
			return nil
		}
		before := sg.DeepCopy()
		sg.Status.MemberCount, sg.Status.LastEvaluationTime = &members, evaluated
		return s.write(ctx, &sg, before)
	}
	return nil
}

func (s *StatsSummer) write(ctx context.Context, obj client.Object, before client.Object) error {
	err := s.Client.Status().Patch(ctx, obj, client.MergeFrom(before))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil && s.Writes != nil {
		s.Writes()
	}
	return err
}

func campaignCounters(sum map[string]int64) *crmv1.CampaignCounters {
	c := &crmv1.CampaignCounters{
		Launched: sum[bus.StatLaunched], Targeted: sum[bus.StatTargeted], Sent: sum[bus.StatSent], Delivered: sum[bus.StatDelivered],
		Failed: sum[bus.StatFailed], Converted: sum[bus.StatConverted], Leads: sum[bus.StatLeads],
		RewardsGranted: sum[bus.StatRewardsGranted], RewardsCancelled: sum[bus.StatRewardsCancelled],
		BonusesActivated: sum[bus.StatBonusesActivated], CouponsRedeemed: sum[bus.StatCouponsRedeemed],
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if reason, ok := strings.CutPrefix(k, bus.StatSuppressedPrefix); ok && sum[k] != 0 {
			if c.Suppressed == nil {
				c.Suppressed = map[string]int64{}
			}
			c.Suppressed[reason] = sum[k]
		}
	}
	return c
}

// campaignSpend is what a Campaign with a budget spent (rewards granted plus messages at
// their settled cost) and what remains of its total.
func campaignSpend(c *crmv1.Campaign, sum map[string]int64) *crmv1.SpendStatus {
	total, _, currency := budgetCaps(c.Spec.Budget)
	if currency == "" {
		return nil
	}
	spent := sum[bus.StatCostRewards] + sum[bus.StatCostMessages]
	s := &crmv1.SpendStatus{Spent: &crmv1.Money{Amount: money.FormatMicrosIn(spent, currency), Currency: currency}}
	if total > 0 {
		budgetUsed.WithLabelValues(c.Namespace, c.Name).Set(float64(spent) / float64(total))
		s.Remaining = &crmv1.Money{Amount: money.FormatMicrosIn(max(0, total-spent), currency), Currency: currency}
	}
	return s
}

// tournamentStatus merges the partitions' scores of the Campaign's tournament: the top
// ten, the participants, whether every published partition closed its scores.
func tournamentStatus(uid string, boards map[int]bus.Leaderboard, sum map[string]int64) *crmv1.TournamentStatus {
	var docs []bus.Leaderboard
	final := true
	for _, lb := range boards {
		if lb.UID != uid {
			continue
		}
		docs = append(docs, lb)
		final = final && lb.Final
	}
	if len(docs) == 0 {
		return nil
	}
	ranked := bus.Ranked(docs)
	ts := &crmv1.TournamentStatus{Participants: int64(len(ranked)), Final: final, PrizesGranted: sum[bus.StatPrizesGranted]}
	for i, se := range ranked[:min(10, len(ranked))] {
		ts.Leaders = append(ts.Leaders, crmv1.LeaderboardEntry{Rank: int32(i + 1), Player: se.Player, Score: se.Score})
	}
	return ts
}
