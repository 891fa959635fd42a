package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
)

// simulator plays a casino day for a few thousand players of the sample brand: sign-ups
// (Azerbaijani and Russian speakers in Baku), KYC, deposits, sessions, bets and wins,
// limits approached and exceeded, a few self-exclusions. speed compresses time: at 60 a
// day takes 24 minutes (events carry the real time; the rate is what speeds up).
type simulator struct {
	js      jetstream.JetStream
	players int
	speed   float64
	sent    atomic.Int64
	r       *rand.Rand
	joined  int
}

// Typical per-player rates over a day.
const (
	sessionsPerDay = 1.5
	betsPerSession = 40.0
)

func (s *simulator) run(ctx context.Context) {
	s.r = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	// Events per real second: the day's events for all players, compressed by speed.
	perDay := float64(s.players) * (sessionsPerDay * (2 + betsPerSession*2 + 0.3))
	every := time.Duration(float64(24*time.Hour) / s.speed / perDay)
	if every < 50*time.Microsecond {
		every = 50 * time.Microsecond
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			owed += float64(10*time.Millisecond) / float64(every)
			for ; owed >= 1; owed-- {
				s.step(ctx)
			}
		}
	}
}

func (s *simulator) player(i int) string { return "p-" + strconv.Itoa(100000+i) }

// step sends one event: a newcomer while the population grows, else an activity.
func (s *simulator) step(ctx context.Context) {
	if s.joined < s.players && (s.joined < 50 || s.r.Float64() < 0.02) {
		s.register(ctx, s.joined)
		s.joined++
		return
	}
	if s.joined == 0 {
		return
	}
	p := s.player(s.r.IntN(s.joined))
	amount := func(lo, hi float64) string { return strconv.FormatFloat(lo+s.r.Float64()*(hi-lo), 'f', 2, 64) }
	games := []struct{ game, cat string }{{"book-of-ra", "slots"}, {"sweet-bonanza", "slots"}, {"aviator", "crash"}, {"lightning-roulette", "live"}, {"blackjack", "table"}}
	switch x := s.r.Float64(); {
	case x < 0.02:
		s.emit(ctx, p, "deposit.completed", map[string]any{"amount": amount(10, 300), "currency": "AZN", "method": "card", "depositId": s.id("d")})
	case x < 0.025:
		s.emit(ctx, p, "withdrawal.completed", map[string]any{"amount": amount(20, 500), "currency": "AZN", "withdrawalId": s.id("w")})
	case x < 0.05:
		s.emit(ctx, p, "session.started", map[string]any{"device": []string{"ios", "android", "web"}[s.r.IntN(3)]})
	case x < 0.0505:
		s.emit(ctx, p, "limit.approaching", map[string]any{"limitType": "deposit", "limit": "500.00", "used": "450.00", "period": "week"})
	case x < 0.0507:
		s.emit(ctx, p, "limit.exceeded", map[string]any{"limitType": "loss", "limit": "300.00", "used": "320.00", "period": "week", "blocked": true})
	case x < 0.0508:
		s.emit(ctx, p, "kyc.failed", map[string]any{"reason": "document unreadable", "documentType": "passport"})
	default:
		g := games[s.r.IntN(len(games))]
		stake := amount(0.2, 5)
		round := s.id("r")
		s.emit(ctx, p, "bet.placed", map[string]any{"amount": stake, "currency": "AZN", "game": g.game, "gameCategory": g.cat, "roundId": round})
		win := "0.00"
		if s.r.Float64() < 0.45 {
			st, _ := strconv.ParseFloat(stake, 64)
			win = strconv.FormatFloat(st*(0.5+s.r.Float64()*2.5), 'f', 2, 64)
		}
		s.emit(ctx, p, "bet.settled", map[string]any{"amount": stake, "win": win, "currency": "AZN", "game": g.game, "gameCategory": g.cat, "roundId": round})
	}
}

func (s *simulator) register(ctx context.Context, i int) {
	p := s.player(i)
	lang := "az"
	if s.r.Float64() < 0.3 {
		lang = "ru"
	}
	names := map[string][]string{"az": {"Leyla", "Elvin", "Aysel", "Murad", "Nigar", "Rashad"}, "ru": {"Olga", "Dmitri", "Irina", "Sergei"}}
	s.emit(ctx, p, "player.registered", map[string]any{"country": "AZ", "language": lang, "timeZone": "Asia/Baku", "currency": "AZN",
		"email": p + "@example.az", "phone": fmt.Sprintf("+99450%07d", i), "acquisitionChannel": []string{"organic", "affiliate", "paid"}[s.r.IntN(3)],
		"attrs": map[string]any{"firstName": names[lang][s.r.IntN(len(names[lang]))]}})
	kyc := "passed"
	if s.r.Float64() < 0.1 {
		kyc = "pending"
	}
	s.emit(ctx, p, "player.profile.updated", map[string]any{"kycStatus": kyc, "ageVerified": kyc == "passed",
		"pushTokens": []map[string]string{{"platform": []string{"ios", "android"}[s.r.IntN(2)], "token": "dev-" + p}}})
	s.emit(ctx, p, "deposit.completed", map[string]any{"amount": strconv.Itoa(10+s.r.IntN(90)) + ".00", "currency": "AZN", "method": "card",
		"depositId": s.id("d"), "first": true})
}

func (s *simulator) id(prefix string) string { return prefix + strconv.FormatUint(s.r.Uint64(), 36) }

func (s *simulator) emit(ctx context.Context, player, typ string, data map[string]any) {
	raw, _ := json.Marshal(data)
	ev := bus.CloudEvent{SpecVersion: "1.0", ID: s.id("sim-"), Source: "simulator." + brand, Type: typ, Subject: player,
		Time: time.Now().UTC(), DataContentType: "application/json", Data: raw}
	b, _ := json.Marshal(ev)
	if _, err := s.js.PublishAsync(bus.EventSubject(brand, player, typ), b, jetstream.WithMsgID(ev.ID)); err == nil {
		s.sent.Add(1)
	}
}
