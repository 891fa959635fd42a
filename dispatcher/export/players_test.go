package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// metricsRow is a players-table row as arrow-go's Parquet reader reads it.
type metricsRow struct {
	ID, Player, Country, Currency                        string
	Deposits, Withdrawals, Stakes, Wins, NGR, Dep7, NGR7 int64
	DepositCount                                         int64
	VIP                                                  int32
	Time, LastDeposit                                    time.Time
	lastDepositNull                                      bool
}

func readPlayers(t *testing.T, path string) []metricsRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(b), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("arrow-go reading %s: %v", path, err)
	}
	defer tbl.Release()
	col := func(name string) arrow.Array {
		idx := tbl.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("%s: no column %s in %s", path, name, tbl.Schema())
		}
		return tbl.Column(idx[0]).Data().Chunks()[0]
	}
	for _, absent := range []string{"email", "phone", "id_clear", "attrs", "birth_date"} {
		if len(tbl.Schema().FieldIndices(absent)) != 0 {
			t.Fatalf("%s has a column %s", path, absent)
		}
	}
	str := func(name string, i int) string { return col(name).(*array.String).Value(i) }
	i64 := func(name string, i int) int64 { return col(name).(*array.Int64).Value(i) }
	out := make([]metricsRow, tbl.NumRows())
	for i := range out {
		ld := col("last_deposit").(*array.Timestamp)
		out[i] = metricsRow{ID: str("id", i), Player: str("player", i), Country: str("country", i), Currency: str("currency", i),
			Deposits: i64("deposits_minor", i), Withdrawals: i64("withdrawals_minor", i), Stakes: i64("stakes_minor", i),
			Wins: i64("wins_minor", i), NGR: i64("ngr_minor", i), Dep7: i64("deposits_7d_minor", i), NGR7: i64("ngr_7d_minor", i),
			DepositCount: i64("deposit_count", i), VIP: col("vip_level").(*array.Int32).Value(i),
			Time:        col("time").(*array.Timestamp).Value(i).ToTime(arrow.Millisecond).UTC(),
			LastDeposit: ld.Value(i).ToTime(arrow.Millisecond).UTC(), lastDepositNull: ld.IsNull(i)}
	}
	return out
}

// playersExported reads every players-* Parquet file under dir: the rows by id, each
// checked against its NDJSON twin, and how many rows there were in all.
func playersExported(t *testing.T, dir string) (map[string]metricsRow, int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "brand=*", "date=*", "players-*.parquet"))
	sort.Strings(files)
	byID := map[string]metricsRow{}
	n := 0
	for _, f := range files {
		for _, r := range readPlayers(t, f) {
			n++
			if old, ok := byID[r.ID]; ok && old != r {
				t.Fatalf("row %s written twice, differently: %+v %+v", r.ID, old, r)
			}
			byID[r.ID] = r
		}
		nd, err := os.ReadFile(strings.TrimSuffix(f, ".parquet") + ".ndjson")
		if errors.Is(err, os.ErrNotExist) {
			continue // a crash between the two files: the batch is written again
		}
		for _, l := range strings.Split(strings.TrimSpace(string(nd)), "\n") {
			var m PlayerMetrics
			if err := json.Unmarshal([]byte(l), &m); err != nil || m.Schema != SchemaVersion {
				t.Fatalf("%s: %q: %v", f, l, err)
			}
			if r, ok := byID[m.ID]; !ok || r.Deposits != m.DepositsMinor || r.NGR != m.NGRMinor || r.Player != m.Player {
				t.Fatalf("NDJSON %+v differs from Parquet %+v", m, r)
			}
		}
	}
	return byID, n
}

// TestExportPlayersMetrics: the players' revenue metrics leave as their own table of
// snapshots: a player changed several times between two exports is one row, at the
// latest revision; the figures are the record's (lifetime and 7-day windows, the latter
// hand-computed from the rings); the pseudonym, never the id, contact data or the sealed
// part; an unchanged player is not exported again; a brand without a key and an erased
// player's tombstone do not leave; a crash mid-export loses nothing.
func TestExportPlayersMetrics(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, bus.BucketPlayers)
	if err != nil {
		t.Fatal(err)
	}
	baku, _ := time.LoadLocation("Asia/Baku")
	dayOf := func(t time.Time) int32 {
		y, m, d := t.In(baku).Date()
		return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	// put stores p and answers the revision's stored time.
	put := func(p *players.Player) time.Time {
		t.Helper()
		b, err := players.EncodeRecord(p, true)
		if err != nil {
			t.Fatal(err)
		}
		key := bus.PlayerKey(p.Brand, 0, p.ID)
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
		// The sealed part beside it (here readable bytes, to see they never leave).
		if _, err := kv.Put(ctx, key+".contact", []byte("sealed:"+p.Email)); err != nil {
			t.Fatal(err)
		}
		en, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return en.Created()
	}
	// p-1 deposited 2 local days ago for the last time; its deposits ring holds the 7 days
	// up to then (100, 200, ... 700 minor units, the oldest first) and its result ring 14.
	player := func(id string, deposits int64, today int32) *players.Player {
		p := &players.Player{ID: id, Brand: "baku", Country: "AZ", Currency: "AZN", TimeZone: "Asia/Baku", VIPLevel: 3,
			Email: id + "@example.com", Phone: "+994501234567", DepositCount: 4, DepositSum: deposits, WithdrawalSum: 2500,
			BetCount: 90, StakeSum: 40_000, WinSum: 31_000, LastDeposit: players.UnixOf(time.Now().Add(-48 * time.Hour)),
			DepositDay: today - 2, NetDay: today}
		for i := range int32(7) {
			d := today - 2 - 6 + i // the oldest first
			p.DepositDays[d%7] = (i + 1) * 100
		}
		for i := range int32(14) {
			d := today - 13 + i
			p.NetDays[d%14] = int64(i + 1)
		}
		return p
	}
	// Hand-computed for a revision on day today: the 7 days today-6..today hold the deposits
	// of today-6..today-2 (300+400+500+600+700) and the results of today-6..today (8..14).
	const wantDep7, wantNGR7 = 300 + 400 + 500 + 600 + 700, 8 + 9 + 10 + 11 + 12 + 13 + 14
	var at1 time.Time
	for range 3 { // written three times before the first export: one row, the last
		for {
			today := dayOf(time.Now())
			p := player("p-1", 9_000, today)
			if at1 = put(p); dayOf(at1) == today {
				break // not across midnight in Baku
			}
		}
	}
	for {
		today := dayOf(time.Now())
		p := player("p-1", 10_000, today)
		if at1 = put(p); dayOf(at1) == today {
			break
		}
	}
	put(&players.Player{ID: "p-2", Brand: "baku", Currency: "AZN", TimeZone: "Asia/Baku", DepositSum: 500, StakeSum: 100, WinSum: 400})
	put(&players.Player{ID: "p-3", Brand: "baku", Erased: true}) // a tombstone
	put(&players.Player{ID: "v-1", Brand: "lasvegas", Currency: "USD", DepositSum: 777})

	dir := t.TempDir()
	run := func(e *Exporter) (context.CancelFunc, chan error) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(c) }()
		return cancel, done
	}
	// A first exporter crashes after the first file of its first players batch (of one).
	crash := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 1, Wait: 100 * time.Millisecond, AckWait: time.Second,
		PlayersEvery: 200 * time.Millisecond, crashAfter: 1}
	if _, done := run(crash); !errors.Is(<-done, errCrash) {
		t.Fatal("the crashing exporter did not crash")
	}
	e := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 10, Wait: 100 * time.Millisecond, AckWait: time.Second,
		PlayersEvery: 200 * time.Millisecond}
	cancel, done := run(e)
	defer func() { cancel(); <-done }()
	p1, p2 := Pseudonym(bakuKey, "p-1"), Pseudonym(bakuKey, "p-2")
	var byID map[string]metricsRow
	var rows int
	bustest.Eventually(t, 30*time.Second, "p-1 and p-2 in the players table", func() bool {
		byID, rows = playersExported(t, dir)
		return len(byID) == 2
	})
	for _, r := range byID {
		switch r.Player {
		case p1:
			if r.Deposits != 10_000 || r.Withdrawals != 2500 || r.Stakes != 40_000 || r.Wins != 31_000 || r.NGR != 9_000 ||
				r.DepositCount != 4 || r.VIP != 3 || r.Country != "AZ" || r.Currency != "AZN" || r.lastDepositNull {
				t.Fatalf("p-1's row: %+v", r)
			}
			if r.Dep7 != wantDep7 || r.NGR7 != wantNGR7 {
				t.Fatalf("p-1's 7 days: deposits %d, NGR %d; want %d, %d", r.Dep7, r.NGR7, wantDep7, wantNGR7)
			}
			if !r.Time.Equal(at1.UTC().Truncate(time.Millisecond)) {
				t.Fatalf("p-1's row is as of %s, its last revision %s", r.Time, at1)
			}
		case p2:
			if r.Deposits != 500 || r.NGR != -300 || !r.lastDepositNull {
				t.Fatalf("p-2's row: %+v", r)
			}
		default:
			t.Fatalf("a row of nobody exported: %+v", r)
		}
	}
	// Nothing names a player, holds contact data or the sealed part.
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, clear := range []string{"p-1", "p-2", "p-3", "v-1", "example.com", "+994", "sealed:"} {
			if bytes.Contains(b, []byte(clear)) {
				t.Fatalf("%s holds %q", p, clear)
			}
		}
		if rel, _ := filepath.Rel(dir, p); !strings.HasPrefix(rel, "brand=baku/") {
			t.Fatalf("a file outside baku: %s", rel)
		}
		return nil
	})
	// p-2 changes; p-1 does not: the next export holds p-2's new row only.
	put(&players.Player{ID: "p-2", Brand: "baku", Currency: "AZN", TimeZone: "Asia/Baku", DepositSum: 1500, StakeSum: 100, WinSum: 400})
	bustest.Eventually(t, 30*time.Second, "p-2's new row", func() bool {
		byID, rows = playersExported(t, dir)
		return len(byID) == 3
	})
	var p1Rows, p2New int
	for _, r := range byID {
		if r.Player == p1 {
			p1Rows++
		}
		if r.Player == p2 && r.Deposits == 1500 {
			p2New++
		}
	}
	if p1Rows != 1 || p2New != 1 {
		t.Fatalf("after p-2's change: %d rows of p-1 (want 1), %d new rows of p-2 (want 1)", p1Rows, p2New)
	}
	// Several more exports pass: nothing new.
	before := rows
	info, err := js.Consumer(ctx, "KV_"+bus.BucketPlayers, ConsumerPlayers)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "the players consumer caught up", func() bool {
		ci, err := info.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	time.Sleep(3 * e.PlayersEvery)
	if _, rows = playersExported(t, dir); rows != before {
		t.Fatalf("%d rows after exports with no change, %d before", rows, before)
	}
	_ = jetstream.ErrNoMessages
}
