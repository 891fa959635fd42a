package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

func envelope(typ, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"e-1","source":"pam.baku","type":%q,"subject":"p-1","time":"2026-11-22T21:03:11Z","data":%s}`, typ, data)
}

// valid has one valid event of every type EVENTS.md names.
var valid = map[string]string{
	"player.registered":      `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"a@b.az","phone":"+994501234567","birthDate":"1990-01-02","attrs":{"vip":true}}`,
	"player.profile.updated": `{"kycStatus":"passed","vipLevel":2,"pushTokens":[{"platform":"android","token":"t"}],"webPushSubscription":{"endpoint":"https://push.example/1","keys":{"p256dh":"k","auth":"a"}},"viberId":"v1"}`,
	"deposit.completed":      `{"amount":"50.00","currency":"AZN","method":"card","depositId":"d1","first":true}`,
	"deposit.failed":         `{"amount":"50.00","currency":"AZN","method":"card","reason":"declined"}`,
	"withdrawal.completed":   `{"amount":"10","currency":"AZN","withdrawalId":"w1"}`,
	"kyc.passed":             `{}`,
	"kyc.failed":             `{"reason":"blurry","documentType":"passport"}`,
	"bet.placed":             `{"amount":"1.00","currency":"AZN","game":"book-of-ra","gameCategory":"slots","roundId":"r1"}`,
	"bet.settled":            `{"amount":"1.00","win":"0","currency":"AZN","game":"book-of-ra","gameCategory":"slots","roundId":"r1"}`,
	"session.started":        `{"device":"ios"}`,
	"session.ended":          `{"durationSeconds":600}`,
	"bonus.activated":        `{"bonusId":"b1","campaign":"welcome","value":"10.00","currency":"AZN"}`,
	"limit.approaching":      `{"limitType":"deposit","limit":"500.00","used":"450.00","period":"week"}`,
	"limit.exceeded":         `{"limitType":"time","limit":3600,"used":3700,"period":"day","blocked":true}`,
	"selfexclusion.started":  `{"scope":"national"}`,
	"coolingoff.started":     `{"until":"2026-12-01T00:00:00Z"}`,
	"survey.answered":        `{"surveyId":"nps","answers":{"score":9}}`,
	"tournament.joined":      `{"anything":[1,2,3]}`,
}

// reports are the events Croupier's channel workers publish (source "croupier").
var reports = map[string]string{
	"delivery.failed": `{"decisionId":"d-1","channel":"push","reason":"provider refused"}`,
	"email.bounced":   `{"kind":"hard"}`,
	"cost.settled":    `{"decisionId":"d-1","amount":"0.002","currency":"AZN"}`,
}

func report(typ, data string) string {
	return strings.Replace(envelope(typ, data), `"source":"pam.baku"`, `"source":"croupier"`, 1)
}

func TestDecodeEveryType(t *testing.T) {
	for typ, data := range valid {
		if _, err := ingest.Decode("baku", "", "", []byte(envelope(typ, data))); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	for typ, data := range reports {
		if _, err := ingest.Decode("baku", "", "", []byte(envelope(typ, data))); err == nil {
			t.Errorf("%s from the casino's platform accepted", typ)
		}
		if _, err := ingest.Decode("baku", "", "", []byte(report(typ, data))); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	ev, err := ingest.Decode("baku", "", "", []byte(report("cost.settled", reports["cost.settled"])))
	if err != nil || ev.CostMicros != 2000 {
		t.Errorf("cost.settled of 0.002 AZN: %d micros, %v", ev.CostMicros, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct{ name, raw, field string }{
		{"spec version", strings.Replace(envelope("kyc.passed", "{}"), `"1.0"`, `"0.3"`, 1), "specversion"},
		{"no id", strings.Replace(envelope("kyc.passed", "{}"), `"id":"e-1",`, "", 1), "id"},
		{"no source", strings.Replace(envelope("kyc.passed", "{}"), `"source":"pam.baku",`, "", 1), "source"},
		{"bad type", envelope("Deposit Completed", "{}"), "type"},
		{"no subject", strings.Replace(envelope("kyc.passed", "{}"), `"subject":"p-1",`, "", 1), "subject"},
		{"bad time", strings.Replace(envelope("kyc.passed", "{}"), `2026-11-22T21:03:11Z`, `yesterday`, 1), "time"},
		{"time far ahead", strings.Replace(envelope("kyc.passed", "{}"), `2026-11-22T21:03:11Z`, `9999-12-31T00:00:00Z`, 1), "time"},
		{"time before 2000", strings.Replace(envelope("kyc.passed", "{}"), `2026-11-22T21:03:11Z`, `1999-12-31T23:59:59Z`, 1), "time"},
		{"explicit zero time", strings.Replace(envelope("kyc.passed", "{}"), `2026-11-22T21:03:11Z`, `0001-01-01T00:00:00Z`, 1), "time"},
		{"data nested 65 deep", envelope("survey.answered", `{"surveyId":"s","answers":{"a":`+strings.Repeat("[", 63)+strings.Repeat("]", 63)+`}}`), "data"},
		{"data nested 5,000 deep", envelope("survey.answered", `{"surveyId":"s","answers":{"a":`+strings.Repeat("[", 4998)+strings.Repeat("]", 4998)+`}}`), "data"},
		{"registered without country", envelope("player.registered", `{"language":"az","timeZone":"Asia/Baku","currency":"AZN"}`), "data.country"},
		{"bad country", envelope("player.registered", `{"country":"Azerbaijan","language":"az","timeZone":"Asia/Baku","currency":"AZN"}`), "data.country"},
		{"bad zone", envelope("player.registered", `{"country":"AZ","language":"az","timeZone":"Mars/Olympus","currency":"AZN"}`), "data.timeZone"},
		{"bad email", envelope("player.profile.updated", `{"email":"nobody"}`), "data.email"},
		{"bad phone", envelope("player.profile.updated", `{"phone":"0501234567"}`), "data.phone"},
		{"bad kyc", envelope("player.profile.updated", `{"kycStatus":"maybe"}`), "data.kycStatus"},
		{"bad push platform", envelope("player.profile.updated", `{"pushTokens":[{"platform":"nokia","token":"t"}]}`), "data.pushTokens[0].platform"},
		{"web push without keys", envelope("player.profile.updated", `{"webPushSubscription":{"endpoint":"https://x"}}`), "data.webPushSubscription"},
		{"nested attr", envelope("player.profile.updated", `{"attrs":{"a":{"b":1}}}`), "data.attrs.a"},
		{"cost with 7 decimals", report("cost.settled", `{"decisionId":"d","amount":"0.0000001","currency":"AZN"}`), "data.amount"},
		{"bounce kind", report("email.bounced", `{"kind":"maybe"}`), "data.kind"},
		{"amount as number", envelope("deposit.completed", `{"amount":50,"currency":"AZN","method":"card","depositId":"d"}`), "data.amount"},
		{"amount with 3 decimals", envelope("deposit.completed", `{"amount":"1.005","currency":"AZN","method":"card","depositId":"d"}`), "data.amount"},
		{"negative amount", envelope("deposit.completed", `{"amount":"-1.00","currency":"AZN","method":"card","depositId":"d"}`), "data.amount"},
		{"no currency", envelope("deposit.completed", `{"amount":"1.00","method":"card","depositId":"d"}`), "data.currency"},
		{"no deposit id", envelope("deposit.completed", `{"amount":"1.00","currency":"AZN","method":"card"}`), "data.depositId"},
		{"failed without reason", envelope("deposit.failed", `{"amount":"1.00","currency":"AZN","method":"card"}`), "data.reason"},
		{"bet without game", envelope("bet.placed", `{"amount":"1.00","currency":"AZN","gameCategory":"slots","roundId":"r"}`), "data.game"},
		{"settled without win", envelope("bet.settled", `{"amount":"1.00","currency":"AZN","game":"g","gameCategory":"slots","roundId":"r"}`), "data.win"},
		{"bad limit type", envelope("limit.exceeded", `{"limitType":"fun","limit":1,"used":2,"period":"day"}`), "data.limitType"},
		{"limit without used", envelope("limit.approaching", `{"limitType":"loss","limit":"1.00","period":"day"}`), "data.used"},
		{"bad period", envelope("limit.approaching", `{"limitType":"loss","limit":"1.00","used":"1","period":"year"}`), "data.period"},
		{"cooling off without until", envelope("coolingoff.started", `{}`), "data.until"},
		{"bad scope", envelope("selfexclusion.started", `{"scope":"galaxy"}`), "data.scope"},
		{"survey without answers", envelope("survey.answered", `{"surveyId":"s"}`), "data.answers"},
		{"data not object", envelope("deposit.completed", `[1]`), "data"},
		{"no data", strings.Replace(envelope("deposit.completed", "{}"), `,"data":{}`, "", 1), "data"},
		{"wrong JSON type", envelope("player.profile.updated", `{"vipLevel":"gold"}`), "data.vipLevel"},
		{"internal type from outside", envelope("player.inactive", `{"days":7}`), "type"},
		{"trailing data", envelope("kyc.passed", "{}") + "{}", "event"},
		{"too large", envelope("survey.answered", `{"surveyId":"s","answers":{"a":"`+strings.Repeat("x", ingest.MaxEventBytes)+`"}}`), "event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ingest.Decode("baku", "", "", []byte(c.raw))
			fe, ok := err.(*ingest.Error)
			if !ok {
				t.Fatalf("error %v (%T), want *ingest.Error on %s", err, err, c.field)
			}
			if fe.Field != c.field || fe.Reason == "" {
				t.Errorf("field %q reason %q, want field %q", fe.Field, fe.Reason, c.field)
			}
		})
	}
	// 64 levels are taken (brackets inside strings do not count), and a missing time means now.
	deep := envelope("survey.answered", `{"surveyId":"s","answers":{"a":`+strings.Repeat("[", 62)+`"[[[{{{"`+strings.Repeat("]", 62)+`}}`)
	if _, err := ingest.Decode("baku", "", "", []byte(deep)); err != nil {
		t.Errorf("data nested 64 deep: %v", err)
	}
	if _, err := ingest.Decode("baku", "", "", []byte(strings.Replace(envelope("kyc.passed", "{}"), `"time":"2026-11-22T21:03:11Z",`, "", 1))); err != nil {
		t.Errorf("no time: %v", err)
	}
	// The NATS subject's player and type must agree with the envelope.
	if _, err := ingest.Decode("baku", "p-2", "", []byte(envelope("kyc.passed", "{}"))); err == nil || !strings.Contains(err.Error(), "subject") {
		t.Errorf("player mismatch: %v", err)
	}
	if _, err := ingest.Decode("baku", "p-1", "kyc.failed", []byte(envelope("kyc.passed", "{}"))); err == nil || !strings.Contains(err.Error(), "type") {
		t.Errorf("type mismatch: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for typ, data := range valid {
		f.Add("baku", "p-1", typ, []byte(envelope(typ, data)))
	}
	f.Add("baku", "", "", []byte(`{"specversion":"1.0"}`))
	f.Add("b", "p", "x.y", []byte(`[]`))
	f.Add("baku", "p-1", "deposit.completed", []byte(envelope("deposit.completed", `{"amount":"9999999999999999999","currency":"AZN","method":"m","depositId":"d"}`)))
	f.Fuzz(func(t *testing.T, brand, player, typ string, raw []byte) {
		ev, err := ingest.Decode(brand, player, typ, raw)
		if err != nil {
			if _, ok := err.(*ingest.Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !bus.ValidToken(ev.Brand) || !bus.ValidToken(ev.Player) || !bus.ValidEventType(ev.Type) {
			t.Fatalf("accepted an event that cannot be addressed: %q %q %q", ev.Brand, ev.Player, ev.Type)
		}
		if ev.AmountMinor < 0 || ev.WinMinor < 0 {
			t.Fatalf("negative amount accepted")
		}
	})
}

// FuzzVerifySignature: a header never panics the check, and a signature made with the
// key over the body always verifies.
func FuzzVerifySignature(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Add("t=1795348800,v1=00", []byte(`{}`))
	f.Add("", []byte(``))
	f.Add("v1=,t=,v1=zz", []byte(`x`))
	f.Add(ingest.SignatureFor([]byte("k"), now, []byte(`{"a":1}`)), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		_, _ = ingest.VerifySignature(header, body, [][]byte{[]byte("k")}, now)
		good := ingest.SignatureFor([]byte("k"), now, body)
		if _, err := ingest.VerifySignature(good, body, [][]byte{[]byte("other"), []byte("k")}, now); err != nil {
			t.Fatalf("a good signature refused: %v", err)
		}
	})
}

func TestDecodeRefusesInvalidUTF8(t *testing.T) {
	raw := []byte(`{"specversion":"1.0","id":"e1","source":"pam","type":"player.registered","subject":"p-1","time":"2026-11-22T10:00:00Z","data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","attrs":{"n":"` + "\xff\xfe" + `"}}}`)
	if _, err := ingest.Decode("baku", "", "", raw); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("invalid UTF-8: %v", err)
	}
}
