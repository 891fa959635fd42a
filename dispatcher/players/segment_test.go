package players_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/rules"
)

// randomPlayer makes a player with every field the rules read set from r.
func randomPlayer(r *rand.Rand, id string, now time.Time) players.Player {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	p := players.Player{ID: id, Brand: "baku", Country: pick("AZ", "AZ", "AZ", "RU", "TR", ""), Language: pick("az", "ru", "en"),
		TimeZone: "Asia/Baku", Currency: pick("AZN", "AZN", "JPY", "KWD", ""), VIPLevel: int32(r.IntN(6)),
		KYCStatus: pick("passed", "pending", "failed", ""), AgeVerified: r.IntN(2) == 0, AcquisitionChannel: pick("affiliate", "seo", ""),
		RegisteredAt: players.UnixOf(now.Add(-time.Duration(r.IntN(900)) * 24 * time.Hour)),
		DepositCount: int64(r.IntN(40)), DepositSum: int64(r.IntN(500000)), WithdrawalSum: int64(r.IntN(300000)),
		BetCount: int64(r.IntN(400)), StakeSum: int64(r.IntN(400000)), WinSum: int64(r.IntN(400000)),
		LastActivity: players.UnixOf(now.Add(-time.Duration(r.IntN(60*24)) * time.Hour)),
		RFM:          players.RFM{R: uint8(1 + r.IntN(5)), F: uint8(1 + r.IntN(5)), M: uint8(1 + r.IntN(5)), Segment: pick(rules.RFMSegments...)},
	}
	if r.IntN(2) == 0 {
		p.Email = id + "@example.az"
		p.EmailBounced = r.IntN(5) == 0
	}
	if r.IntN(2) == 0 {
		p.Phone = "+994501234567"
	}
	if r.IntN(4) == 0 {
		p.SelfExcluded = true
		p.SelfExcludedUntil = players.UnixOf(now.Add(time.Duration(r.IntN(48)-24) * time.Hour))
	}
	if r.IntN(3) == 0 {
		p.PushTokens = []ingest.PushToken{{Platform: "android", Token: "tok-" + id}}
	}
	if r.IntN(5) == 0 {
		p.CoolingOffUntil = players.UnixOf(now.Add(time.Duration(r.IntN(48)-24) * time.Hour))
	}
	if r.IntN(3) == 0 {
		p.Games = []players.GameCount{{Name: pick("book-of-ra", "aviator"), Count: uint32(r.IntN(50))}, {Name: "blackjack-vip", Count: uint32(r.IntN(50))}}
		p.Categories = []players.GameCount{{Name: pick("slots", "live"), Count: uint32(r.IntN(50))}}
	}
	for d := range p.SessionDays {
		p.SessionDays[d] = uint16(r.IntN(3))
	}
	p.SessionDay = int32(now.Unix() / 86400)
	return p
}

// fastRules have a fast path; each is checked against CEL on random players.
var fastRules = []string{
	`player.ltv > 500.0 && player.country == "AZ" && player.rfm.r <= 2 && player.depositCount >= 3 && player.kycStatus == "passed"`,
	`player.churnRisk >= 0.7 && player.depositCount > 0`,
	`player.rfm.segment == "atRisk"`,
	`player.favoriteGameCategory == "slots" && player.betCount >= 50`,
	`player.daysInactive > 7 && !player.selfExcluded`,
	`player.country in ["AZ", "TR"] || player.vipLevel in [4, 5]`,
	`(500.0 < player.arpu || player.avgBet >= 900.0) && player.netLoss > 100.0 && player.depositSum <= 3000.0 && player.withdrawalSum != 0.0`,
	`player.hasEmail && !player.hasPhone || player.hasPush == false`,
	`player.ageVerified == true && player.coolingOff != true && !player.atRisk`,
	`player.sessionsPerWeek >= 3.0 && player.language != "ru" && player.currency == "AZN" && player.timeZone == "Asia/Baku"`,
	`player.rfm.f >= 4 && player.rfm.m > 3 && player.acquisitionChannel == "affiliate" && player.favoriteGame != "aviator"`,
	`player.id > "p-5" && player.id <= "p-7"`,
	`player.wagered >= 1000.0 && player.betCount > 10`,
	`true && player.rfm.r != 5`,
}

// The fast path and CEL agree on every player for every rule the fast path accepts.
func TestFastRulesAgreeWithCEL(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	ps := make([]players.Player, 3000)
	for i := range ps {
		ps[i] = randomPlayer(r, fmt.Sprintf("p-%d", i), now)
	}
	for _, src := range fastRules {
		prog, err := rules.Compile(rules.PlayerRule, src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if !prog.Fast() {
			t.Fatalf("no fast path for %s", src)
		}
		matched := 0
		for i := range ps {
			rp := ps[i].Rules(now)
			want, err := prog.Match(&rp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := prog.MatchFields(players.View{P: &ps[i], Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s on %+v: fast %v, CEL %v", src, ps[i], got, want)
			}
			if got {
				matched++
			}
		}
		if matched == 0 || matched == len(ps) {
			t.Fatalf("%s matched %d of %d players: the sample does not exercise it", src, matched, len(ps))
		}
	}
}

// Rules outside the fast path's shape are evaluated by CEL, with the same answer through
// players.Match.
func TestRulesWithoutAFastPathUseCEL(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	p := players.Player{ID: "p-1", Brand: "baku", Country: "AZ", Attrs: []players.Attr{{Key: "vip_host", Value: "aysel"}},
		RegisteredAt: players.UnixOf(now.Add(-48 * time.Hour))}
	for src, want := range map[string]bool{
		`player.attrs["vip_host"] == "aysel"`:                          true,
		`"vip_host" in player.attrs && player.country == "AZ"`:         true,
		`player.registeredAt > timestamp("2026-11-21T00:00:00Z")`:      false,
		`player.country.startsWith("A")`:                               true,
		`[player.country].exists(c, c == "TR")`:                        false,
		`player.depositCount + 1 > 0`:                                  true,
		`has(player.rfm.segment) && player.rfm.segment == "champions"`: false,
	} {
		prog, err := rules.Compile(rules.PlayerRule, src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if prog.Fast() {
			t.Fatalf("%s should have no fast path", src)
		}
		if _, err := prog.MatchFields(players.View{P: &p, Now: now}); err != rules.ErrNoFastPath {
			t.Fatalf("%s: MatchFields error %v", src, err)
		}
		got, err := players.Match(prog, &p, now)
		if err != nil || got != want {
			t.Fatalf("%s: %v, %v; want %v", src, got, err, want)
		}
	}
}

// segmentPlayers builds parts partitions holding n players with the distribution of
// ../shared/bench/pgsegment.sh: country AZ,AZ,AZ,RU,TR by g%5, LTV g%2000, deposits g%40,
// rfm.r 1+g%5, KYC passed/pending by g%2, so both count the same members.
func segmentPlayers(n, parts int) []*players.Partition {
	pts := make([]*players.Partition, parts)
	for i := range pts {
		pts[i] = players.NewPartition(i)
	}
	countries := []string{"AZ", "AZ", "AZ", "RU", "TR"}
	kyc := []string{"passed", "pending"}
	for g := 1; g <= n; g++ {
		p := players.Player{ID: "p-" + strconv.Itoa(g), Brand: "baku", Country: countries[g%5], Currency: "AZN",
			KYCStatus: kyc[g%2], StakeSum: int64(g%2000) * 100, DepositCount: int64(g % 40),
			RFM: players.RFM{R: uint8(1 + g%5), F: uint8(1 + (g/5)%5), M: uint8(1 + (g/25)%5)}}
		pts[g%parts].PutForTest(p)
	}
	return pts
}

const vipRule = `player.ltv > 500.0 && player.country == "AZ" && player.rfm.r <= 2 && player.depositCount >= 3 && player.kycStatus == "passed"`

// BenchmarkSegmentEvaluation evaluates the five-clause VIP rule over CROUPIER_BENCH_PLAYERS
// (default 1,000,000) players in 16 partitions, the partitions side by side on every CPU
// as their owners do. One op is one full evaluation; members is the count, which
// ../shared/bench/pgsegment.sh reports for the same rows.
func BenchmarkSegmentEvaluation(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("CROUPIER_BENCH_PLAYERS")); err == nil && v > 0 {
		n = v
	}
	pts := segmentPlayers(n, 16)
	prog, err := rules.Compile(rules.PlayerRule, vipRule)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, mode := range []string{"fast", "cel"} {
		b.Run(mode, func(b *testing.B) {
			var members atomic.Int64
			for b.Loop() {
				members.Store(0)
				var wg sync.WaitGroup
				next := atomic.Int64{}
				for range runtime.GOMAXPROCS(0) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := int(next.Add(1) - 1); i < len(pts); i = int(next.Add(1) - 1) {
							var c int64
							if mode == "fast" {
								_ = pts[i].Select("baku", now, prog, func(string) { c++ })
							} else {
								pts[i].Each("baku", func(p *players.Player) bool {
									rp := p.Rules(now)
									if ok, _ := prog.Match(&rp); ok {
										c++
									}
									return true
								})
							}
							members.Add(c)
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(members.Load()), "members")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/player")
		})
	}
}

// BenchmarkSegmentReevaluateOnePlayer is the work a listed event adds: one player against
// the five-clause rule.
func BenchmarkSegmentReevaluateOnePlayer(b *testing.B) {
	prog, err := rules.Compile(rules.PlayerRule, vipRule)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	p := randomPlayer(rand.New(rand.NewPCG(3, 4)), "p-1", now)
	p.Country, p.KYCStatus, p.Currency, p.StakeSum, p.WinSum, p.DepositCount, p.RFM.R = "AZ", "passed", "AZN", 90000, 0, 5, 1
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if ok, _ := players.Match(prog, &p, now); !ok {
				b.Fatal("no match")
			}
		}
	})
	b.Run("cel", func(b *testing.B) {
		for b.Loop() {
			rp := p.Rules(now)
			if ok, _ := prog.Match(&rp); !ok {
				b.Fatal("no match")
			}
		}
	})
}
