package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/bus"
)

// statsDoc is one object's counters in one partition: the croupier-stats value the
// manager sums into the object's status.
type statsDoc struct {
	bus.PartitionStats
	rev   uint64
	dirty bool
	// pruned is the oldest day kept at the last pruneDays: the document is scanned again
	// only when the day moves on.
	pruned string
}

// DefaultStatsEvery is the least time between two writes of a partition's counters.
const DefaultStatsEvery = time.Second

func (s *ownerState) loadStats(ctx context.Context) error {
	if s.o.Stats == nil {
		return nil
	}
	w, err := s.o.Stats.Watch(ctx, bus.PartitionStatsFilter(s.part), jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("loading the counters of partition %d: %w", s.part, err)
	}
	return bus.Follow(ctx, w, bus.BucketStats, func(e jetstream.KeyValueEntry) error {
		if strings.Contains(e.Key(), "."+bus.KindLeaderboard+".") {
			var lb bus.Leaderboard
			if err := json.Unmarshal(e.Value(), &lb); err != nil {
				return fmt.Errorf("loading %s: %w", e.Key(), err)
			}
			bd := s.board(lb.Brand, lb.Campaign, lb.UID)
			bd.rev, bd.final, bd.awarded = e.Revision(), lb.Final, lb.Awarded
			return nil
		}
		sd := &statsDoc{rev: e.Revision()}
		if err := json.Unmarshal(e.Value(), &sd.PartitionStats); err != nil {
			return fmt.Errorf("loading %s: %w", e.Key(), err)
		}
		s.stats[e.Key()] = sd
		return nil
	}, func() bool { return true })
}

func (s *ownerState) statsDoc(brand, kind, name string) *statsDoc {
	if s.o.Stats == nil || name == "" {
		return nil
	}
	key := bus.StatsKey(brand, kind, name, s.part)
	sd, ok := s.stats[key]
	if !ok {
		sd = &statsDoc{PartitionStats: bus.PartitionStats{Brand: brand, Kind: kind, Name: name, Partition: s.part, Counters: map[string]int64{}}}
		s.stats[key] = sd
	}
	return sd
}

// stat adds delta to one counter of an object in this partition.
func (s *ownerState) stat(brand, kind, name, counter string, delta int64) {
	if sd := s.statsDoc(brand, kind, name); sd != nil && delta != 0 {
		sd.Counters[counter] += delta
		sd.dirty, s.statsDirty = true, true
	}
}

// statArm counts for a campaign and, when the player is in an experiment arm, for the arm.
func (s *ownerState) statArm(brand, campaign, variant, counter string, delta int64) {
	s.stat(brand, bus.KindCampaign, campaign, counter, delta)
	if variant != "" {
		s.stat(brand, bus.KindCampaign, campaign, bus.VariantStat(variant, counter), delta)
	}
}

// setStat sets a counter (a Segment's member count); it is written only when it changed.
func (s *ownerState) setStat(brand, kind, name, counter string, v int64) {
	if sd := s.statsDoc(brand, kind, name); sd != nil {
		if old, ok := sd.Counters[counter]; !ok || old != v {
			sd.Counters[counter] = v
			sd.dirty, s.statsDirty = true, true
		}
	}
}

// statsDue reports whether the changed counters are written with this flush.
func (s *ownerState) statsDue() bool {
	if !s.statsDirty {
		return false
	}
	every := s.o.StatsEvery
	if every <= 0 {
		every = DefaultStatsEvery
	}
	now := s.o.Clock.Now()
	if now.Sub(s.statsAt) < every && now.After(s.statsAt) {
		return false
	}
	s.statsAt, s.statsDirty = now, false
	return true
}

var (
	kindAttempt = []byte(`"kind":"` + bus.OutcomeAttempt + `"`)
	kindReport  = []byte(`"kind":"` + bus.OutcomeReport + `"`)
)

// countOutcome counts the partition's delivery attempts and reports into the campaigns'
// counters, in all and per channel: a message a provider accepted is sent, one it
// confirmed is delivered; opens, clicks, bounces and complaints are the providers' and
// the players' reports. Test sends count nowhere.
func (s *ownerState) countOutcome(data []byte) {
	if !bytes.Contains(data, kindAttempt) && !bytes.Contains(data, kindReport) {
		return // the owner's own decisions
	}
	var o struct {
		Brand      string        `json:"brand"`
		Player     string        `json:"player"`
		Campaign   string        `json:"campaign"`
		Kind       string        `json:"kind"`
		Result     string        `json:"result"`
		DecisionID string        `json:"decisionID"`
		Channel    crmv1.Channel `json:"channel"`
		Test       bool          `json:"test"`
	}
	if json.Unmarshal(data, &o) != nil {
		return
	}
	if o.Kind == bus.OutcomeReport && (o.Campaign == "" || o.Channel == "") {
		// A provider's report names the decision only: its campaign and channel are the
		// pending send's.
		campaign, ch := s.pendingSend(o.Brand, o.Player, o.DecisionID)
		if o.Campaign == "" {
			o.Campaign = campaign
		}
		if o.Channel == "" {
			o.Channel = ch
		}
	}
	if o.Campaign == "" {
		return
	}
	byChannel := func(counter string) { s.chanStat(o.Brand, o.Campaign, o.Channel, counter, 1) }
	switch {
	case o.Kind == bus.OutcomeAttempt && o.Result == channel.ResultSent:
		if !o.Test {
			s.stat(o.Brand, bus.KindCampaign, o.Campaign, bus.StatSent, 1)
			byChannel(bus.StatSent)
			s.dimStat(o.Brand, o.Campaign, o.Player, bus.StatSent)
			s.touched(o.Brand, o.Player, o.Campaign, o.Channel)
		}
		s.delivered(o.Brand, o.Player, o.DecisionID)
	case o.Kind == bus.OutcomeReport:
		if counter := reportStat[o.Result]; counter != "" {
			if counter == bus.StatDelivered {
				s.stat(o.Brand, bus.KindCampaign, o.Campaign, bus.StatDelivered, 1)
			}
			byChannel(counter)
		}
	}
}

// dimStat adds one to a campaign's counter for the player's VIP level, country and RFM
// segment (SegmentStat), as the player is now.
func (s *ownerState) dimStat(brand, campaign, player, counter string) {
	vip, country, rfm, ok := s.pt.Dims(brand, player)
	if !ok {
		return
	}
	token := func(v string) string {
		if v == "" || strings.ContainsAny(v, ".*> ") {
			return bus.NoValue
		}
		return v
	}
	s.stat(brand, bus.KindCampaign, campaign, bus.SegmentStat(bus.DimVIP, strconv.Itoa(int(vip)), counter), 1)
	s.stat(brand, bus.KindCampaign, campaign, bus.SegmentStat(bus.DimCountry, token(country), counter), 1)
	s.stat(brand, bus.KindCampaign, campaign, bus.SegmentStat(bus.DimRFM, token(rfm), counter), 1)
}

// chanStat adds delta to a campaign's counter on a channel, in all and on the brand's
// day (DayStat).
func (s *ownerState) chanStat(brand, campaign string, ch crmv1.Channel, counter string, delta int64) {
	if ch == "" {
		return
	}
	s.stat(brand, bus.KindCampaign, campaign, bus.ChannelStat(ch, counter), delta)
	s.stat(brand, bus.KindCampaign, campaign, bus.DayStat(s.day(brand), ch, counter), delta)
}

// day is today in the brand's time zone (its PreferencePolicy's defaultTimeZone).
func (s *ownerState) day(brand string) string {
	now := s.o.Clock.Now()
	if b := s.o.Catalog.Brand(brand); b != nil && b.Policy != nil && b.Policy.DefaultZone != nil {
		now = now.In(b.Policy.DefaultZone)
	}
	return now.Format(time.DateOnly)
}

// pruneDays drops a stats document's day counters older than bus.DayStatDays and folds
// its older effect cohorts into the done ones, once a day per document.
func (s *ownerState) pruneDays(sd *statsDoc) {
	floor := s.o.Clock.Now().AddDate(0, 0, -bus.DayStatDays-1).Format(time.DateOnly)
	if sd.pruned == floor {
		return
	}
	sd.pruned = floor
	for k, v := range sd.Counters {
		if day, _, _, ok := bus.ParseDayStat(k); ok && day < floor {
			delete(sd.Counters, k)
		}
		// A cohort older than that is complete (day 30 is past): it joins the done ones.
		if arm, day, name, ok := bus.ParseEffectCohortStat(k); ok && day < floor {
			sd.Counters[bus.EffectDoneStat(arm, name)] += v
			delete(sd.Counters, k)
		}
	}
}

// reportStat is the per-channel counter of each report kind.
var reportStat = map[string]string{
	bus.ReportDelivered: bus.StatDelivered, bus.ReportOpened: bus.StatOpened, bus.ReportClicked: bus.StatClicked,
	bus.ReportHard: bus.StatBounced, bus.ReportSoft: bus.StatBounced, bus.ReportComplaint: bus.StatComplaints,
	bus.ReportUndelivered: bus.StatUndelivered, bus.ReportUnsubscribed: bus.StatUnsubscribes,
}

// touched records the channel of a campaign's message a provider took on the player's
// open flow of that campaign: its later conversion and revenue go to that channel.
func (s *ownerState) touched(brand, player, campaign string, ch crmv1.Channel) {
	ps, ok := s.players[brand+"/"+player]
	if !ok || ch == "" {
		return
	}
	now := s.o.Clock.Now().Unix()
	for i := len(ps.Flows) - 1; i >= 0; i-- {
		if fp := ps.Flows[i]; fp.Campaign == campaign {
			fp.LastChannel, fp.LastTouch = ch, now
			s.markDirty(ps)
			return
		}
	}
	for i := len(ps.Done) - 1; i >= 0; i-- {
		if d := &ps.Done[i]; d.Campaign == campaign {
			d.LastChannel, d.LastTouch = ch, now
			s.markDirty(ps)
			return
		}
	}
}

// delivered ends a mandatory message's deadline once a provider took it: its pending
// entry is then an ordinary one (kept for late failure reports, trimmed as usual), and no
// retry round runs for it.
func (s *ownerState) delivered(brand, player, did string) {
	ps, ok := s.players[brand+"/"+player]
	if !ok {
		return
	}
	for i := range ps.Pending {
		if pd := &ps.Pending[i]; pd.DecisionID == did && pd.Deadline > 0 {
			pd.Deadline = 0
			s.markDirty(ps)
			return
		}
	}
}

// pendingSend is the campaign and channel of a player's pending send ("" when none is
// kept, or it is a test send).
func (s *ownerState) pendingSend(brand, player, did string) (string, crmv1.Channel) {
	ps, ok := s.players[brand+"/"+player]
	if !ok {
		return "", ""
	}
	for i := range ps.Pending {
		if pd := &ps.Pending[i]; pd.DecisionID == did {
			if pd.Intent.Test {
				return "", ""
			}
			return pd.Intent.Campaign, pd.Channel
		}
	}
	return "", ""
}
