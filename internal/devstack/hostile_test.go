package devstack_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// Attacks at the HTTP endpoints of a running stack, each with the 4xx it must get, and
// afterwards nothing of them in EVENTS.
func TestHostileInputs(t *testing.T) {
	info, c := startStack(t)
	ctx := context.Background()
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "baku-casino", Name: "baku-casino-integration"}, &sec); err != nil {
		t.Fatal(err)
	}
	hmacKey, jwtKey := sec.Data[ingest.SecretHMACKey], sec.Data[ingest.SecretJWTKey]
	token := func(player string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": player, "brand": "baku-casino",
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwtKey)
		return s
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}                                         //nolint:gosec // make dev's self-signed certificate
	admin := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}} //nolint:gosec

	event := func(id, player string, extra string) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"pam.hostile","type":"player.registered","subject":%q,"time":%q,"data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"%s}}`,
			id, player, time.Now().UTC().Format(time.RFC3339), extra)
	}
	signed := func(body string, at time.Time) map[string]string {
		return map[string]string{ingest.SignatureHeader: ingest.SignatureFor(hmacKey, at, []byte(body)), "Content-Type": "application/cloudevents+json"}
	}
	huge := strings.Repeat("x", 6<<20)
	var batch strings.Builder
	batch.WriteString("[")
	for i := range 1001 {
		if i > 0 {
			batch.WriteString(",")
		}
		batch.WriteString(event(fmt.Sprintf("h-b-%d", i), fmt.Sprintf("h-batch-%d", i), ""))
	}
	batch.WriteString("]")
	good := event("h-1", "h-good", "")
	zeroTime := strings.Replace(event("h-6", "h-zero", ""), time.Now().UTC().Format(time.RFC3339), "0001-01-01T00:00:00Z", 1)
	deepData := event("h-7", "h-deep", `,"attrs":{"n":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`)
	attacks := []struct {
		name, method, path, body string
		header                   map[string]string
		hc                       *http.Client
		want                     int
	}{
		{"no credentials", "POST", "/v1/brands/baku-casino/events", good, map[string]string{"Content-Type": "application/cloudevents+json"}, anon, 401},
		{"a wrong signature", "POST", "/v1/brands/baku-casino/events", good, map[string]string{ingest.SignatureHeader: "t=" + fmt.Sprint(time.Now().Unix()) + ",v1=00ff", "Content-Type": "application/cloudevents+json"}, anon, 401},
		{"a signature of another body", "POST", "/v1/brands/baku-casino/events", good, signed(event("h-2", "h-other", ""), time.Now()), anon, 401},
		{"a replayed signature (10 minutes old)", "POST", "/v1/brands/baku-casino/events", good, signed(good, time.Now().Add(-10*time.Minute)), anon, 401},
		{"an oversized body", "POST", "/v1/brands/baku-casino/events", `{"x":"` + huge + `"}`, signed(`{"x":"`+huge+`"}`, time.Now()), anon, 413},
		{"a batch over the limit", "POST", "/v1/brands/baku-casino/events", batch.String(),
			map[string]string{ingest.SignatureHeader: ingest.SignatureFor(hmacKey, time.Now(), []byte(batch.String())), "Content-Type": "application/cloudevents-batch+json"}, anon, 400},
		{"invalid UTF-8", "POST", "/v1/brands/baku-casino/events", event("h-3", "h-utf", `,"attrs":{"n":"`+"\xff\xfe"+`"}`), signed(event("h-3", "h-utf", `,"attrs":{"n":"`+"\xff\xfe"+`"}`), time.Now()), anon, 400},
		{"path traversal as the player", "POST", "/v1/brands/baku-casino/events", event("h-4", "../../etc", ""), signed(event("h-4", "../../etc", ""), time.Now()), anon, 400},
		{"a brand that is no token", "POST", "/v1/brands/baku.casino/events", good, signed(good, time.Now()), anon, 400},
		{"an internal event type from the platform", "POST", "/v1/brands/baku-casino/events",
			strings.Replace(event("h-5", "h-int", ""), "player.registered", "player.inactive", 1), signed(strings.Replace(event("h-5", "h-int", ""), "player.registered", "player.inactive", 1), time.Now()), anon, 400},
		{"an explicit zero time", "POST", "/v1/brands/baku-casino/events", zeroTime, signed(zeroTime, time.Now()), anon, 400},
		{"data nested 5,000 deep", "POST", "/v1/brands/baku-casino/events", deepData, signed(deepData, time.Now()), anon, 400},
		{"a player's token at the admin API", "GET", "/v1/brands/baku-casino/players/h-good/export", "", map[string]string{"Authorization": "Bearer " + token("h-good")}, anon, 401},
		{"path traversal in an admin player id", "GET", "/v1/brands/baku-casino/players/..%2F..%2Fsecrets/export", "", nil, admin, 400},
		{"another brand's token at the preference centre", "GET", "/v1/brands/lasvegas/me/preferences", "", map[string]string{"Authorization": "Bearer " + token("h-good")}, anon, 401},
		{"a forged player token", "GET", "/v1/brands/baku-casino/me/preferences", "", map[string]string{"Authorization": "Bearer " + token("h-good")[:40] + "xx"}, anon, 401},
		{"an unsigned coupon redemption", "POST", "/v1/brands/baku-casino/coupons/redeem", `{"code":"WELCOME50","player":"h-good"}`, nil, anon, 401},
		{"a coupon code with path characters", "POST", "/v1/brands/baku-casino/coupons/redeem", `{"code":"../x","player":"h-good"}`,
			map[string]string{ingest.SignatureHeader: ingest.SignatureFor(hmacKey, time.Now(), []byte(`{"code":"../x","player":"h-good"}`))}, anon, 400},
		{"a leaderboard without credentials", "GET", "/v1/brands/baku-casino/campaigns/slots-weekend-race/leaderboard", "", nil, anon, 401},
	}
	for _, a := range attacks {
		req, _ := http.NewRequest(a.method, info.APIURL+a.path, bytes.NewBufferString(a.body))
		for k, v := range a.header {
			req.Header.Set(k, v)
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			t.Errorf("%s: %v", a.name, err)
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != a.want {
			t.Errorf("%s: %d %s, want %d", a.name, resp.StatusCode, strings.TrimSpace(string(raw))[:min(200, len(strings.TrimSpace(string(raw))))], a.want)
		}
	}
	// The same event, properly signed, is taken: the control that the check below sees events.
	req, _ := http.NewRequest("POST", info.APIURL+"/v1/brands/baku-casino/events", bytes.NewBufferString(event("h-ok", "h-control", "")))
	for k, v := range signed(event("h-ok", "h-control", ""), time.Now()) {
		req.Header.Set(k, v)
	}
	if resp, err := anon.Do(req); err != nil || resp.StatusCode != 202 {
		t.Fatalf("the control event: %v %v", resp, err)
	}
	// No side effect: nothing of the attacks reached EVENTS.
	nc, err := nats.Connect(info.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, player := range []string{"h-control", "h-good", "h-other", "h-utf", "h-int", "h-batch-0", "h-zero", "h-deep"} {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter("croupier.ev.baku-casino.*."+player+".>"))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(info.State.Subjects); (n != 0) != (player == "h-control") {
			t.Errorf("events of %s stored: %v", player, info.State.Subjects)
		}
	}
	if !t.Failed() {
		bustest.Reliability(t, "hostile input at every HTTP endpoint", "a running make dev stack (intake, admin API, preference centre, coupons, leaderboards)",
			fmt.Sprintf("%d attacks: missing, wrong and replayed signatures, another player's and brand's token, forged token, oversized body, batch over 1,000, invalid UTF-8, path traversal, internal event types", len(attacks)),
			0, 0, "each refused with its 4xx; none stored in EVENTS (a signed control event is)")
	}
}
