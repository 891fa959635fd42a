package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/partition"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/dispatcher/route"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/testenv"
)

var (
	restCfg *rest.Config
	testEnv *envtest.Environment
	quiet   = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func TestMain(m *testing.M) {
	var err error
	testEnv, err = testenv.Start(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	restCfg = testEnv.Config
	code := m.Run()
	_ = testEnv.Stop()
	os.Exit(code)
}

const parts = 4

type fixture struct {
	js     jetstream.JetStream
	kube   kubernetes.Interface
	server *httptest.Server
	cache  *prefs.Cache
}

// explainAt is the admin fixture's clock for explain: 12:00 in Baku, outside quiet hours.
var explainAt = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func setup(t *testing.T) *fixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kube := kubernetes.NewForConfigOrDie(restCfg)
	c, err := client.New(restCfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := manifests.ReadDir(filepath.Join("..", "..", "config", "rbac", "people"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := c.Create(ctx, r); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"baku", "lasvegas"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	bind := func(name, role string, subject rbacv1.Subject) {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "baku"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{subject}}
		if _, err := kube.RbacV1().RoleBindings("baku").Create(ctx, rb, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	bind("olga-privacy", "croupier-privacy-officer", rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "olga"})
	bind("importer-ops", "croupier-ops-manager", rbacv1.Subject{Kind: "ServiceAccount", Name: "importer", Namespace: "baku"})
	bind("aysel-support", "croupier-support-agent", rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "aysel"})
	bind("nigar-analyst", "croupier-analyst", rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "nigar"})

	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	keeper := &players.Keeper{JS: js, Players: bustest.KV(t, js, bus.BucketPlayers), Log: quiet}
	runner := &partition.Runner{JS: js, Handler: keeper, Log: quiet}
	leases := &partition.Leases{KV: bustest.KV(t, js, bus.BucketLeases), Replica: "test", Partitions: parts, TTL: 3 * time.Second, Log: quiet}
	done := make(chan struct{})
	lctx, lcancel := context.WithCancel(context.Background())
	erased := make(chan struct{})
	go func() { defer close(done); _ = leases.Run(lctx, runner.Callbacks()) }()
	go func() {
		defer close(erased)
		_ = (&players.Eraser{JS: js, Players: keeper.Players, Partitions: parts, Log: quiet, Retry: 200 * time.Millisecond}).Run(lctx)
	}()
	t.Cleanup(func() { lcancel(); <-done; <-erased })

	authn, authz, err := api.Delegated(ctx, kube)
	if err != nil {
		t.Fatal(err)
	}
	admin := &api.Admin{Authn: authn, Authz: authz, JS: js, Partitions: parts, Log: quiet, DataKeys: bustest.DataKeys(t, js, parts)}
	keys := &ingest.SecretKeys{Config: bustest.KV(t, js, bus.BucketConfig), Secrets: kube.CoreV1()}
	intake := &ingest.Intake{JS: js, Log: quiet, Keys: keys}
	// The routing side the preference and insight routes read: the Baku policy, SMS and
	// push configured, and a marketing campaign offering an SMS.
	service, catalog := preferenceService(t, js, parts)
	cache := service.Cache
	for _, r := range []bus.ConfigRecord{
		{Kind: bus.KindChannelPolicy, Brand: "baku", Name: "sms", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS,
			Providers: []crmv1.Provider{{Name: "azercell"}, {Name: "backup"}}},
			ProviderCosts: map[string]bus.MicroAmount{"azercell": {Micros: 35_000, Currency: "AZN"}, "backup": {Micros: 90_000, Currency: "AZN"}}}},
		{Kind: bus.KindChannelPolicy, Brand: "baku", Name: "push", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelPush}}},
		{Kind: bus.KindCampaign, Brand: "baku", Name: "daily-spins", UID: "uid-spins", Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryMarketing,
			Steps:    []crmv1.Step{{Name: "offer", Send: &crmv1.SendStep{Content: "spins"}}},
			Contents: []crmv1.Content{{Name: "spins", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "10 pulsuz fırlatma sizi gözləyir."}}}}}}},
		{Kind: bus.KindCampaign, Brand: "baku", Name: "spent-spins", UID: "uid-spent-spins", Campaign: &bus.CampaignConfig{
			BudgetTotal: &bus.MinorAmount{Minor: 500, Currency: "AZN"}, Spec: crmv1.CampaignSpec{
				Category: crmv1.CategoryMarketing, Budget: &crmv1.Budget{Total: &crmv1.Money{Amount: "5.00", Currency: "AZN"}},
				Steps:    []crmv1.Step{{Name: "offer", Send: &crmv1.SendStep{Content: "spins"}}},
				Contents: []crmv1.Content{{Name: "spins", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "10 pulsuz fırlatma sizi gözləyir."}}}}}}},
		{Kind: bus.KindCampaign, Brand: "baku", Name: "paused-spins", UID: "uid-paused-spins", Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryMarketing, Paused: true,
			Steps:    []crmv1.Step{{Name: "offer", Send: &crmv1.SendStep{Content: "spins"}}},
			Contents: []crmv1.Content{{Name: "spins", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "10 pulsuz fırlatma sizi gözləyir."}}}}}}},
	} {
		b, _ := bus.Encode(r)
		kind := bus.KindCampaign
		if r.ChannelPolicy != nil {
			kind = bus.KindChannelPolicy
		}
		catalog.Put(bus.ConfigKey("baku", kind, r.Name), b)
	}
	preferences := &api.Preferences{Service: service, Keys: keys, Log: quiet}
	insight := &api.Insight{JS: js, Catalog: catalog, Prefs: service, Partitions: parts, DataKeys: bustest.DataKeys(t, js, parts), Clock: func() time.Time { return explainAt }}

	mux := http.NewServeMux()
	admin.Register(mux)
	preferences.RegisterAdmin(mux, admin)
	preferences.Register(mux)
	insight.RegisterAdmin(mux, admin)
	(&api.Leaderboards{Stats: bustest.KV(t, js, bus.BucketStats), Catalog: catalog, Partitions: parts}).RegisterAdmin(mux, admin)
	(&api.CouponImport{Store: &reward.Coupons{KV: bustest.KV(t, js, bus.BucketCoupons)}}).Register(mux, admin)
	// The preview's gathering over NATS is tested with real owners in dispatcher/flow;
	// here the route, its authorization and its answer.
	(&api.Campaigns{JS: js, Catalog: catalog, Partitions: parts, Preview: func(_ *http.Request, brand, campaign string) (*bus.Preview, error) {
		return &bus.Preview{Brand: brand, Campaign: campaign, Audience: 42, WouldSend: 40, ByChannel: map[string]int64{"sms": 30, "push": 10}, Partitions: []int{0, 1, 2, 3}}, nil
	}, Count: func(_ *http.Request, brand, rule string) (*bus.Preview, error) {
		// The flow package's test gathers real counts; this one checks the route.
		return &bus.Preview{Brand: brand, Audience: int64(len(rule)), Partitions: []int{0, 1, 2, 3}}, nil
	}}).Register(mux, admin)
	mux.Handle("POST /v1/brands/{brand}/events", intake)
	hs := httptest.NewUnstartedServer(mux)
	hs.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return &fixture{js: js, kube: kube, server: hs, cache: cache}
}

// clientWith returns an HTTPS client trusting the test server, presenting cert if given.
func (f *fixture) clientWith(cert *tls.Certificate) *http.Client {
	tr := f.server.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// person is a caller with a client certificate from the cluster's client CA.
func (f *fixture) person(t *testing.T, name string) caller {
	t.Helper()
	u, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := u.Config()
	cert, err := tls.X509KeyPair(c.CertData, c.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	return caller{client: f.clientWith(&cert)}
}

// serviceAccount is a caller with a bound token of a ServiceAccount in baku.
func (f *fixture) serviceAccount(t *testing.T, name string) caller {
	t.Helper()
	ctx := context.Background()
	if _, err := f.kube.CoreV1().ServiceAccounts("baku").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	tr, err := f.kube.CoreV1().ServiceAccounts("baku").CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return caller{client: f.clientWith(nil), token: tr.Status.Token}
}

// step is one admin request and what it must answer: the status and a piece of the body.
type step struct {
	name   string
	who    caller
	method string
	path   string
	body   string
	status int
	want   string
}

// run makes each request in order; a refused one must leave EVENTS as it was.
func (f *fixture) run(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		before := eventsStored(t, f.js)
		status, body := f.do(t, s.who, s.method, s.path, s.body)
		if status != s.status || !strings.Contains(string(body), s.want) {
			t.Fatalf("%s: %d %s; want %d with %q", s.name, status, body, s.status, s.want)
		}
		if status >= 400 && eventsStored(t, f.js) != before {
			t.Fatalf("%s: a refused request changed EVENTS", s.name)
		}
	}
}

type caller struct {
	client *http.Client
	token  string
}

func (f *fixture) do(t *testing.T, c caller, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.server.URL+path, strings.NewReader(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func eventsStored(t *testing.T, js jetstream.JetStream) uint64 {
	st, _ := js.Stream(context.Background(), bus.StreamEvents)
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestAdminAPIAuthenticatesAuthorizesImportsExportsAndErases(t *testing.T) {
	f := setup(t)
	ctx := context.Background()

	olga := f.person(t, "olga")
	importer := f.serviceAccount(t, "importer")
	anonymous := caller{client: f.clientWith(nil)}
	forged := caller{client: f.clientWith(nil), token: "not-a-token"}

	profiles := `{"id":"p-1","country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"p-1@example.az","registeredAt":"2025-01-02T00:00:00Z","depositCount":4,"depositSum":"400.00","vipLevel":2,"attrs":{"crmTier":"gold"}}
{"id":"p-2","country":"AZ","language":"ru","timeZone":"Asia/Baku","currency":"AZN","phone":"+994501112233"}

{"id":"p-3","country":"TR","language":"tr","timeZone":"Europe/Istanbul","currency":"TRY","kycStatus":"passed","ageVerified":true}
`
	badLine := `{"id":"p-4","country":"AZ"}
{"id":"p-5","email":"not-an-address"}
`
	// The second line is longer than one profile may be.
	longLine := `{"id":"p-6","country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN"}
{"id":"p-7","attrs":{"note":"` + strings.Repeat("x", ingest.MaxEventBytes) + `"}}
`
	f.run(t, []step{
		{"an over-long line", importer, "POST", "/v1/brands/baku/players/import", longLine, 413,
			fmt.Sprintf(`line 2 is longer than %d bytes, the limit of one profile; nothing was imported","line":2`, ingest.MaxEventBytes)},
		{"anonymous import", anonymous, "POST", "/v1/brands/baku/players/import", profiles, 401, "authentication required"},
		{"forged token", forged, "POST", "/v1/brands/baku/players/import", profiles, 401, "authentication required"},
		{"olga may not import", olga, "POST", "/v1/brands/baku/players/import", profiles, 403, `olga\" may not create players/import`},
		{"importer imports", importer, "POST", "/v1/brands/baku/players/import", profiles, 202, `"lines":3,"accepted":3`},
		{"a bad line rejects the import", importer, "POST", "/v1/brands/baku/players/import", badLine, 400, `"line":2,"field":"email"`},
		{"importer may not import into another brand", importer, "POST", "/v1/brands/lasvegas/players/import", profiles, 403, "may not create"},
		{"importer may not export", importer, "GET", "/v1/brands/baku/players/p-1/export", "", 403, "may not get players/export"},
		{"importer may not erase", importer, "POST", "/v1/brands/baku/players/p-1/erase", "", 403, "may not create players/erase"},
		{"olga may not export in another brand", olga, "GET", "/v1/brands/lasvegas/players/p-1/export", "", 403, "may not get"},
		{"bad player id", olga, "GET", "/v1/brands/baku/players/p%201/export", "", 400, `"field":"player"`},
	})

	// The owner applies the import; olga exports what is held.
	var ex api.Export
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := f.do(t, olga, "GET", "/v1/brands/baku/players/p-1/export", "")
		if status == 200 {
			if err := json.Unmarshal(body, &ex); err != nil {
				t.Fatal(err)
			}
			var p players.Player
			_ = json.Unmarshal(ex.Profile, &p)
			if p.DepositCount == 4 {
				if p.Email != "p-1@example.az" || p.DepositSum != 40000 || p.VIPLevel != 2 || len(p.Attrs) != 1 || len(ex.Events) != 1 {
					t.Fatalf("exported profile %+v with %d events", p, len(ex.Events))
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("export never showed the imported profile: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// olga erases p-1: nothing with the address remains, and new events are dropped.
	status, body := f.do(t, olga, "POST", "/v1/brands/baku/players/p-1/erase", "")
	if status != 200 || !strings.Contains(string(body), `"status":"erased"`) {
		t.Fatalf("erase: %d %s", status, body)
	}
	status, body = f.do(t, olga, "GET", "/v1/brands/baku/players/p-1/export", "")
	if status != 200 || strings.Contains(string(body), "p-1@example.az") || !strings.Contains(string(body), `"erased":true`) {
		t.Fatalf("export after erasure: %d %s", status, body)
	}
	bustest.WaitAudit(t, f.js, "baku", "p-1", players.AuditOverwritten, 30*time.Second)
	bustest.AssertNowhere(t, f.js, "p-1@example.az")

	// Every admin action is in AUDIT with the actor, and no contact data.
	au, _ := f.js.Stream(ctx, bus.StreamAudit)
	actions := map[string]string{}
	info, _ := au.Info(ctx)
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := au.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if bytes.Contains(m.Data, []byte("@example.az")) {
			t.Errorf("AUDIT holds contact data: %s", m.Data)
		}
		e, _ := bus.Decode[bus.AuditEntry](m.Data)
		actions[e.Action+" "+e.Name] = e.Actor
	}
	want := map[string]string{
		"imported import": "system:serviceaccount:baku:importer",
		"exported p-1":    "olga",
		"erased p-1":      "olga",
	}
	for k, v := range want {
		if actions[k] != v {
			t.Errorf("audit %q by %q, want %q (all: %v)", k, actions[k], v, actions)
		}
	}
}

func TestIntakeKeysFromThePolicySecret(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.kube.CoreV1().Secrets("baku").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "baku-integration"},
		Data: map[string][]byte{ingest.SecretHMACKey: []byte("k1"), ingest.SecretBearerToken: []byte("tok"),
			ingest.SecretJWTKey: []byte("players-now"), ingest.SecretJWTKeyPrevious: []byte("players-before")},
	}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	rec := bus.ConfigRecord{Kind: bus.KindPreferencePolicy, Brand: "baku", Name: "default", PreferencePolicy: &bus.PreferencePolicyConfig{
		Spec: crmv1.PreferencePolicySpec{Integration: &crmv1.Integration{SecretRef: crmv1.LocalObjectReference{Name: "baku-integration"}}}}}
	b, _ := bus.Encode(rec)
	if _, err := bustest.KV(t, f.js, bus.BucketConfig).Put(ctx, bus.ConfigKey("baku", bus.KindPreferencePolicy, "default"), b); err != nil {
		t.Fatal(err)
	}
	ev := `{"specversion":"1.0","id":"k-1","source":"pam","type":"session.started","subject":"p-9","data":{}}`
	post := func(brand string, h http.Header) (int, string) {
		req, _ := http.NewRequest("POST", f.server.URL+"/v1/brands/"+brand+"/events", strings.NewReader(ev))
		req.Header = h
		req.Header.Set("Content-Type", ingest.ContentTypeStructured)
		resp, err := f.clientWith(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if s, b := post("baku", http.Header{ingest.SignatureHeader: {ingest.SignatureFor([]byte("k1"), time.Now(), []byte(ev))}}); s != 202 {
		t.Errorf("signed with the Secret's key: %d %s", s, b)
	}
	if s, b := post("baku", http.Header{"Authorization": {"Bearer tok"}}); s != 202 {
		t.Errorf("the Secret's bearer token: %d %s", s, b)
	}
	if s, b := post("baku", http.Header{ingest.SignatureHeader: {ingest.SignatureFor([]byte("k2"), time.Now(), []byte(ev))}}); s != 401 {
		t.Errorf("another key: %d %s", s, b)
	}
	if s, b := post("lasvegas", http.Header{"Authorization": {"Bearer tok"}}); s != 401 || !strings.Contains(b, "spec.integration.secretRef") {
		t.Errorf("a brand without a policy: %d %s", s, b)
	}
	// Players' tokens are checked with the Secret's jwtKey, or jwtKeyPrevious while the
	// casino rotates it.
	for key, want := range map[string]int{"players-now": 200, "players-before": 200, "players-other": 401} {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "p-9", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", f.server.URL+"/v1/brands/baku/me/preferences", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.clientWith(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && !strings.Contains(string(body), `"player":"p-9"`)) {
			t.Errorf("a player token signed with %s: %d %s, want %d", key, resp.StatusCode, body, want)
		}
	}
}

// TestSupportDeskSuppressionsAndInsight drives the support-desk, suppression-list, history,
// explain and consent-report routes with people whose roles the real API server checks.
func TestSupportDeskSuppressionsAndInsight(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	aysel, nigar, olga := f.person(t, "aysel"), f.person(t, "nigar"), f.person(t, "olga")
	importer := f.serviceAccount(t, "importer")
	const phone = "+994501112299"
	if st, body := f.do(t, importer, "POST", "/v1/brands/baku/players/import",
		`{"id":"p-20","country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","phone":"`+phone+`","kycStatus":"passed","ageVerified":true}`+"\n"); st != 202 {
		t.Fatalf("import: %d %s", st, body)
	}
	bustest.Eventually(t, 10*time.Second, "the imported player", func() bool {
		st, body := f.do(t, olga, "GET", "/v1/brands/baku/players/p-20/export", "")
		return st == 200 && strings.Contains(string(body), `"kycStatus":"passed"`)
	})
	explain := func(who caller, query string) (int, api.Explanation, string) {
		st, body := f.do(t, who, "GET", "/v1/brands/baku/players/p-20/explain"+query, "")
		var ex api.Explanation
		if st == 200 {
			if err := json.Unmarshal(body, &ex); err != nil {
				t.Fatal(err)
			}
		}
		return st, ex, string(body)
	}
	// Marketing SMS needs an opt-in in Baku: explain stops at consent (5).
	st, ex, body := explain(nigar, "?campaign=daily-spins")
	if st != 200 || ex.Decision.Result != route.Suppress || ex.Decision.Reason != route.ReasonNoConsent || ex.Decision.Step != 5 {
		t.Fatalf("explain before the opt-in: %d %s", st, body)
	}
	if last := ex.Decision.Trace[len(ex.Decision.Trace)-1]; last.Step != 5 || last.Passed || ex.Decision.Trace[3].Step != 4 || !ex.Decision.Trace[3].Passed {
		t.Fatalf("explain trace: %+v", ex.Decision.Trace)
	}
	hash := prefs.AddressHash(crmv1.ChannelSMS, phone)
	f.run(t, []step{
		{"the support desk reads the matrix", aysel, "GET", "/v1/brands/baku/players/p-20/preferences", "", 200, `"player":"p-20"`},
		{"the desk records the player's opt-in given by phone", aysel, "PUT", "/v1/brands/baku/players/p-20/preferences",
			`{"choices":[{"category":"marketing","channel":"sms","state":"granted"}]}`, 200, `"player":"p-20"`},
	})
	// A paused campaign is explained as paused, not as outside its window.
	if st, ex, body := explain(nigar, "?campaign=paused-spins"); st != 200 || ex.Decision.Reason != route.ReasonCampaignPaused {
		t.Fatalf("explain of a paused campaign: %d %s", st, body)
	}
	// Now daily-spins would go out by SMS at noon in Baku, every step passed.
	st, ex, body = explain(nigar, "?campaign=daily-spins")
	if st != 200 || ex.Decision.Result != route.Send || ex.Decision.Channel != crmv1.ChannelSMS || len(ex.Decision.Trace) != 10 {
		t.Fatalf("explain after the opt-in: %d %s", st, body)
	}
	for _, s := range ex.Decision.Trace {
		if !s.Passed {
			t.Fatalf("explain after the opt-in: step %d %s did not pass: %s", s.Step, s.Name, body)
		}
	}
	// A campaign its budget paused (the ledger found the total reached) is explained as
	// such; before that it would send like daily-spins.
	if st, ex, body := explain(nigar, "?campaign=spent-spins"); st != 200 || ex.Decision.Result != route.Send {
		t.Fatalf("explain before the cap: %d %s", st, body)
	}
	led, _ := bus.Encode(bus.BudgetLedger{UID: "uid-spent-spins", Granted: 5_000_000, Exhausted: &bus.BudgetExhaustion{Scope: bus.BudgetTotal, Cap: 5_000_000, At: explainAt}})
	if _, err := bustest.KV(t, f.js, bus.BucketBudget).Put(ctx, bus.BudgetKey("baku", "spent-spins"), led); err != nil {
		t.Fatal(err)
	}
	if st, ex, body := explain(nigar, "?campaign=spent-spins"); st != 200 || ex.Decision.Reason != route.ReasonBudgetExhausted || !strings.Contains(ex.Decision.Detail, "total budget") {
		t.Fatalf("explain of a campaign paused by its budget: %d %s", st, body)
	}
	f.run(t, []step{
		{"an analyst may not change preferences", nigar, "PUT", "/v1/brands/baku/players/p-20/preferences",
			`{"choices":[{"category":"marketing","channel":"sms","state":"withdrawn"}]}`, 403, `may not update players/preferences`},
		{"mandatory service SMS cannot be switched off, even by the desk", aysel, "PUT", "/v1/brands/baku/players/p-20/preferences",
			`{"choices":[{"category":"service","channel":"sms","state":"withdrawn"}]}`, 409, `"field":"choices[0].state"`},
		{"the desk withdraws marketing SMS on the player's request", aysel, "PUT", "/v1/brands/baku/players/p-20/preferences",
			`{"choices":[{"category":"marketing","channel":"sms","state":"withdrawn"}]}`, 200, `"player":"p-20"`},
		{"the desk may not touch the suppression list", aysel, "POST", "/v1/brands/baku/suppressions",
			`{"channel":"sms","address":"` + phone + `","reason":"complaint"}`, 403, "may not create suppressions"},
		{"the desk may not read the consent report", aysel, "GET", "/v1/brands/baku/consent/report", "", 403, "may not get consent/report"},
	})
	// The campaign report sums the partitions' counters.
	stats := bustest.KV(t, f.js, bus.BucketStats)
	for part, c := range []map[string]int64{
		{bus.StatRewardsGranted: 3, bus.StatCostRewards: 3_000_000, bus.StatConverted: 1, bus.StatRevenue: 5000,
			bus.SegmentStat(bus.DimCountry, "AZ", bus.StatTargeted): 3, bus.SegmentStat(bus.DimCountry, "AZ", bus.StatConverted): 1},
		{bus.StatRewardsGranted: 1, bus.StatCostRewards: 1_000_000, bus.StatCostMessages: 35_000, bus.StatConverted: 1,
			bus.SegmentStat(bus.DimCountry, "AZ", bus.StatTargeted): 1, bus.SegmentStat(bus.DimCountry, "TR", bus.StatTargeted): 2},
	} {
		b, _ := bus.Encode(bus.PartitionStats{Brand: "baku", Kind: bus.KindCampaign, Name: "daily-spins", Partition: part, Counters: c})
		if _, err := stats.Put(ctx, bus.StatsKey("baku", bus.KindCampaign, "daily-spins", part), b); err != nil {
			t.Fatal(err)
		}
	}
	// A pool two of whose five codes grants drew.
	legacy, _ := bus.Encode(bus.CouponPool{Size: 5, Ready: 5, Next: 2})
	if _, err := bustest.KV(t, f.js, bus.BucketCoupons).Put(ctx, bus.CouponPoolKey("baku", "legacy"), legacy); err != nil {
		t.Fatal(err)
	}
	f.run(t, []step{
		{"an analyst reads a campaign's report", nigar, "GET", "/v1/brands/baku/campaigns/daily-spins/report", "", 200,
			`"report":{"grants":4,"rewardCost":"4","messageCost":"0.035","conversions":2,"revenue":"50.00","cpa":"2.0175","roi":"11.39"}`},
		// By country over both partitions: AZ 3+1 targeted, 1 converted (0.25); TR 2.
		{"the report by country", nigar, "GET", "/v1/brands/baku/campaigns/daily-spins/report?by=country", "", 200,
			`"by":"country","segments":[{"value":"AZ","targeted":4,"converted":1,"conversionRate":"0.2500"},{"value":"TR","targeted":2,"conversionRate":"0.0000"}]`},
		{"by VIP level, nothing counted", nigar, "GET", "/v1/brands/baku/campaigns/daily-spins/report?by=vip", "", 200, `"by":"vip","read"`},
		{"by something else", nigar, "GET", "/v1/brands/baku/campaigns/daily-spins/report?by=age", "", 400, `"field":"by"`},
		// The staff's standings route: guarded like reports (the board itself is tested in flow).
		{"standings of a campaign that is no tournament", nigar, "GET", "/v1/brands/baku/campaigns/daily-spins/standings", "", 404, "no tournament Campaign daily-spins"},
		{"standings are a report", aysel, "GET", "/v1/brands/baku/campaigns/daily-spins/standings", "", 403, "may not get campaigns/report"},
		{"the support desk may not", aysel, "GET", "/v1/brands/baku/campaigns/daily-spins/report", "", 403, "may not get campaigns/report"},
		{"operations send a test to a seed player", importer, "POST", "/v1/brands/baku/campaigns/daily-spins/testsend", `{"player":"p-20"}`, 202, `"step":"offer","content":"spins"`},
		{"a test send to a step that does not send", importer, "POST", "/v1/brands/baku/campaigns/daily-spins/testsend", `{"player":"p-20","step":"nope"}`, 400, `"field":"step"`},
		{"a test send to a bad player id", importer, "POST", "/v1/brands/baku/campaigns/daily-spins/testsend", `{"player":"p 20"}`, 400, `"field":"player"`},
		{"an analyst may not send tests", nigar, "POST", "/v1/brands/baku/campaigns/daily-spins/testsend", `{"player":"p-20"}`, 403, "may not create campaigns/testsend"},
		{"operations preview a campaign", importer, "GET", "/v1/brands/baku/campaigns/daily-spins/preview", "", 200, `"audience":42`},
		// 30 SMS at the first provider's 0.035 AZN; push is not priced.
		{"the preview's message cost", importer, "GET", "/v1/brands/baku/campaigns/daily-spins/preview", "", 200, `"messageCost":"1.05","currency":"AZN"`},
		{"the support desk may not preview", aysel, "GET", "/v1/brands/baku/campaigns/daily-spins/preview", "", 403, "may not get campaigns/preview"},
		{"operations import partner codes", importer, "POST", "/v1/brands/baku/coupons/import", `{"pool":"partner","codes":["pa0001","PA0002"]}`, 200,
			`{"pool":"partner","added":2,"duplicates":[]}`},
		{"an analyst may not import codes", nigar, "POST", "/v1/brands/baku/coupons/import", `{"pool":"partner","codes":["PA0003"]}`, 403, "may not create coupons/import"},
		{"a code with a dash is named", importer, "POST", "/v1/brands/baku/coupons/import", `{"pool":"partner","codes":["PA0003","PA-0004"]}`, 400, `"field":"codes[1]"`},
		{"a code listed twice", importer, "POST", "/v1/brands/baku/coupons/import", `{"pool":"partner","codes":["PA0005","pa0005"]}`, 400, "listed twice"},
		{"a bad pool", importer, "POST", "/v1/brands/baku/coupons/import", `{"pool":"Partner!","codes":["PA0005"]}`, 400, `"field":"pool"`},
		{"an existing code is reported", importer, "POST", "/v1/brands/baku/coupons/import", `{"pool":"partner","codes":["PA0002","PA0006"]}`, 200, `"added":1,"duplicates":["PA0002"]`},
		{"the pools' stock: three codes imported, none drawn", nigar, "GET", "/v1/brands/baku/coupons/pools", "", 200,
			`"pools":[{"pool":"legacy","kind":"imported","campaigns":[],"imported":5,"drawn":2,"left":3,"redeemed":0},{"pool":"partner","kind":"imported","campaigns":[],"imported":3,"left":3,"redeemed":0}]`},
		{"the pools are a report", aysel, "GET", "/v1/brands/baku/coupons/pools", "", 403, "may not get campaigns/report"},
		{"an unknown campaign", nigar, "GET", "/v1/brands/baku/campaigns/nope/report", "", 404, "no Campaign nope"},
		{"a campaign name that is no token", nigar, "GET", "/v1/brands/baku/campaigns/a.b/report", "", 400, `"field":"campaign"`},
	})
	// The brand's channel report over a period of its days, hand-computed: sms 10+5+3 sent
	// (the 99 of 40 days ago outside the period), 8 delivered, 3 converted, 0.10 AZN of
	// messages (CPA 0.1/3), 45.00 AZN of revenue (ROI (45.00-0.10)/0.10 = 449; on the day
	// with the cost but not the revenue, -1); email 20 sent, 7 opened.
	baku, _ := time.LoadLocation("Asia/Baku")
	today := explainAt.In(baku) // the insight API's clock
	d0, d1, old := today.AddDate(0, 0, -1).Format(time.DateOnly), today.AddDate(0, 0, -2).Format(time.DateOnly), today.AddDate(0, 0, -40).Format(time.DateOnly)
	sms, email := crmv1.ChannelSMS, crmv1.ChannelEmail
	for part, c := range []map[string]int64{
		{bus.DayStat(d0, sms, bus.StatSent): 10, bus.DayStat(d0, sms, bus.StatDelivered): 8, bus.DayStat(d0, sms, bus.StatCostMessages): 100_000,
			bus.DayStat(d0, sms, bus.StatConverted): 2, bus.DayStat(d1, sms, bus.StatSent): 5, bus.DayStat(d0, email, bus.StatSent): 20, bus.DayStat(d0, email, bus.StatOpened): 7},
		{bus.DayStat(d0, sms, bus.StatSent): 3, bus.DayStat(d0, sms, bus.StatConverted): 1, bus.DayStat(d1, sms, bus.StatRevenue): 4500, bus.DayStat(old, sms, bus.StatSent): 99},
	} {
		b, _ := bus.Encode(bus.PartitionStats{Brand: "baku", Kind: bus.KindCampaign, Name: "daily-spins", Partition: part, Counters: c})
		if _, err := stats.Put(ctx, bus.StatsKey("baku", bus.KindCampaign, "daily-spins", part), b); err != nil {
			t.Fatal(err)
		}
	}
	period := "from=" + d1 + "&to=" + d0
	f.run(t, []step{
		{"an analyst reads the brand's channel report", nigar, "GET", "/v1/brands/baku/channels/report?" + period, "", 200,
			`"total":[{"channel":"email","sent":20,"opened":7},{"channel":"sms","sent":18,"delivered":8,"converted":3,"messageCost":"0.1","revenue":"45.00","cpa":"0.033333","roi":"449.00"}]`},
		{"one day of it", nigar, "GET", "/v1/brands/baku/channels/report?campaign=daily-spins&from=" + d1 + "&to=" + d1, "", 200,
			`"campaigns":[{"campaign":"daily-spins","channels":[{"channel":"sms","sent":5,"revenue":"45.00"}]}]`},
		{"day by day", nigar, "GET", "/v1/brands/baku/channels/report?by=day&" + period, "", 200,
			`"days":[{"day":"` + d1 + `","channels":[{"channel":"sms","sent":5,"revenue":"45.00"}]},{"day":"` + d0 + `","channels":[{"channel":"email","sent":20,"opened":7},{"channel":"sms","sent":13,"delivered":8,"converted":3,"messageCost":"0.1","cpa":"0.033333","roi":"-1.00"}]}]`},
		{"by something else", nigar, "GET", "/v1/brands/baku/channels/report?by=week", "", 400, `"field":"by"`},
		{"a period older than the day counters", nigar, "GET", "/v1/brands/baku/channels/report?from=" + old, "", 400, `"field":"from"`},
		{"a date that is no date", nigar, "GET", "/v1/brands/baku/channels/report?to=yesterday", "", 400, `"field":"to"`},
		{"from after to", nigar, "GET", "/v1/brands/baku/channels/report?from=" + d0 + "&to=" + d1, "", 400, `"field":"from"`},
		{"an unknown campaign", nigar, "GET", "/v1/brands/baku/channels/report?campaign=nope", "", 404, `"field":"campaign"`},
		{"the support desk may not", aysel, "GET", "/v1/brands/baku/channels/report", "", 403, "may not get campaigns/report"},
	})
	// A scheduled Report's runs and their files, as mailed (the store the dispatchers
	// wrote them to): listed newest first, a file of a run downloaded, nothing else.
	slot := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	runs := bustest.KV(t, f.js, bus.BucketReportRuns)
	for i, res := range []bus.ReportResult{
		{RunID: "r-1", Generated: slot.Add(-7 * 24 * time.Hour), Error: "mailing recipient 1 of 1: connection refused", Files: []string{"weekly-2026-11-30.csv"}},
		{RunID: "r-2", Generated: slot.Add(time.Second), Sent: slot.Add(2 * time.Second), Files: []string{"weekly-2026-12-07.csv"}},
	} {
		b, _ := bus.Encode(&res)
		if _, err := runs.Put(ctx, bus.ReportRunKey("baku", "weekly", slot.Add(time.Duration(i-1)*7*24*time.Hour)), b); err != nil {
			t.Fatal(err)
		}
	}
	files, err := f.js.ObjectStore(ctx, bus.ObjectReports)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files.PutBytes(ctx, "baku/weekly/20261207T040000Z/weekly-2026-12-07.csv", []byte("brand,baku\r\nsms,18\r\n")); err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(slot.Unix(), 10)
	f.run(t, []step{
		{"an analyst lists a report's runs", nigar, "GET", "/v1/brands/baku/reports/weekly/runs", "", 200,
			`"runs":[{"id":"` + run + `","scheduled":"2026-12-07T04:00:00Z","generated":"2026-12-07T04:00:01Z","sent":"2026-12-07T04:00:02Z","files":["weekly-2026-12-07.csv"]},` +
				`{"id":"` + strconv.FormatInt(slot.Add(-7*24*time.Hour).Unix(), 10) + `","scheduled":"2026-11-30T04:00:00Z","generated":"2026-11-30T04:00:00Z","error":"mailing recipient 1 of 1: connection refused","files":["weekly-2026-11-30.csv"]}]`},
		{"and downloads the file mailed", nigar, "GET", "/v1/brands/baku/reports/weekly/runs/" + run + "/weekly-2026-12-07.csv", "", 200, "sms,18"},
		{"a file the run did not make", nigar, "GET", "/v1/brands/baku/reports/weekly/runs/" + run + "/other.csv", "", 404, "no such file"},
		{"a file no longer kept", nigar, "GET", "/v1/brands/baku/reports/weekly/runs/" + strconv.FormatInt(slot.Add(-7*24*time.Hour).Unix(), 10) + "/weekly-2026-11-30.csv", "", 410, "90 days"},
		{"a run id that is no time", nigar, "GET", "/v1/brands/baku/reports/weekly/runs/monday/weekly-2026-12-07.csv", "", 400, `"field":"run"`},
		{"a report with no runs", nigar, "GET", "/v1/brands/baku/reports/daily/runs", "", 200, `"runs":[]`},
		{"a report name that is no token", nigar, "GET", "/v1/brands/baku/reports/a.b/runs", "", 400, `"field":"report"`},
		{"the support desk may not", aysel, "GET", "/v1/brands/baku/reports/weekly/runs", "", 403, "may not get campaigns/report"},
	})
	// The template studio's preview: the dispatcher's renderer, for a sample profile or a
	// player it knows; an SMS's encoding and segments; which locale each brand language
	// gets; a broken template named by its message and field, the others still shown.
	render := `{"campaign":"welcome","sample":{"firstName":"Aysel"},"messages":[` +
		`{"channel":"sms","locale":"az","body":"Salam, {{ .Player.FirstName }}! Bonusunuz hazırdır: ə ş ğ"},` +
		`{"channel":"email","locale":"ru","subject":"Привет, {{ .Player.FirstName }}","format":"html","body":"<p>{{ .Player.FirstName }} &lt;3</p>"},` +
		`{"channel":"push","locale":"az","body":"{{ .Player.FirstName"}]}`
	f.run(t, []step{
		{"the studio's preview for a sample profile", importer, "POST", "/v1/brands/baku/render", render, 200,
			`"messages":[{"channel":"sms","locale":"az","text":"Salam, Aysel! Bonusunuz hazırdır: ə ş ğ","sms":{"encoding":"UCS-2","segments":1,"characters":39},"cost":"0.035","currency":"AZN","provider":"azercell"},` +
				`{"channel":"email","locale":"ru","subject":"Привет, Aysel","html":"\u003cp\u003eAysel \u0026lt;3\u003c/p\u003e"},` +
				`{"channel":"push","locale":"az","error":`},
		{"the broken one named", importer, "POST", "/v1/brands/baku/render", render, 200, `"error":"messages[2].body: template: messages[2].body:1: unclosed action","field":"messages[2].body"}]`},
		{"the locale each language gets", importer, "POST", "/v1/brands/baku/render", render, 200, `"fallback":{"email":{"az":"ru","en":"ru","ru":"ru"},"push":{"az":"az","en":"az","ru":"az"},"sms":{"az":"az","en":"az","ru":"az"}}`},
		{"for a player the dispatcher knows", importer, "POST", "/v1/brands/baku/render", `{"player":"p-20","messages":[{"channel":"sms","locale":"az","body":"{{ .Player.Country }} {{ .Player.Currency }}"}]}`, 200,
			`"text":"AZ AZN","sms":{"encoding":"GSM-7","segments":1,"characters":6},"cost":"0.035"`},
		// Two UCS-2 segments (71 characters) cost twice the first provider's price.
		{"an SMS of two segments costs two", importer, "POST", "/v1/brands/baku/render", `{"sample":{},"messages":[{"channel":"sms","locale":"az","body":"` + strings.Repeat("ə", 71) + `"}]}`, 200,
			`"sms":{"encoding":"UCS-2","segments":2,"characters":71},"cost":"0.07","currency":"AZN","provider":"azercell"}`},
		{"for a player it does not know", importer, "POST", "/v1/brands/baku/render", `{"player":"p-404","messages":[{"channel":"sms","locale":"az","body":"x"}]}`, 404, `"field":"player"`},
		{"without messages", importer, "POST", "/v1/brands/baku/render", `{"sample":{}}`, 400, `"field":"messages"`},
		{"an unknown field", importer, "POST", "/v1/brands/baku/render", `{"messages":[],"html":"x"}`, 400, "html"},
		{"the support desk may not", aysel, "POST", "/v1/brands/baku/render", render, 403, "may not get campaigns/preview"},
		// A Segment's rule counted while it is written.
		{"a rule counted", importer, "POST", "/v1/brands/baku/segments/count", `{"rule":"player.vipLevel >= 3"}`, 200, `{"rule":"player.vipLevel \u003e= 3","count":20,"partitions":[0,1,2,3]}`},
		{"a rule that does not compile", importer, "POST", "/v1/brands/baku/segments/count", `{"rule":"player.vipLevel >="}`, 422, `"field":"rule"`},
		{"no rule", importer, "POST", "/v1/brands/baku/segments/count", `{"rule":" "}`, 400, `"field":"rule"`},
		{"counting is previewing", aysel, "POST", "/v1/brands/baku/segments/count", `{"rule":"true"}`, 403, "may not get campaigns/preview"},
	})
	ledger := consent(t, f.js, "p-20")
	if len(ledger) != 2 || !ledger[0].Granted || ledger[1].Granted || ledger[1].Channel != crmv1.ChannelSMS || ledger[1].Source != prefs.SourceSupport || ledger[1].Actor != "support:aysel" {
		t.Fatalf("ledger after the desk's changes: %+v", ledger)
	}
	audits, err := api.ReadSubject(ctx, f.js, bus.StreamAudit, bus.AuditSubject("baku", prefs.KindPreferences, "p-20"))
	if err != nil || len(audits) != 2 || !strings.Contains(string(audits[1]), `"actor":"support:aysel"`) {
		t.Fatalf("audit of the desk's changes: %d %v", len(audits), err)
	}
	// explain names the step that stops it again: consent (5).
	if st, ex, body = explain(nigar, "?campaign=daily-spins"); st != 200 || ex.Decision.Reason != route.ReasonNoConsent {
		t.Fatalf("explain after the withdrawal: %d %s", st, body)
	}
	f.run(t, []step{
		{"explain without a campaign", nigar, "GET", "/v1/brands/baku/players/p-20/explain", "", 400, `"field":"campaign"`},
		{"explain of an unknown campaign", nigar, "GET", "/v1/brands/baku/players/p-20/explain?campaign=nope", "", 404, `"field":"campaign"`},
		{"explain of an unknown step", nigar, "GET", "/v1/brands/baku/players/p-20/explain?campaign=daily-spins&step=nope", "", 400, `"field":"step"`},
		{"explain in another brand", nigar, "GET", "/v1/brands/lasvegas/players/p-20/explain?campaign=daily-spins", "", 403, "may not get players/explain"},
	})

	// The suppression list: a bad line refuses the whole import, then the good one lands.
	f.run(t, []step{
		{"a line without address or hash", olga, "POST", "/v1/brands/baku/suppressions",
			`{"channel":"sms","address":"` + phone + `","reason":"complaint"}` + "\n" + `{"channel":"sms","reason":"x"}`, 400, `"line":2,"field":"address"`},
		{"an unknown channel", olga, "POST", "/v1/brands/baku/suppressions", `{"channel":"fax","address":"1","reason":"x"}`, 400, `"line":1,"field":"channel"`},
		{"a malformed hash", olga, "POST", "/v1/brands/baku/suppressions", `{"channel":"sms","hash":"a.b*","reason":"x"}`, 400, `"field":"hash"`},
		{"an unknown field", olga, "POST", "/v1/brands/baku/suppressions", `{"channel":"sms","address":"1","why":"x"}`, 400, `"line":1`},
		{"nothing was saved", olga, "GET", "/v1/brands/baku/suppressions/" + hash, "", 404, `"field":"hash"`},
		{"the privacy officer imports", olga, "POST", "/v1/brands/baku/suppressions",
			`{"channel":"sms","address":"+994 50 111 22 99","reason":"complaint"}` + "\n", 200, hash},
		{"the entry names source and actor, not the number", olga, "GET", "/v1/brands/baku/suppressions/" + hash, "", 200, `"source":"suppression-import","actor":"olga"`},
		{"a malformed hash in the path", olga, "DELETE", "/v1/brands/baku/suppressions/xyz", "", 400, `"field":"hash"`},
	})
	bustest.Eventually(t, 5*time.Second, "the suppression in routing's cache", func() bool {
		return f.cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelSMS: phone}).Has(crmv1.ChannelSMS)
	})
	// Even with consent given back, a suppressed number is not a channel (step 4).
	f.run(t, []step{{"the desk grants marketing SMS again", aysel, "PUT", "/v1/brands/baku/players/p-20/preferences",
		`{"choices":[{"category":"marketing","channel":"sms","state":"granted"}]}`, 200, `"player":"p-20"`}})
	st, ex, body = explain(nigar, "?campaign=daily-spins")
	if st != 200 || ex.Decision.Reason != route.ReasonNoChannel || ex.Decision.Step != 4 {
		t.Fatalf("explain with the number suppressed: %d %s", st, body)
	}
	sup, err := api.ReadSubject(ctx, f.js, bus.StreamConsent, bus.SuppressionConsentSubject("baku", hash))
	if err != nil || len(sup) != 1 || !strings.Contains(string(sup[0]), `"source":"suppression-import"`) {
		t.Fatalf("the suppression in the ledger: %d %v", len(sup), err)
	}
	f.run(t, []step{
		{"taken off the list", olga, "DELETE", "/v1/brands/baku/suppressions/" + hash, "", 204, ""},
		{"gone", olga, "DELETE", "/v1/brands/baku/suppressions/" + hash, "", 404, "not on the suppression list"},
	})
	bustest.Eventually(t, 5*time.Second, "the suppression leaves routing's cache", func() bool {
		return f.cache.Suppressed("baku", map[crmv1.Channel]string{crmv1.ChannelSMS: phone}) == 0
	})

	// History: what the owner decided, with the player's local time for "why at night".
	paid := time.Date(2026, 11, 21, 22, 14, 0, 0, time.UTC)
	// A marketing SMS between the withdrawal and the grant after it is the violation.
	ledger = consent(t, f.js, "p-20")
	if len(ledger) != 3 || !ledger[2].Granted {
		t.Fatalf("ledger: %+v", ledger)
	}
	between := ledger[1].Time.Add(ledger[2].Time.Sub(ledger[1].Time) / 2)
	for _, o := range []bus.Outcome{
		{Time: paid, DecisionID: "d-pay", Brand: "baku", Player: "p-20", Campaign: "withdrawal-paid", Kind: bus.OutcomeDecision, Category: "service",
			Result: "send", Reason: string(route.ReasonMandatoryBypass), Channel: crmv1.ChannelSMS, RouteStep: 6},
		{Time: between, DecisionID: "d-spins", Brand: "baku", Player: "p-20", Campaign: "daily-spins", Kind: bus.OutcomeDecision,
			Category: "marketing", Result: "send", Reason: string(route.ReasonSent), Channel: crmv1.ChannelSMS},
		{Time: ledger[2].Time.Add(time.Minute), DecisionID: "d-spins-2", Brand: "baku", Player: "p-20", Campaign: "daily-spins", Kind: bus.OutcomeDecision,
			Category: "marketing", Result: "send", Reason: string(route.ReasonSent), Channel: crmv1.ChannelSMS},
	} {
		b, _ := bus.Encode(o)
		if _, err := f.js.Publish(ctx, bus.OutcomeSubject("baku", bus.Partition("p-20", parts), "p-20"), b); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t, []step{
		{"history for an analyst", nigar, "GET", "/v1/brands/baku/players/p-20/history", "", 200, `"reason":"MandatoryBypassQuietHours","routeStep":6,"channel":"sms","local":"2026-11-22 02:14 +04"`},
		{"history needs authentication", caller{client: f.clientWith(nil)}, "GET", "/v1/brands/baku/players/p-20/history", "", 401, "authentication required"},
		// The consent report finds the marketing SMS sent after the desk's withdrawal.
		{"the report names the violation", olga, "GET", "/v1/brands/baku/consent/report?player=p-20", "", 200, `"decisionID":"d-spins"`},
		{"and is not ok", olga, "GET", "/v1/brands/baku/consent/report", "", 200, `"marketingSendsChecked":2,"violations":[{"player":"p-20","channel":"sms"`},
	})

	_, raw := f.do(t, olga, "GET", "/v1/brands/baku/consent/report?player=p-20", "")
	var rep api.ConsentReport
	if err := json.Unmarshal(raw, &rep); err != nil || rep.OK || len(rep.Violations) != 1 || rep.Violations[0].DecisionID != "d-spins" || rep.Violations[0].Source != prefs.SourceSupport {
		t.Fatalf("consent report: %s", raw)
	}

	// Nothing the desk or the list wrote holds the number.
	for _, stream := range []string{bus.StreamConsent, bus.StreamAudit} {
		s, _ := f.js.Stream(ctx, stream)
		info, _ := s.Info(ctx)
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			if m, err := s.GetMsg(ctx, seq); err == nil && bytes.Contains(m.Data, []byte("1112299")) {
				t.Errorf("%s holds the phone number: %s", stream, m.Data)
			}
		}
	}
}
