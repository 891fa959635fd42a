package players_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/rules"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ev builds and decodes a CloudEvent the way intake does.
func ev(t testing.TB, id, typ string, at time.Time, data string) *ingest.Event {
	t.Helper()
	raw := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"pam.baku","type":%q,"subject":"p-1","time":%q,"data":%s}`,
		id, typ, at.Format(time.RFC3339), data)
	e, err := ingest.Decode("baku", "p-1", typ, []byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return e
}

func TestDerivedMetrics(t *testing.T) {
	p := &players.Player{ID: "p-1", Brand: "baku"}
	seq := uint64(0)
	apply := func(e *ingest.Event) bool { seq++; return p.Apply(e, seq, players.EventKey(e)) }
	apply(ev(t, "r", ingest.TypeRegistered, t0, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"a@example.az","attrs":{"segment":"vip","score":7}}`))
	apply(ev(t, "d1", ingest.TypeDepositCompleted, t0.Add(time.Hour), `{"amount":"50.00","currency":"AZN","method":"card","depositId":"d1"}`))
	apply(ev(t, "d2", ingest.TypeDepositCompleted, t0.Add(2*time.Hour), `{"amount":"25.50","currency":"AZN","method":"card","depositId":"d2"}`))
	if apply(ev(t, "d2", ingest.TypeDepositCompleted, t0.Add(2*time.Hour), `{"amount":"25.50","currency":"AZN","method":"card","depositId":"d2"}`)) {
		t.Fatal("a repeated source+id was applied twice")
	}
	if p.Apply(ev(t, "d3", ingest.TypeDepositCompleted, t0, `{"amount":"1.00","currency":"AZN","method":"card","depositId":"d3"}`), p.LastSeq, 0) {
		t.Fatal("a redelivered stream sequence was applied twice")
	}
	apply(ev(t, "w1", ingest.TypeWithdrawalCompleted, t0.Add(3*time.Hour), `{"amount":"10.00","currency":"AZN","withdrawalId":"w1"}`))
	for i, g := range []string{"book-of-ra", "book-of-ra", "book-of-ra", "roulette", "blackjack"} {
		cat := "slots"
		if g != "book-of-ra" {
			cat = "table"
		}
		apply(ev(t, fmt.Sprint("b", i), ingest.TypeBetPlaced, t0.Add(4*time.Hour), fmt.Sprintf(`{"amount":"2.00","currency":"AZN","game":%q,"gameCategory":%q,"roundId":"r%d"}`, g, cat, i)))
	}
	apply(ev(t, "s1", ingest.TypeBetSettled, t0.Add(4*time.Hour), `{"amount":"2.00","win":"3.00","currency":"AZN","game":"book-of-ra","gameCategory":"slots","roundId":"r0"}`))
	for i := range 3 {
		apply(ev(t, fmt.Sprint("ss", i), ingest.TypeSessionStarted, t0.Add(time.Duration(i)*24*time.Hour), `{}`))
	}
	apply(ev(t, "old", ingest.TypeSessionStarted, t0.Add(-20*24*time.Hour), `{}`))
	apply(ev(t, "u1", ingest.TypeProfileUpdated, t0.Add(5*time.Hour), `{"vipLevel":3,"kycStatus":"passed","pushTokens":[{"platform":"ios","token":"tok"}],"attrs":{"score":null}}`))
	apply(ev(t, "x1", ingest.TypeCoolingOff, t0.Add(5*time.Hour), `{"until":"2026-11-20T00:00:00Z"}`))

	now := t0.Add(2*24*time.Hour + 6*time.Hour)
	r := p.Rules(now)
	checks := []struct {
		name      string
		got, want any
	}{
		{"depositCount", r.DepositCount, int64(2)},
		{"depositSum", r.DepositSum, 75.5},
		{"withdrawalSum", r.WithdrawalSum, 10.0},
		{"netLoss", r.NetLoss, 65.5},
		{"betCount", r.BetCount, int64(5)},
		{"avgBet", r.AvgBet, 2.0},
		{"wagered", r.Wagered, 10.0},
		{"ltv", r.LTV, 7.0},
		{"arpu", r.ARPU, 7.0},
		{"favoriteGame", r.FavoriteGame, "book-of-ra"},
		{"favoriteGameCategory", r.FavoriteGameCategory, "slots"},
		{"sessionsPerWeek", r.SessionsPerWeek, 3.0},
		{"lastActivity", r.LastActivity, t0.Add(2 * 24 * time.Hour)},
		{"daysInactive", r.DaysInactive, int64(0)},
		{"vipLevel", r.VIPLevel, int64(3)},
		{"kycStatus", r.KYCStatus, "passed"},
		{"coolingOff", r.CoolingOff, true},
		{"hasEmail", r.HasEmail, true},
		{"hasPush", r.HasPush, true},
		{"attrs", fmt.Sprint(r.Attrs), "map[segment:vip]"},
		{"timeZone", r.TimeZone, "Asia/Baku"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	later := now.Add(30 * 24 * time.Hour)
	if r := p.Rules(later); r.DaysInactive != 30 || r.SessionsPerWeek != 0 || r.ChurnRisk < 0.85 || r.CoolingOff {
		t.Errorf("a month later: daysInactive %d sessions %v churn %v coolingOff %v", r.DaysInactive, r.SessionsPerWeek, r.ChurnRisk, r.CoolingOff)
	}
	if r.ChurnRisk != 0 {
		t.Errorf("churn risk of an active player = %v", r.ChurnRisk)
	}

	// The JSON form round-trips everything, including the dedup memory.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back players.Player
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back.Rules(now)) != fmt.Sprint(p.Rules(now)) || back.Recent != p.Recent || back.LastSeq != p.LastSeq {
		t.Errorf("JSON round trip changed the player:\n%+v\n%+v", back.Rules(now), p.Rules(now))
	}
	again := ev(t, "x1", ingest.TypeCoolingOff, t0.Add(5*time.Hour), `{"until":"2026-11-20T00:00:00Z"}`)
	if back.Apply(again, 0, players.EventKey(again)) {
		t.Error("a reloaded player forgot the recent event keys")
	}
}

func TestSelfExclusionAndRisk(t *testing.T) {
	p := &players.Player{ID: "p-1"}
	p.Apply(ev(t, "a", ingest.TypeSelfExclusion, t0, `{"until":"2026-12-01T00:00:00Z"}`), 1, 0)
	if !p.Rules(t0).SelfExcluded || p.Rules(t0.Add(40*24*time.Hour)).SelfExcluded {
		t.Error("a timed self-exclusion must hold until its end and then lapse")
	}
	p.Apply(ev(t, "b", ingest.TypeSelfExclusion, t0, `{"scope":"national"}`), 2, 0)
	if !p.Rules(t0.Add(400 * 24 * time.Hour)).SelfExcluded {
		t.Error("a national exclusion without an end is indefinite")
	}
	p.Apply(ev(t, "c", ingest.TypeLimitExceeded, t0, `{"limitType":"loss","limit":"100.00","used":"120.00","period":"week","blocked":true}`), 3, 0)
	if !p.Rules(t0.Add(24*time.Hour)).AtRisk || p.Rules(t0.Add(31*24*time.Hour)).AtRisk {
		t.Error("limit.exceeded marks the player at risk for 30 days")
	}
}

func TestRFMQuintiles(t *testing.T) {
	now := t0
	var ps []*players.Player
	for i := range 10 {
		ps = append(ps, &players.Player{
			ID: fmt.Sprint("p", i), LastActivity: players.UnixOf(now.Add(-time.Duration(i) * 24 * time.Hour)),
			DepositCount: int64(i), DepositSum: int64(i * 1000),
		})
	}
	if changed := players.ScoreRFM(ps, now); changed != 10 {
		t.Errorf("changed = %d, want 10", changed)
	}
	// p0: most recent, fewest deposits; p9: least recent, most deposits.
	want := map[string]players.RFM{
		"p0": {R: 5, F: 1, M: 1, Segment: players.SegmentNew},
		"p1": {R: 5, F: 1, M: 1, Segment: players.SegmentNew},
		"p2": {R: 4, F: 2, M: 2, Segment: players.SegmentPotentialLoyalist},
		"p5": {R: 3, F: 3, M: 3, Segment: players.SegmentNeedAttention},
		"p9": {R: 1, F: 5, M: 5, Segment: players.SegmentCannotLose},
	}
	for _, p := range ps {
		if w, ok := want[p.ID]; ok && p.RFM != w {
			t.Errorf("%s: %+v, want %+v", p.ID, p.RFM, w)
		}
	}
	if changed := players.ScoreRFM(ps, now); changed != 0 {
		t.Errorf("rescoring the same data changed %d players", changed)
	}
	// Equal values get equal scores.
	same := []*players.Player{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	players.ScoreRFM(same, now)
	if same[0].RFM != same[1].RFM || same[1].RFM != same[2].RFM {
		t.Errorf("ties scored differently: %+v %+v %+v", same[0].RFM, same[1].RFM, same[2].RFM)
	}
}

func TestSegmentSelectionOverTheIndex(t *testing.T) {
	pt := players.NewPartition(0)
	seq := uint64(0)
	for i := range 20 {
		id := fmt.Sprintf("p-%d", i)
		country := "AZ"
		if i%2 == 1 {
			country = "TR"
		}
		for _, raw := range []string{
			fmt.Sprintf(`{"specversion":"1.0","id":"r-%s","source":"pam","type":"player.registered","subject":%q,"time":"2026-11-01T10:00:00Z","data":{"country":%q,"language":"az","timeZone":"Asia/Baku","currency":"AZN"}}`, id, id, country),
			fmt.Sprintf(`{"specversion":"1.0","id":"d-%s","source":"pam","type":"deposit.completed","subject":%q,"time":"2026-11-01T11:00:00Z","data":{"amount":"%d.00","currency":"AZN","method":"card","depositId":"x"}}`, id, id, i*10),
		} {
			e, err := ingest.Decode("baku", "", "", []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			seq++
			pt.Apply(e, seq)
		}
	}
	prog, err := rules.Compile(rules.PlayerRule, `player.country == "AZ" && player.depositSum >= 100.0`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := pt.Select("baku", t0.Add(24*time.Hour), prog, func(id string) { got = append(got, id) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"p-10", "p-12", "p-14", "p-16", "p-18"}
	if !slices.Equal(got, want) {
		t.Errorf("segment = %v, want %v", got, want)
	}
	if err := pt.Select("other", t0, prog, func(string) { t.Error("a player of another brand matched") }); err != nil {
		t.Fatal(err)
	}
}

func TestSweepEmitsInactivityOncePerThresholdAndScoresRFM(t *testing.T) {
	pt := players.NewPartition(0)
	for i, days := range []int{1, 8, 40} {
		id := fmt.Sprintf("p-%d", i)
		raw := fmt.Sprintf(`{"specversion":"1.0","id":"s-%s","source":"pam","type":"session.started","subject":%q,"time":%q,"data":{}}`,
			id, id, t0.Add(-time.Duration(days)*24*time.Hour).Format(time.RFC3339))
		e, err := ingest.Decode("baku", "", "", []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		pt.Apply(e, uint64(i+1))
	}
	got := map[string][]int{}
	for _, c := range pt.Sweep("baku", t0, []int{7, 30}) {
		got[c.Player] = append(got[c.Player], c.N)
	}
	if fmt.Sprint(got) != "map[p-1:[7] p-2:[7 30]]" {
		t.Errorf("first sweep crossings %v", got)
	}
	if again := pt.Sweep("baku", t0.Add(time.Hour), []int{7, 30}); len(again) != 0 {
		t.Errorf("a second sweep emitted again: %+v", again)
	}
	if later := pt.Sweep("baku", t0.Add(23*24*time.Hour), []int{7, 30}); len(later) != 2 {
		t.Errorf("23 days later p-0 crosses 7 and p-1 crosses 30: %+v", later)
	}
	p0, _ := pt.Get("baku", "p-0")
	p2, _ := pt.Get("baku", "p-2")
	if p0.RFM.R <= p2.RFM.R || p0.RFM.Segment == "" {
		t.Errorf("recency scores: p-0 %+v, p-2 %+v", p0.RFM, p2.RFM)
	}
}

// croupierEv is a report event from Croupier's own workers.
func croupierEv(t testing.TB, id, typ string, at time.Time, data string) *ingest.Event {
	t.Helper()
	raw := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"croupier","type":%q,"subject":"p-1","time":%q,"data":%s}`,
		id, typ, at.Format(time.RFC3339), data)
	e, err := ingest.Decode("baku", "p-1", typ, []byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return e
}

func TestBouncesAndComplaintsMarkTheAddressUntilANewOne(t *testing.T) {
	p := &players.Player{ID: "p-1"}
	p.Apply(ev(t, "a", ingest.TypeProfileUpdated, t0, `{"email":"leyla@example.az"}`), 1, 0)
	for i := range players.SoftBounceLimit {
		if p.EmailBounced {
			t.Fatalf("bounced after %d soft bounces", i)
		}
		p.Apply(croupierEv(t, fmt.Sprint("s", i), ingest.TypeEmailBounced, t0, `{"kind":"soft"}`), uint64(2+i), 0)
	}
	if !p.EmailBounced {
		t.Fatalf("%d soft bounces did not mark the address", players.SoftBounceLimit)
	}
	p.Apply(ev(t, "b", ingest.TypeProfileUpdated, t0, `{"email":"leyla@new.az"}`), 10, 0)
	if p.EmailBounced || p.SoftBounces != 0 {
		t.Fatal("a new address starts clean")
	}
	p.Apply(croupierEv(t, "c", ingest.TypeEmailBounced, t0, `{"kind":"hard"}`), 11, 0)
	if !p.EmailBounced {
		t.Fatal("a hard bounce did not mark the address")
	}
	p.Apply(ev(t, "d", ingest.TypeProfileUpdated, t0, `{"email":"leyla@third.az"}`), 12, 0)
	p.Apply(croupierEv(t, "e", ingest.TypeEmailBounced, t0, `{"kind":"complaint"}`), 13, 0)
	if !p.EmailBounced {
		t.Fatal("a spam complaint did not mark the address")
	}
}

func TestInvalidTokensAreRemoved(t *testing.T) {
	p := &players.Player{ID: "p-1"}
	p.Apply(ev(t, "a", ingest.TypeProfileUpdated, t0, `{"pushTokens":[{"platform":"android","token":"t1"},{"platform":"ios","token":"t2"}],"webPushSubscription":{"endpoint":"https://push.example/1","keys":{"p256dh":"k","auth":"a"}}}`), 1, 0)
	p.Apply(croupierEv(t, "b", ingest.TypeTokenInvalid, t0, `{"channel":"push","token":"t1"}`), 2, 0)
	if len(p.PushTokens) != 1 || p.PushTokens[0].Token != "t2" || p.WebPushSubscription == nil {
		t.Fatalf("after an invalid push token: %+v %s", p.PushTokens, p.WebPushSubscription)
	}
	p.Apply(croupierEv(t, "c", ingest.TypeTokenInvalid, t0, `{"channel":"webPush","token":"{\"endpoint\":\"https://push.example/1\"}"}`), 3, 0)
	if p.WebPushSubscription != nil {
		t.Fatal("a gone web-push subscription was kept")
	}
	p.Apply(ev(t, "d", ingest.TypeProfileUpdated, t0, `{"viberId":"vb-1"}`), 4, 0)
	p.Apply(croupierEv(t, "e", ingest.TypeTokenInvalid, t0, `{"channel":"viber","token":"vb-1"}`), 5, 0)
	if p.ViberID != "" {
		t.Fatal("a Viber id that cannot receive was kept")
	}
}

func TestAnniversaryOnTheLocalDayWithCatchUp(t *testing.T) {
	reg := time.Date(2024, 11, 22, 10, 0, 0, 0, time.UTC) // 14:00 in Baku
	leap := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		reg  time.Time
		zone string
		now  time.Time
		want int
	}{
		{"Baku midnight of the day", reg, "Asia/Baku", time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC), 2},
		{"still the 21st in UTC", reg, "UTC", time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC), 0},
		{"unknown zone is Baku", reg, "", time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC), 2},
		{"the day before", reg, "Asia/Baku", time.Date(2026, 11, 21, 19, 59, 0, 0, time.UTC), 0},
		{"caught up the next day", reg, "Asia/Baku", time.Date(2026, 11, 23, 19, 59, 0, 0, time.UTC), 2},
		{"too late after two days", reg, "Asia/Baku", time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC), 0},
		{"first year not yet", reg, "Asia/Baku", time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC), 0},
		{"first year", reg, "Asia/Baku", time.Date(2025, 11, 22, 12, 0, 0, 0, time.UTC), 1},
		{"registration day itself", reg, "Asia/Baku", reg.Add(time.Hour), 0},
		{"29 February on 1 March", leap, "Asia/Baku", time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), 1},
		{"29 February not on 28th", leap, "Asia/Baku", time.Date(2025, 2, 28, 8, 0, 0, 0, time.UTC), 0},
		{"29 February in a leap year", leap, "Asia/Baku", time.Date(2028, 2, 29, 8, 0, 0, 0, time.UTC), 4},
	} {
		p := players.Player{RegisteredAt: players.UnixOf(c.reg), TimeZone: c.zone}
		if got := p.Anniversary(c.now); got != c.want {
			t.Errorf("%s: Anniversary = %d, want %d", c.name, got, c.want)
		}
	}
	if got := (&players.Player{}).Anniversary(reg); got != 0 {
		t.Errorf("no registration time: %d", got)
	}
}

func TestSweepEmitsEachAnniversaryOnce(t *testing.T) {
	pt := players.NewPartition(0)
	reg := time.Date(2024, 11, 22, 10, 0, 0, 0, time.UTC)
	pt.Apply(ev(t, "r", ingest.TypeRegistered, reg, `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}`), 1)
	anniversaries := func(now time.Time) (n []int) {
		for _, c := range pt.Sweep("baku", now, nil) {
			if c.Type != ingest.TypeAnniversary || c.Player != "p-1" || c.Since != players.UnixOf(reg) {
				t.Errorf("unexpected crossing %+v", c)
			}
			n = append(n, c.N)
		}
		return n
	}
	if got := anniversaries(reg.AddDate(0, 6, 0)); got != nil {
		t.Errorf("half a year: %v", got)
	}
	if got := anniversaries(reg.AddDate(1, 0, 0)); fmt.Sprint(got) != "[1]" {
		t.Errorf("first anniversary: %v", got)
	}
	if got := anniversaries(reg.AddDate(1, 0, 0).Add(time.Hour)); got != nil {
		t.Errorf("the same day again: %v", got)
	}
	if got := anniversaries(reg.AddDate(2, 0, 0).Add(-time.Hour)); fmt.Sprint(got) != "[2]" {
		t.Errorf("second anniversary (09:00 UTC is 13:00 in Baku): %v", got)
	}
	ce := ingest.SweepEvent("p-1", ingest.TypeAnniversary, 2, int64(players.UnixOf(reg)), reg)
	b, _ := json.Marshal(ce)
	if _, err := ingest.Decode("baku", "", "", b); err != nil {
		t.Errorf("the emitted anniversary event does not decode: %v", err)
	}
	bad := bytes.Replace(b, []byte(`"years":2`), []byte(`"years":0`), 1)
	if _, err := ingest.Decode("baku", "", "", bad); err == nil || !strings.Contains(err.Error(), "data.years") {
		t.Errorf("years 0: %v", err)
	}
}

// Cashback reads the last complete day, week (Monday to Sunday) and month of stakes
// minus wins in the player's zone.
func TestNetLossOverCompletePeriods(t *testing.T) {
	p := &players.Player{ID: "p-1", Currency: "AZN", TimeZone: "Asia/Baku"}
	seq := uint64(0)
	bet := func(at time.Time, stake, win string) {
		seq++
		id := fmt.Sprintf("b%d", seq)
		p.Apply(ev(t, id, ingest.TypeBetPlaced, at, `{"amount":"`+stake+`","currency":"AZN","game":"g","gameCategory":"slots","roundId":"`+id+`"}`), seq, 0)
		seq++
		p.Apply(ev(t, id+"s", ingest.TypeBetSettled, at, `{"amount":"`+stake+`","win":"`+win+`","currency":"AZN","game":"g","gameCategory":"slots","roundId":"`+id+`"}`), seq, 0)
	}
	baku := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.FixedZone("+04", 4*3600)) }
	bet(baku(2, 12), "100.00", "0.00")  // Monday 2 Nov: last month... no, November
	bet(baku(16, 10), "50.00", "20.00") // Monday of last week
	bet(baku(22, 23), "40.00", "0.00")  // Sunday of last week, 23:00 in Baku (19:00 UTC)
	bet(baku(23, 1), "10.00", "30.00")  // Monday 01:00 in Baku: still Sunday in UTC
	now := baku(24, 9)                  // Tuesday 24 Nov
	if got := p.NetLoss(crmv1.PeriodDay, now); got != -2000 {
		t.Errorf("yesterday (Monday 23rd): %d, want -2000", got)
	}
	if got := p.NetLoss(crmv1.PeriodWeek, now); got != 7000 {
		t.Errorf("last week (16-22 Nov): %d, want 7000", got)
	}
	if got := p.NetLoss(crmv1.PeriodMonth, now); got != 0 {
		t.Errorf("last month (October): %d, want 0", got)
	}
	if got := p.NetLoss(crmv1.PeriodMonth, baku(31+1, 9).AddDate(0, 0, 0)); got != 15000 {
		t.Errorf("November seen on 2 December: %d, want 15000", got)
	}
	if got := p.NetLoss(crmv1.PeriodWeek, baku(24, 9).AddDate(0, 0, 21)); got != 0 {
		t.Errorf("three weeks later the ring no longer holds it: %d", got)
	}
}
