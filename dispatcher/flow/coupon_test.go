package flow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// A win-back flow grants a generated coupon and sends it in the message; the casino
// redeems it through the signed redeem API once (a second time is 409, someone else's
// 403, unsigned 401), and the redemption is counted for the campaign.
func TestCouponIssuedRenderedAndRedeemed(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "win-back", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed"}},
		Steps:    []crmv1.Step{{Name: "code", Grant: &crmv1.GrantStep{Reward: "comeback"}}, {Name: "tell", Send: &crmv1.SendStep{Content: "tell"}}},
		Contents: []crmv1.Content{sms("tell", "Kodunuz: {{ .Coupon }}")},
		Rewards: []crmv1.Reward{{Name: "comeback", Coupon: &crmv1.CouponReward{Pool: "comeback", Prefix: "BACK",
			Value: crmv1.Money{Amount: "10.00", Currency: "AZN"}, ValidFor: ptrTo(dur(7 * 24 * time.Hour))}}}})
	s := newStack(t, srv, "a", &fakeClock{})
	s.owner.Rewards = reward.Engine{}
	s.start(t, 1)
	register(t, s.js, "p-c1", "Asia/Baku", time.Now(), nil)
	waitPlayer(t, s, "p-c1")
	publishEvent(t, s.js, "p-c1", "kyc.passed", "kyc-1", time.Now(), map[string]any{})
	var texts []string
	bustest.Eventually(t, 10*time.Second, "the message with the code", func() bool {
		texts = smsTexts(t, s.js, "p-c1")
		return len(texts) == 1
	})
	code, ok := strings.CutPrefix(texts[0], "Kodunuz: ")
	if !ok || !strings.HasPrefix(code, "BACK") || !reward.ValidCode(code) {
		t.Fatalf("message %q", texts[0])
	}
	grants := grantsOf(t, s)
	if len(grants) != 1 || grants[0].Coupon != code || grants[0].Value.Minor != 1000 {
		t.Fatalf("grants %+v", grants)
	}

	key := []byte("brand-hmac")
	coupons := &api.Coupons{Store: &reward.Coupons{KV: bustest.KV(t, js, bus.BucketCoupons)}, Keys: ingest.StaticKeys{"baku": {HMAC: [][]byte{key}}},
		JS: js, Players: bustest.KV(t, js, bus.BucketPlayers), Catalog: s.owner.Catalog, Partitions: 1, Log: quiet}
	mux := http.NewServeMux()
	coupons.Register(mux)
	casino := httptest.NewServer(mux)
	defer casino.Close()
	redeem := func(body string, sign bool) (int, string) {
		req, _ := http.NewRequest("POST", casino.URL+"/v1/brands/baku/coupons/redeem", bytes.NewBufferString(body))
		if sign {
			req.Header.Set(ingest.SignatureHeader, ingest.SignatureFor(key, time.Now(), []byte(body)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	for _, c := range []struct {
		name, body string
		sign       bool
		status     int
		want       string
	}{
		{"unsigned", `{"code":"` + code + `","player":"p-c1"}`, false, 401, "unauthenticated"},
		{"someone else's code", `{"code":"` + code + `","player":"p-c2"}`, true, 403, "issued to another player"},
		{"bad code", `{"code":"../../etc","player":"p-c1"}`, true, 400, `"field":"code"`},
		{"bad player", `{"code":"` + code + `","player":"p c1"}`, true, 400, `"field":"player"`},
		{"unknown field", `{"code":"` + code + `","player":"p-c1","amount":"99"}`, true, 400, "unknown field"},
		{"unknown code", `{"code":"NOPE1234","player":"p-c1"}`, true, 404, "no such code"},
		{"redeemed", `{"code":"` + strings.ToLower(code) + `","player":"p-c1","requestId":"r1"}`, true, 200, `"amount":"10.00","currency":"AZN"`},
		{"retried", `{"code":"` + code + `","player":"p-c1","requestId":"r1"}`, true, 200, `"uses":1`},
		{"twice", `{"code":"` + code + `","player":"p-c1","requestId":"r2"}`, true, 409, "redeemed already"},
		{"oversized", `{"code":"` + strings.Repeat("A", 5000) + `","player":"p-c1"}`, true, 413, "larger than"},
	} {
		status, body := redeem(c.body, c.sign)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, status, body, c.status, c.want)
		}
		if c.status == 200 {
			var r api.Redeemed
			if err := json.Unmarshal([]byte(body), &r); err != nil || r.Campaign != "win-back" || r.Code != code {
				t.Errorf("%s: %+v %v", c.name, r, err)
			}
		}
	}
	bustest.Eventually(t, 5*time.Second, "the redemption counted", func() bool {
		return statsOf(t, js, bus.KindCampaign, "win-back")[bus.StatCouponsRedeemed] == 1
	})
}

// A grant of an imported coupon draws the pool's next code, binds it to the player and
// sends it; with the pool empty the grant is refused (CouponPoolEmpty) and its budget
// given back.
func TestImportedCouponDrawnAndBound(t *testing.T) {
	srv := bustest.Start(t, 1)
	configure(t, srv)
	_, js := srv.Connect(t)
	putCampaign(t, js, "partner-codes", crmv1.CampaignSpec{Category: crmv1.CategoryService, Priority: 50,
		Trigger:  crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed"}},
		Steps:    []crmv1.Step{{Name: "code", Grant: &crmv1.GrantStep{Reward: "partner"}}, {Name: "tell", Send: &crmv1.SendStep{Content: "tell"}}},
		Contents: []crmv1.Content{sms("tell", "Partnyor kodu: {{ .Coupon }}")},
		Rewards: []crmv1.Reward{{Name: "partner", Coupon: &crmv1.CouponReward{Pool: "partner", Imported: true,
			Value: crmv1.Money{Amount: "5.00", Currency: "AZN"}, ValidFor: ptrTo(dur(24 * time.Hour))}}}})
	store := &reward.Coupons{KV: bustest.KV(t, js, bus.BucketCoupons)}
	if n, _, err := store.Import(context.Background(), "baku", "partner", []string{"PARTNER0001"}, time.Now().Add(90*24*time.Hour), time.Now()); err != nil || n != 1 {
		t.Fatalf("import: %d %v", n, err)
	}
	s := newStack(t, srv, "a", &fakeClock{})
	s.owner.Rewards, s.owner.Coupons = reward.Engine{}, store
	s.start(t, 1)
	for _, p := range []string{"p-i1", "p-i2"} {
		register(t, s.js, p, "Asia/Baku", time.Now(), nil)
		waitPlayer(t, s, p)
		publishEvent(t, s.js, p, "kyc.passed", "kyc-"+p, time.Now(), map[string]any{})
	}
	bustest.Eventually(t, 10*time.Second, "the first player's code", func() bool {
		texts := smsTexts(t, s.js, "p-i1")
		return len(texts) == 1 && texts[0] == "Partnyor kodu: PARTNER0001"
	})
	bustest.Eventually(t, 10*time.Second, "the second player's refusal", func() bool {
		for _, o := range outcomesOf(t, s.js, "p-i2") {
			if o.Reason == flow.ReasonCouponPoolEmpty {
				return true
			}
		}
		return false
	})
	e, err := store.KV.Get(context.Background(), bus.CouponKey("baku", "PARTNER0001"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := bus.Decode[bus.Coupon](e.Value())
	if c.Player != "p-i1" || c.Campaign != "partner-codes" || c.Value.Minor != 500 || c.ValidUntil.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("the drawn code's record %+v", c)
	}
	if _, err := store.Redeem(context.Background(), "baku", "PARTNER0001", "p-i2", "", time.Now()); !errors.Is(err, reward.ErrNotYours) {
		t.Fatalf("another player redeems: %v", err)
	}
}
