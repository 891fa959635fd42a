package flow

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
)

// Tournaments: a grant step of a tournament reward joins the player; the partition owner
// scores its joined players' bet.settled events in the window, keeps the score in the
// player's state and publishes the partition's scores to croupier-stats
// (KindLeaderboard). After the window's end (plus TournamentGrace for late events) each
// owner closes its scores (Final); once every partition's scores are final, each owner
// ranks all of them the same way and grants its own players' prizes through REWARDS.

// Tournament limits.
const (
	// TournamentGrace is how long after a window's end bets in flight may still score
	// (Owner.TournamentGrace).
	TournamentGrace = time.Minute
	// MaxBoardEntries bounds a partition's published scores (the highest kept).
	MaxBoardEntries = 20000
)

// Tournament reasons.
const (
	ReasonTournamentJoined = "TournamentJoined"
	ReasonPrizeGranted     = "PrizeGranted"
)

// board is a partition's scores of one campaign's tournament.
type board struct {
	brand, campaign, uid string
	scores               map[string]int64
	rev                  uint64
	dirty, final         bool
	awarded              bool
}

func (s *ownerState) board(brand, campaign, uid string) *board {
	k := brand + "/" + campaign
	bd := s.boards[k]
	if bd == nil || (uid != "" && bd.uid != "" && bd.uid != uid) {
		rev := uint64(0)
		if bd != nil {
			rev = bd.rev
		}
		bd = &board{brand: brand, campaign: campaign, uid: uid, scores: map[string]int64{}, rev: rev}
		s.boards[k] = bd
	}
	if bd.uid == "" {
		bd.uid = uid
	}
	return bd
}

// doc is the board as published: scores highest first, ties by player id.
func (bd *board) doc(part int, now time.Time) *bus.Leaderboard {
	scores := make([]bus.ScoreEntry, 0, len(bd.scores))
	for p, sc := range bd.scores {
		scores = append(scores, bus.ScoreEntry{Player: p, Score: sc})
	}
	bus.SortScores(scores)
	if len(scores) > MaxBoardEntries {
		scores = scores[:MaxBoardEntries]
	}
	return &bus.Leaderboard{Brand: bd.brand, Campaign: bd.campaign, UID: bd.uid, Partition: part, Scores: scores,
		Final: bd.final, Awarded: bd.awarded, Updated: now.UTC()}
}

// rebuildBoards restores the scores from the players' states after a handoff.
func (s *ownerState) rebuildBoards() {
	for _, ps := range s.players {
		for _, e := range ps.Entries {
			if e.Joined {
				s.board(ps.Brand, e.Campaign, e.UID).scores[ps.Player] = e.Score
			}
		}
	}
}

// join enters the player into the campaign's tournament.
func (s *ownerState) join(b *Brand, cp *Campaign, ps *PlayerState, st *crmv1.Step, now time.Time) {
	result, reason := "granted", ReasonTournamentJoined
	if p, ok := s.pt.Get(ps.Brand, ps.Player); !ok || p.SelfExcludedAt(now) || p.CoolingOffUntil > players.UnixOf(now) || p.AtRiskUntil > players.UnixOf(now) {
		result, reason = "refused", string(route.ReasonBonusRefusedRG)
	} else if e := ps.entry(b, cp); !e.Joined {
		e.Joined = true
		bd := s.board(ps.Brand, cp.Name, cp.UID)
		bd.scores[ps.Player], bd.dirty = e.Score, true
		s.statsDirty = true
		s.markDirty(ps)
	}
	s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(cp.Name + "." + st.Name + "." + ps.Player), Brand: ps.Brand, Player: ps.Player,
		Campaign: cp.Name, Step: st.Name, Kind: OutcomeFlow, Category: string(cp.Spec().Category), Result: result, Reason: reason,
		Detail: "tournament " + cp.Tournament.Name})
}

// score adds a settled bet to the player's tournaments it qualifies for.
func (s *ownerState) score(b *Brand, ps *PlayerState, ev *ingest.Event) {
	for i := range ps.Entries {
		e := &ps.Entries[i]
		if !e.Joined {
			continue
		}
		cp := b.campaign(e.Campaign)
		if cp == nil || cp.UID != e.UID || cp.Tournament == nil {
			continue
		}
		bd := s.board(ps.Brand, cp.Name, cp.UID)
		t := cp.Tournament.Tournament
		at := ev.Time
		if bd.final || (t.Window.Start != nil && at.Before(t.Window.Start.Time)) || (t.Window.End != nil && !at.Before(t.Window.End.Time)) {
			continue
		}
		if t.MinBet != nil {
			min, err := money.Parse(t.MinBet.Amount, t.MinBet.Currency)
			if err != nil || ev.Data.Currency == nil || *ev.Data.Currency != t.MinBet.Currency || ev.AmountMinor < min {
				continue
			}
		}
		if len(t.GameCategories) > 0 && (ev.Data.GameCategory == nil || !slices.Contains(t.GameCategories, *ev.Data.GameCategory)) {
			continue
		}
		var delta int64
		switch t.Metric {
		case "wager":
			delta = ev.AmountMinor
		case "wins":
			delta = ev.WinMinor
		default: // points: one per qualifying round
			delta = 1
		}
		if delta == 0 {
			continue
		}
		e.Score += delta
		bd.scores[ps.Player], bd.dirty = e.Score, true
		s.statsDirty = true
		s.markDirty(ps)
	}
}

// closeTournaments closes this partition's scores of tournaments whose window ended and,
// once every partition closed its scores, grants this partition's prizes.
func (s *ownerState) closeTournaments(ctx context.Context, now time.Time) error {
	for _, b := range s.o.Catalog.Brands() {
		for _, cp := range b.Campaigns {
			if cp.Tournament == nil {
				continue
			}
			end := cp.Tournament.Tournament.Window.End
			grace := s.o.TournamentGrace
			if grace <= 0 {
				grace = TournamentGrace
			}
			if end == nil || now.Before(end.Add(grace)) {
				continue
			}
			bd := s.board(b.Name, cp.Name, cp.UID)
			if bd.awarded {
				continue
			}
			if !bd.final {
				bd.final, bd.dirty, s.statsDirty = true, true, true
				continue // published with this flush; the prizes wait for every partition
			}
			docs, complete, err := s.boardsOf(ctx, b.Name, cp)
			if err != nil {
				return err
			}
			if complete {
				s.award(b, cp, bd, bus.Ranked(docs), now)
			}
		}
	}
	return nil
}

// boardsOf reads every partition's scores of cp; complete when all are final.
func (s *ownerState) boardsOf(ctx context.Context, brand string, cp *Campaign) ([]bus.Leaderboard, bool, error) {
	if s.o.Stats == nil {
		return nil, false, nil
	}
	parts := max(1, s.o.Partitions)
	docs := make([]bus.Leaderboard, 0, parts)
	for part := range parts {
		e, err := s.o.Stats.Get(ctx, bus.StatsKey(brand, bus.KindLeaderboard, cp.Name, part))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		lb, err := bus.Decode[bus.Leaderboard](e.Value())
		if err != nil {
			return nil, false, err
		}
		if !lb.Final || lb.UID != cp.UID {
			return nil, false, nil
		}
		docs = append(docs, lb)
	}
	return docs, true, nil
}

// award grants the prizes of the ranks this partition's players hold.
func (s *ownerState) award(b *Brand, cp *Campaign, bd *board, ranking []bus.ScoreEntry, now time.Time) {
	t := cp.Tournament.Tournament
	for i, se := range ranking {
		rank := int32(i + 1)
		var prize *crmv1.Prize
		for j := range t.Prizes {
			if rank >= t.Prizes[j].FromRank && rank <= t.Prizes[j].ToRank {
				prize = &t.Prizes[j]
			}
		}
		if prize == nil {
			continue
		}
		ps, ok := s.players[b.Name+"/"+se.Player]
		if !ok {
			continue // another partition's player
		}
		e := ps.entry(b, cp)
		if e.Prize != 0 {
			continue
		}
		e.Prize = int(rank)
		s.markDirty(ps)
		v, err := money.Parse(prize.Amount.Amount, prize.Amount.Currency)
		if err != nil {
			continue
		}
		g := &bus.RewardGrant{ID: bus.RewardGrantID(cp.Name, "prize", se.Player, strconv.Itoa(int(rank))), Brand: b.Name, Player: se.Player,
			Campaign: cp.Name, Step: "prize", Reward: *cp.Tournament, Value: bus.MinorAmount{Minor: v, Currency: prize.Amount.Currency},
			Basis: "rank " + strconv.Itoa(int(rank)) + " with a score of " + strconv.FormatInt(se.Score, 10), Granted: now.UTC()}
		micros := money.MinorToMicros(v, prize.Amount.Currency)
		result, reason := "granted", ReasonPrizeGranted
		if s.o.Budget != nil && cp.Caps.Limited() {
			if refused := s.o.Budget.Reserve(b.Name, cp.Name, micros, ps.spent(cp)); refused != "" {
				result, reason = "refused", string(route.ReasonBudgetExhausted)
			}
		}
		if result == "granted" {
			e.Spent += micros
			raw, _ := bus.Encode(g)
			msg := nats.NewMsg(bus.RewardSubject(b.Name, se.Player))
			msg.Data = raw
			s.out = append(s.out, outMsg{msg: msg, id: g.ID})
			s.stat(b.Name, bus.KindCampaign, cp.Name, bus.StatPrizesGranted, 1)
			s.stat(b.Name, bus.KindCampaign, cp.Name, bus.StatRewardsGranted, 1)
			s.stat(b.Name, bus.KindCampaign, cp.Name, bus.StatCostRewards, micros)
		}
		s.outcome(&bus.Outcome{Time: now.UTC(), DecisionID: route.DecisionID(g.ID), Brand: b.Name, Player: se.Player, Campaign: cp.Name,
			Step: "prize", Kind: OutcomeFlow, Category: string(cp.Spec().Category), Result: result, Reason: reason, Detail: g.Basis})
	}
	bd.awarded, bd.dirty, s.statsDirty = true, true, true
}
