package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

var bakuKey = []byte("baku-export-key-0123456789abcdef")

// lastNDJSON are the record ids the last exported() found in NDJSON files.
var lastNDJSON map[string]bool

func keys(brand string) []byte {
	if brand == "baku" {
		return bakuKey
	}
	return nil // lasvegas has no key: nothing of it leaves
}

// row is a record as arrow-go's Parquet reader (not the writer's library) reads it.
type row struct {
	ID, Player, Kind, Result, Channel, Variant string
	Time                                       time.Time
	Cost                                       int64
}

func readParquet(t *testing.T, path string) []row {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parquetRows(t, path, b)
}

func parquetRows(t *testing.T, path string, b []byte) []row {
	t.Helper()
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
		chunks := tbl.Column(idx[0]).Data().Chunks()
		if len(chunks) != 1 {
			t.Fatalf("%s: %d chunks", path, len(chunks))
		}
		return chunks[0]
	}
	str := func(name string, i int) string {
		switch a := col(name).(type) {
		case *array.String:
			return a.Value(i)
		case *array.Binary:
			return string(a.Value(i))
		default:
			t.Fatalf("%s is %T", name, a)
			return ""
		}
	}
	out := make([]row, tbl.NumRows())
	for i := range out {
		out[i] = row{ID: str("id", i), Player: str("player", i), Kind: str("kind", i), Result: str("result", i), Channel: str("channel", i), Variant: str("variant", i),
			Time: col("time").(*array.Timestamp).Value(i).ToTime(arrow.Millisecond).UTC(), Cost: col("cost_micros").(*array.Int64).Value(i)}
	}
	return out
}

// exported reads every Parquet and NDJSON file of the export: records by id (checking
// that a record written twice is the same record), and the erasure lists in order.
func exported(t *testing.T, dir string) (map[string]row, int, []Erasure, []string) {
	t.Helper()
	byID := map[string]row{}
	copies := 0
	var erasures []Erasure
	var files []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	ndjsonIDs := map[string]bool{}
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, ".parquet"):
			for _, r := range readParquet(t, f) {
				copies++
				if old, ok := byID[r.ID]; ok && old != r {
					t.Fatalf("record %s written twice, differently: %+v and %+v", r.ID, old, r)
				}
				byID[r.ID] = r
			}
		case strings.Contains(filepath.Base(f), "outcomes-") && strings.HasSuffix(f, ".ndjson"):
			b, _ := os.ReadFile(f)
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				var r Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Schema != SchemaVersion {
					t.Fatalf("%s: %q: %v", f, sc.Text(), err)
				}
				ndjsonIDs[r.ID] = true
			}
		case strings.Contains(filepath.Base(f), "erasures-"):
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var e Erasure
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatal(err)
				}
				erasures = append(erasures, e)
			}
		case strings.HasPrefix(filepath.Base(f), "."):
			// a temporary file of a crashed write: never read
		default:
			t.Fatalf("unexpected file %s", f)
		}
	}
	lastNDJSON = ndjsonIDs
	return byID, copies, erasures, files
}

// TestExportAtLeastOncePseudonymisedWithErasures: outcomes of two brands (one without a
// key, which never leaves), the exporter crashing after the first file of a batch: after a
// restart every record of the keyed brand is in Parquet (read with arrow-go) and NDJSON,
// records written twice have the same id and content, no player id leaves in clear, the
// partition follows brand and date; an erased player's pseudonym is in the next batch's
// erasure list and in no record after it, also after another restart.
func TestExportAtLeastOncePseudonymisedWithErasures(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	day1 := time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC)
	day2 := day1.Add(time.Hour)
	publish := func(brand, player string, at time.Time, n int) {
		t.Helper()
		o := bus.Outcome{Time: at, DecisionID: route.DecisionID(fmt.Sprintf("%s/%d", player, n)), Brand: brand, Player: player, Campaign: "welcome",
			Kind: bus.OutcomeAttempt, Result: "sent", Channel: crmv1.ChannelSMS, Provider: "smsrest", Attempt: 1,
			ProviderCost: &bus.MicroAmount{Micros: 20_000 + int64(n), Currency: "AZN"}}
		b, _ := bus.Encode(o)
		if _, err := js.Publish(ctx, bus.OutcomeSubject(brand, 0, player), b); err != nil {
			t.Fatal(err)
		}
	}
	want := 0
	for i := range 30 {
		at := day1
		if i%2 == 1 {
			at = day2
		}
		publish("baku", fmt.Sprintf("p-%d", i%5), at, i)
		want++
		publish("lasvegas", fmt.Sprintf("v-%d", i%3), at, i)
	}
	// One conversion: its arm is the record's variant.
	conv, _ := bus.Encode(bus.Outcome{Time: day2, DecisionID: route.DecisionID("p-0/conv"), Brand: "baku", Player: "p-0", Campaign: "welcome",
		Kind: bus.OutcomeConversion, Result: "converted", Reason: "deposit.completed", Channel: crmv1.ChannelSMS, Detail: "b"})
	if _, err := js.Publish(ctx, bus.OutcomeSubject("baku", 0, "p-0"), conv); err != nil {
		t.Fatal(err)
	}
	want++
	dir := t.TempDir()
	run := func(e *Exporter) (context.CancelFunc, chan error) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(c) }()
		return cancel, done
	}
	// The first exporter crashes after the first file of its first batch.
	crash := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 40, Wait: 200 * time.Millisecond, AckWait: time.Second, crashAfter: 1}
	_, done := run(crash)
	if err := <-done; !errors.Is(err, errCrash) {
		t.Fatalf("the crashing exporter: %v", err)
	}
	crashed, _, _, _ := exported(t, dir)
	if len(crashed) == 0 || len(crashed) == want {
		t.Fatalf("the crashed batch wrote %d records before crashing, want some of %d", len(crashed), want)
	}
	e := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 40, Wait: 200 * time.Millisecond, AckWait: time.Second}
	cancel, done := run(e)
	var byID map[string]row
	var copies int
	// Every record, in Parquet and in NDJSON (a batch writes one file after the other: the
	// NDJSON of the last one may still be coming when its Parquet is there).
	bustest.Eventually(t, 30*time.Second, "every record of baku exported", func() bool {
		byID, copies, _, _ = exported(t, dir)
		return len(byID) == want && len(lastNDJSON) == want
	})
	// The crashed batch's records are there, written again (same ids, same content: checked
	// by exported) in the same or another batch file.
	for id, r := range crashed {
		if byID[id] != r {
			t.Fatalf("the crashed batch's record %s is not what was exported after: %+v %+v", id, r, byID[id])
		}
	}
	if copies < want {
		t.Fatalf("%d copies of %d records", copies, want)
	}
	// NDJSON holds the same records as Parquet (a crash may have left a batch's Parquet
	// without its NDJSON: the batch written again has both).
	for id := range byID {
		if !lastNDJSON[id] {
			t.Fatalf("record %s is in Parquet, not in NDJSON", id)
		}
	}
	if len(lastNDJSON) != len(byID) {
		t.Fatalf("%d records in NDJSON, %d in Parquet", len(lastNDJSON), len(byID))
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for id, r := range byID {
		if !hexID.MatchString(r.Player) {
			t.Fatalf("%s: player %q is not a pseudonym", id, r.Player)
		}
		if r.Kind == bus.OutcomeConversion {
			if r.Result != "converted" || r.Variant != "b" || r.Channel != "sms" || r.Player != Pseudonym(bakuKey, "p-0") {
				t.Fatalf("the conversion %s: %+v", id, r)
			}
			continue
		}
		if r.Kind != bus.OutcomeAttempt || r.Result != "sent" || r.Channel != "sms" || r.Cost < 20_000 || r.Variant != "" {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	pseudo := map[string]bool{}
	for i := range 5 {
		pseudo[Pseudonym(bakuKey, fmt.Sprintf("p-%d", i))] = true
	}
	for _, r := range byID {
		if !pseudo[r.Player] {
			t.Fatalf("a player pseudonym that is none of baku's players: %s", r.Player)
		}
	}
	_, _, _, files := exported(t, dir)
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		if !strings.HasPrefix(rel, "brand=baku/date=2026-12-06/") && !strings.HasPrefix(rel, "brand=baku/date=2026-12-07/") {
			t.Fatalf("a file outside baku's dated partitions: %s", rel)
		}
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("p-1")) || bytes.Contains(b, []byte("v-1")) {
			t.Fatalf("%s holds a player id in clear", rel)
		}
	}

	// p-2 is erased; then more of p-2's and p-3's outcomes arrive.
	erase := func(player string) {
		a := bus.AuditEntry{Time: time.Now().UTC(), Brand: "baku", Kind: bus.KindPlayer, Name: player, Action: ActionErased}
		b, _ := bus.Encode(a)
		if _, err := js.Publish(ctx, bus.AuditSubject("baku", bus.KindPlayer, player), b); err != nil {
			t.Fatal(err)
		}
	}
	erase("p-2")
	p2 := Pseudonym(bakuKey, "p-2")
	bustest.Eventually(t, 30*time.Second, "p-2 in an erasure list", func() bool {
		_, _, er, _ := exported(t, dir)
		return len(er) == 1 && er[0].Player == p2 && er[0].Brand == "baku"
	})
	before := len(byID)
	publish("baku", "p-2", day2, 100)
	publish("baku", "p-3", day2, 101)
	bustest.Eventually(t, 30*time.Second, "p-3's new record", func() bool {
		byID, _, _, _ = exported(t, dir)
		return len(byID) == before+1
	})
	cancel()
	<-done
	// After a restart the erasure still holds.
	publish("baku", "p-2", day2, 102)
	publish("baku", "p-4", day2, 103)
	e2 := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 40, Wait: 200 * time.Millisecond, AckWait: time.Second}
	cancel, done = run(e2)
	defer func() { cancel(); <-done }()
	bustest.Eventually(t, 30*time.Second, "p-4's new record", func() bool {
		byID, _, _, _ = exported(t, dir)
		return len(byID) == before+2
	})
	var p2After int
	for _, r := range byID {
		if r.Player == p2 && r.Cost >= 20_100 {
			p2After++
		}
	}
	if p2After != 0 {
		t.Fatalf("%d records of the erased p-2 exported after its erasure", p2After)
	}
	_ = jetstream.ErrNoMessages
}

// TestExportRewards: the bonuses granted go out as their own table: what and how much,
// for which pseudonym; the grant id (which names the player) and a coupon's code do not.
func TestExportRewards(t *testing.T) {
	srv := bustest.Start(t, 1)
	_, js := srv.Connect(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, g := range []bus.RewardGrant{
		{Brand: "baku", Player: "p-7", Campaign: "welcome", Step: "bonus", Value: bus.MinorAmount{Minor: 1000, Currency: "AZN"},
			Reward: crmv1.Reward{Name: "spins", FreeSpins: &crmv1.FreeSpinsReward{Game: "book-of-ra", Count: 50}}, Granted: at},
		{Brand: "baku", Player: "p-8", Campaign: "reload", Step: "code", Value: bus.MinorAmount{Minor: 500, Currency: "AZN"}, Coupon: "SECRETCODE1",
			Reward: crmv1.Reward{Name: "code", Coupon: &crmv1.CouponReward{}}, Granted: at, Basis: "deposit 50.00 AZN"},
	} {
		g.ID = bus.RewardGrantID(g.Campaign, g.Step, g.Player, fmt.Sprint(i))
		b, _ := bus.Encode(g)
		if _, err := js.Publish(ctx, bus.RewardSubject(g.Brand, g.Player), b); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	e := &Exporter{JS: js, Sink: Dir(dir), Key: keys, Batch: 10, Wait: 100 * time.Millisecond}
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(c) }()
	defer func() { cancel(); <-done }()
	var files []string
	bustest.Eventually(t, 20*time.Second, "the rewards table", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "brand=baku", "date=2026-12-07", "rewards-*"))
		return len(files) == 2
	})
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, clear := range []string{"p-7", "p-8", "SECRETCODE1"} {
			if bytes.Contains(b, []byte(clear)) {
				t.Fatalf("%s holds %q", f, clear)
			}
		}
		if !strings.HasSuffix(f, ".parquet") {
			continue
		}
		tbl, err := pqarrow.ReadTable(ctx, bytes.NewReader(b), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		kinds := tbl.Column(tbl.Schema().FieldIndices("kind")[0]).Data().Chunks()[0].(*array.String)
		values := tbl.Column(tbl.Schema().FieldIndices("value_minor")[0]).Data().Chunks()[0].(*array.Int64)
		if tbl.NumRows() != 2 || kinds.Value(0) != "freeSpins" || values.Value(0) != 1000 || kinds.Value(1) != "coupon" || values.Value(1) != 500 {
			t.Fatalf("rewards read back: %d rows, %v %v", tbl.NumRows(), kinds, values)
		}
		tbl.Release()
	}
}
