package export

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// TestAppendRecordIsEncodingJSON: the hand-written NDJSON line is byte for byte what
// encoding/json's Encoder writes, for records with every field empty or set and strings
// that need escaping (quotes, backslashes, HTML characters, control characters, non-ASCII,
// invalid UTF-8, U+2028).
func TestAppendRecordIsEncodingJSON(t *testing.T) {
	strs := []string{"", "a", "welcome-2026", `say "hi"`, `back\slash`, "<b>&amp;</b>", "tab\there", "nl\n", "\x00\x1f\x7f",
		"Gənclik ş ğ", "Привет", "\xff\xfe bad", "line\u2028sep", "e\u0301", "😀"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[rng.IntN(len(strs))] }
	times := []time.Time{time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 9, 0, 0, 123_456_789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100_000_000, time.UTC), {}}
	var enc bytes.Buffer
	je := json.NewEncoder(&enc)
	for i := range 5000 {
		r := Record{ID: pick(), Schema: int32(rng.IntN(3)), Brand: pick(), Time: times[rng.IntN(len(times))], Player: pick(),
			DecisionID: pick(), Campaign: pick(), Step: pick(), Kind: pick(), Category: pick(), Result: pick(), Reason: pick(),
			Channel: pick(), Provider: pick(), Locale: pick(), Attempt: int32(rng.IntN(3) - 1), CostMicros: int64(rng.IntN(3)-1) * 1_000_003,
			Currency: pick(), Test: rng.IntN(2) == 0, Variant: pick()}
		enc.Reset()
		if err := je.Encode(&r); err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, enc.Bytes()) {
			t.Fatalf("record %d:\nhand %s\njson %s", i, got, enc.Bytes())
		}
	}
}

// TestOutcomeDecodedAsV1: the exporter's encoding/json/v2 decoder reads an OUTCOMES record
// (bus.Encode's, i.e. encoding/json's) exactly as bus.Decode does, every field set or not.
func TestOutcomeDecodedAsV1(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 123_000_000, time.FixedZone("", 4*3600))
	for i, o := range []bus.Outcome{
		{},
		{Time: at, DecisionID: "d", Brand: "baku", Player: "p-1", Kind: bus.OutcomeDecision, Result: "suppress", Reason: "quiet-hours"},
		{Time: at, DecisionID: "d2", Brand: "baku", Player: "p-2", Campaign: "welcome", Step: "hello", Kind: bus.OutcomeAttempt,
			Category: "marketing", Result: "sent", Reason: `a "quoted" <reason> & more`, Detail: "Gənclik ş ğ Привет \xff",
			RouteStep: 7, Fallbacks: []crmv1.Channel{crmv1.ChannelSMS, crmv1.ChannelEmail}, IntentID: "i", Channel: crmv1.ChannelPush,
			Provider: "fcm", TemplateID: "t", Locale: "az", ContentHash: "h", Cost: &bus.MinorAmount{Minor: 5, Currency: "AZN"},
			SendAt: at.Add(time.Hour), Attempt: 2, ProviderCost: &bus.MicroAmount{Micros: 1, Currency: "USD"}, ProviderID: "x", Test: true},
	} {
		raw, err := bus.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		want, err := bus.Decode[bus.Outcome](raw)
		if err != nil {
			t.Fatal(err)
		}
		var got bus.Outcome
		if err := jsonv2.Unmarshal(raw, &got); err != nil {
			t.Fatalf("outcome %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) || !got.Time.Equal(want.Time) {
			t.Fatalf("outcome %d:\nv2 %+v\nv1 %+v", i, got, want)
		}
	}
}

// FuzzAppendRecord: for any strings and numbers, the hand-written line is encoding/json's.
func FuzzAppendRecord(f *testing.F) {
	f.Add("o-1", "baku", "welcome", "sent", "quiet <hours> & \"more\"", "az", int32(1), int64(20_000), int64(0), true)
	f.Add("", "", "\xff", "\u2028", "\x00\t\n", "Привет ə", int32(-1), int64(-5), int64(1_765_000_000_123_456_789), false)
	f.Fuzz(func(t *testing.T, id, brand, campaign, result, reason, locale string, attempt int32, cost, nanos int64, test bool) {
		r := Record{ID: id, Schema: SchemaVersion, Brand: brand, Time: time.Unix(0, nanos).UTC(), Player: id + brand, DecisionID: reason,
			Campaign: campaign, Step: locale, Kind: result, Category: campaign, Result: result, Reason: reason, Channel: locale,
			Provider: brand, Locale: locale, Attempt: attempt, CostMicros: cost, Currency: campaign, Test: test, Variant: reason}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&r); err != nil {
			t.Skip() // a time encoding/json refuses (a year past 9999) is never a record's
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("\nhand %s\njson %s", got, want.Bytes())
		}
	})
}
