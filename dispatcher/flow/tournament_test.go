package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// A slots wager race over two partitions owned by two dispatchers: a player's first slots
// bet joins them (later bets do not join again); each owner scores its
// own players; the leaderboard API merges both into one ranking (the same from either
// replica); after the window each owner closes its scores and, once both are closed,
// grants the prizes of its own players' ranks exactly once.
func TestTournamentAcrossTwoOwners(t *testing.T) {
	srv := bustest.Start(t, 2)
	configure(t, srv)
	_, js := srv.Connect(t)
	now := time.Now()
	end := metav1.NewTime(now.Add(4 * time.Second))
	start := metav1.NewTime(now.Add(-time.Hour))
	azn := func(a string) crmv1.Money { return crmv1.Money{Amount: a, Currency: "AZN"} }
	putCampaign(t, js, "slots-race", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		// Like the sample: the first slots bet joins the race, and counts in it.
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "bet.settled", Condition: `event.data.gameCategory == "slots"`}},
		Steps:   []crmv1.Step{{Name: "join", Grant: &crmv1.GrantStep{Reward: "race"}}},
		Rewards: []crmv1.Reward{{Name: "race", Tournament: &crmv1.TournamentReward{Metric: "wager", Window: crmv1.TimeWindow{Start: &start, End: &end},
			MinBet: ptrTo(azn("1.00")), GameCategories: []string{"slots"},
			Prizes: []crmv1.Prize{{FromRank: 1, ToRank: 1, Amount: azn("100.00")}, {FromRank: 2, ToRank: 3, Amount: azn("20.00")}}}}}})
	stacks := make([]*stack, 2)
	for part, replica := range []string{"a", "b"} {
		s := newStack(t, srv, replica, &fakeClock{})
		s.owner.TournamentGrace = 200 * time.Millisecond
		s.runner.TickEvery = 50 * time.Millisecond
		cb := s.runner.Callbacks()
		cb.Acquired(context.Background(), part, 1)
		t.Cleanup(func() { cb.Released(part) })
		stacks[part] = s
	}
	// Two players in each partition.
	var ids []string
	for i := 0; len(ids) < 4; i++ {
		id := fmt.Sprintf("p-t%d", i)
		if n := len(ids); bus.Partition(id, 2) == n%2 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		register(t, js, id, "Asia/Baku", now, nil)
	}
	bet := func(id, round, amount, category string) {
		publishEvent(t, js, id, "bet.settled", round, time.Now(), map[string]any{"amount": amount, "win": "0.00", "currency": "AZN",
			"game": "g", "gameCategory": category, "roundId": round})
	}
	for _, id := range ids {
		waitPlayer(t, stacks[bus.Partition(id, 2)], id)
	}
	bet(ids[0], "r1", "30.00", "slots")
	bet(ids[1], "r2", "50.00", "slots")
	bet(ids[2], "r3", "40.00", "slots")
	bet(ids[3], "r4", "10.00", "slots")
	bet(ids[3], "r5", "0.50", "slots")  // below the minimum bet
	bet(ids[0], "r6", "99.00", "live")  // not a slots bet
	bet(ids[3], "r7", "35.00", "slots") // 45.00 in all

	mux := http.NewServeMux()
	(&api.Leaderboards{Stats: bustest.KV(t, js, bus.BucketStats), Catalog: stacks[0].owner.Catalog, Partitions: 2,
		Keys: ingest.StaticKeys{"baku": {Bearer: []string{"platform"}}}}).Register(mux, &api.Preferences{Log: quiet})
	web := httptest.NewServer(mux)
	defer web.Close()
	standing := func(query string) api.Standing {
		req, _ := http.NewRequest("GET", web.URL+"/v1/brands/baku/campaigns/slots-race/leaderboard"+query, nil)
		req.Header.Set("Authorization", "Bearer platform")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var st api.Standing
		if resp.StatusCode != 200 || json.Unmarshal(raw, &st) != nil {
			t.Fatalf("leaderboard: %d %s", resp.StatusCode, raw)
		}
		return st
	}
	want := []api.Place{{Rank: 1, Player: ids[1], Score: 5000}, {Rank: 2, Player: ids[3], Score: 4500}, {Rank: 3, Player: ids[2], Score: 4000}, {Rank: 4, Player: ids[0], Score: 3000}}
	bustest.Eventually(t, 5*time.Second, "the merged leaderboard", func() bool {
		st := standing("?top=4&player=" + ids[2])
		return fmt.Sprint(st.Top) == fmt.Sprint(want) && st.Player != nil && st.Player.Rank == 3 && !st.Final && st.Participants == 4
	})

	joins := 0
	for _, o := range bustest.Collect[bus.Outcome](t, js, bus.StreamOutcomes, bus.OutcomeSubject("baku", bus.Partition(ids[3], 2), ids[3])) {
		if o.Reason == "TournamentJoined" {
			joins++
		}
	}
	if joins != 1 {
		t.Fatalf("%s joined %d times for three slots bets", ids[3], joins)
	}

	// After the end: closed, prizes granted once each by the owner of the player.
	bustest.Eventually(t, 15*time.Second, "three prizes", func() bool { return len(grantsOf(t, stacks[0])) == 3 })
	time.Sleep(300 * time.Millisecond) // more ticks change nothing
	grants := grantsOf(t, stacks[0])
	got := map[string]int64{}
	for _, g := range grants {
		got[g.Player] = g.Value.Minor
	}
	if len(grants) != 3 || got[ids[1]] != 10000 || got[ids[3]] != 2000 || got[ids[2]] != 2000 {
		t.Fatalf("prizes %+v", grants)
	}
	if st := standing(""); !st.Final || len(st.Top) != 4 {
		t.Fatalf("final standing %+v", st)
	}
	bet(ids[0], "r8", "500.00", "slots") // too late to count
	time.Sleep(300 * time.Millisecond)
	if st := standing("?player=" + ids[0]); st.Player.Score != 3000 {
		t.Fatalf("a bet after the close scored: %+v", st.Player)
	}
}
