package reward_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
)

func azn(a string) crmv1.Money { return crmv1.Money{Amount: a, Currency: "AZN"} }

// lossOf is a Baku player who staked stake and won win on Monday 16 November.
func lossOf(t *testing.T, stake, win string) *players.Player {
	p := &players.Player{ID: "p-1", Currency: "AZN", TimeZone: "Asia/Baku"}
	at := time.Date(2026, 11, 16, 10, 0, 0, 0, time.UTC)
	for i, e := range []struct{ typ, data string }{
		{ingest.TypeBetPlaced, `{"amount":"` + stake + `","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r1"}`},
		{ingest.TypeBetSettled, `{"amount":"` + stake + `","win":"` + win + `","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r1"}`},
	} {
		raw := fmt.Sprintf(`{"specversion":"1.0","id":"e%d","source":"pam","type":%q,"subject":"p-1","time":%q,"data":%s}`, i, e.typ, at.Format(time.RFC3339), e.data)
		ev, err := ingest.Decode("baku", "", "", []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		p.Apply(ev, uint64(i+1), 0)
	}
	return p
}

func TestRewardValues(t *testing.T) {
	monday := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC) // 10:00 in Baku
	week := metav1.Duration{Duration: 7 * 24 * time.Hour}
	for _, c := range []struct {
		name   string
		r      crmv1.Reward
		p      *players.Player
		event  string
		ok     bool
		minor  int64
		reason string
	}{
		{"free spins", crmv1.Reward{FreeSpins: &crmv1.FreeSpinsReward{Game: "book-of-ra", Count: 25, SpinValue: azn("0.20")}, ExpiresAfter: &week},
			lossOf(t, "1.00", "0.00"), "", true, 500, ""},
		{"match under the cap", crmv1.Reward{MatchDeposit: &crmv1.MatchDepositReward{Percent: 100, Cap: azn("500.00"), MinDeposit: ptr(azn("20.00"))}},
			lossOf(t, "1.00", "0.00"), `{"amount":"35.50","currency":"AZN","method":"card","depositId":"d1"}`, true, 3550, ""},
		{"match at the cap", crmv1.Reward{MatchDeposit: &crmv1.MatchDepositReward{Percent: 150, Cap: azn("500.00")}},
			lossOf(t, "1.00", "0.00"), `{"amount":"1000.00","currency":"AZN","method":"card","depositId":"d1"}`, true, 50000, ""},
		{"match below the minimum", crmv1.Reward{MatchDeposit: &crmv1.MatchDepositReward{Percent: 100, Cap: azn("500.00"), MinDeposit: ptr(azn("20.00"))}},
			lossOf(t, "1.00", "0.00"), `{"amount":"19.99","currency":"AZN","method":"card","depositId":"d1"}`, false, 0, reward.ReasonDepositBelowMinimum},
		{"match in another currency", crmv1.Reward{MatchDeposit: &crmv1.MatchDepositReward{Percent: 100, Cap: azn("500.00")}},
			lossOf(t, "1.00", "0.00"), `{"amount":"50.00","currency":"RUB","method":"card","depositId":"d1"}`, false, 0, reward.ReasonCurrencyMismatch},
		{"match without a deposit", crmv1.Reward{MatchDeposit: &crmv1.MatchDepositReward{Percent: 100, Cap: azn("500.00")}},
			lossOf(t, "1.00", "0.00"), `{"days":7}`, false, 0, reward.ReasonNoTriggeringDeposit},
		{"weekly cashback", crmv1.Reward{Cashback: &crmv1.CashbackReward{Percent: 10, Period: crmv1.PeriodWeek, Cap: azn("200.00")}},
			lossOf(t, "300.00", "55.00"), "", true, 2450, ""},
		{"weekly cashback capped", crmv1.Reward{Cashback: &crmv1.CashbackReward{Percent: 10, Period: crmv1.PeriodWeek, Cap: azn("20.00")}},
			lossOf(t, "300.00", "55.00"), "", true, 2000, ""},
		{"no cashback for a winner", crmv1.Reward{Cashback: &crmv1.CashbackReward{Percent: 10, Period: crmv1.PeriodWeek, Cap: azn("200.00")}},
			lossOf(t, "50.00", "80.00"), "", false, 0, reward.ReasonNoNetLoss},
		{"daily cashback sees only yesterday", crmv1.Reward{Cashback: &crmv1.CashbackReward{Percent: 10, Period: crmv1.PeriodDay, Cap: azn("200.00")}},
			lossOf(t, "300.00", "55.00"), "", false, 0, reward.ReasonNoNetLoss},
	} {
		g := &bus.RewardGrant{Reward: c.r}
		ok, reason := reward.Engine{}.Value(g, c.p, json.RawMessage(c.event), monday)
		if ok != c.ok || reason != c.reason || g.Value.Minor != c.minor {
			t.Errorf("%s: %v %q %d, want %v %q %d (%s)", c.name, ok, reason, g.Value.Minor, c.ok, c.reason, c.minor, g.Basis)
		}
		if c.r.ExpiresAfter != nil && !g.Expires.Equal(monday.Add(week.Duration)) {
			t.Errorf("%s: expires %s", c.name, g.Expires)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func metav1Duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }
