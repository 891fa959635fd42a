package rules

import (
	"strings"
	"testing"
	"time"
)

func TestCompileAndMatch(t *testing.T) {
	vip := &Player{ID: "p-1", Country: "AZ", LTV: 900, RFM: RFM{R: 2, F: 4, M: 5, Segment: "atRisk"}, DepositCount: 4, KYCStatus: "passed",
		Attrs: map[string]string{"host": "elvin"}, LastActivity: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	small := &Player{ID: "p-2", Country: "RU", LTV: 20, RFM: RFM{R: 5, F: 1, M: 1, Segment: "newPlayers"}}
	cases := []struct {
		name, rule string
		want       map[string]bool
	}{
		{"five clauses", `player.ltv > 500.0 && player.country == "AZ" && player.rfm.r <= 2 && player.depositCount >= 3 && player.kycStatus == "passed"`, map[string]bool{"p-1": true, "p-2": false}},
		{"rfm segment", `player.rfm.segment == "atRisk"`, map[string]bool{"p-1": true, "p-2": false}},
		{"attrs", `"host" in player.attrs && player.attrs["host"] == "elvin"`, map[string]bool{"p-1": true, "p-2": false}},
		{"timestamps", `player.lastActivity > timestamp("2026-10-01T00:00:00Z")`, map[string]bool{"p-1": true, "p-2": false}},
		{"strings ext", `player.country.lowerAscii() == "ru"`, map[string]bool{"p-1": false, "p-2": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prg, err := Compile(PlayerRule, c.rule)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, p := range []*Player{vip, small} {
				got, err := prg.Match(p)
				if err != nil {
					t.Fatalf("eval %s: %v", p.ID, err)
				}
				if got != c.want[p.ID] {
					t.Errorf("%s: got %v, want %v", p.ID, got, c.want[p.ID])
				}
			}
		})
	}
}

func TestEventRule(t *testing.T) {
	prg, err := Compile(EventRule, `event.type == "deposit.completed" && event.data.first == true && double(event.data.amount) >= 20.0 && player.country == "AZ"`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := prg.MatchEvent(&Player{Country: "AZ"}, &Event{Type: "deposit.completed", Data: map[string]any{"first": true, "amount": "50.00"}})
	if err != nil || !ok {
		t.Fatalf("got %v, %v; want true", ok, err)
	}
	ok, err = prg.MatchEvent(&Player{Country: "AZ"}, &Event{Type: "deposit.completed", Data: map[string]any{"first": false, "amount": "50.00"}})
	if err != nil || ok {
		t.Fatalf("got %v, %v; want false", ok, err)
	}
	if _, err := Compile(PlayerRule, `event.type == "x"`); err == nil {
		t.Fatal("a player rule must not see event")
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ name, rule, want string }{
		{"unknown field", `player.lvt > 500.0`, "1:7"},
		{"syntax", `player.ltv >`, "1:13"},
		{"not bool", `player.ltv`, "must yield bool"},
		{"type mismatch", `player.country > 5`, "no matching overload"},
		{"empty", `  `, "empty"},
		{"too long", strings.Repeat("a", MaxSourceLength+1), "at most"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(PlayerRule, c.rule)
			if err == nil {
				t.Fatalf("compiled %q", c.rule)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}
