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
	"strings"
	"testing"
	"time"

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
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/manifests"
)

var (
	restCfg *rest.Config
	testEnv *envtest.Environment
	quiet   = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func TestMain(m *testing.M) {
	testEnv = &envtest.Environment{}
	var err error
	restCfg, err = testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the test API server (run hack/build-envtest.sh first): %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = testEnv.Stop()
	os.Exit(code)
}

const parts = 4

type fixture struct {
	js     jetstream.JetStream
	kube   kubernetes.Interface
	server *httptest.Server
}

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

	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	keeper := &players.Keeper{JS: js, Players: bustest.KV(t, js, bus.BucketPlayers), Log: quiet}
	runner := &partition.Runner{JS: js, Handler: keeper, Log: quiet}
	leases := &partition.Leases{KV: bustest.KV(t, js, bus.BucketLeases), Replica: "test", Partitions: parts, TTL: 3 * time.Second, Log: quiet}
	done := make(chan struct{})
	lctx, lcancel := context.WithCancel(context.Background())
	go func() { defer close(done); _ = leases.Run(lctx, runner.Callbacks()) }()
	t.Cleanup(func() { lcancel(); <-done })

	authn, authz, err := api.Delegated(ctx, kube)
	if err != nil {
		t.Fatal(err)
	}
	admin := &api.Admin{Authn: authn, Authz: authz, JS: js, Partitions: parts, Log: quiet}
	intake := &ingest.Intake{JS: js, Log: quiet, Keys: &ingest.SecretKeys{Config: bustest.KV(t, js, bus.BucketConfig), Secrets: kube.CoreV1()}}
	mux := http.NewServeMux()
	admin.Register(mux)
	mux.Handle("POST /v1/brands/{brand}/events", intake)
	hs := httptest.NewUnstartedServer(mux)
	hs.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return &fixture{js: js, kube: kube, server: hs}
}

// clientWith returns an HTTPS client trusting the test server, presenting cert if given.
func (f *fixture) clientWith(cert *tls.Certificate) *http.Client {
	tr := f.server.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
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

	// olga: a person with a client certificate from the cluster's client CA.
	olgaUser, err := testEnv.AddUser(envtest.User{Name: "olga"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	oc := olgaUser.Config()
	olgaCert, err := tls.X509KeyPair(oc.CertData, oc.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	olga := caller{client: f.clientWith(&olgaCert)}
	// importer: a ServiceAccount with a bound token.
	if _, err := f.kube.CoreV1().ServiceAccounts("baku").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "importer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := f.kube.CoreV1().ServiceAccounts("baku").CreateToken(ctx, "importer", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	importer := caller{client: f.clientWith(nil), token: tr.Status.Token}
	anonymous := caller{client: f.clientWith(nil)}
	forged := caller{client: f.clientWith(nil), token: "not-a-token"}

	profiles := `{"id":"p-1","country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"p-1@example.az","registeredAt":"2025-01-02T00:00:00Z","depositCount":4,"depositSum":"400.00","vipLevel":2,"attrs":{"crmTier":"gold"}}
{"id":"p-2","country":"AZ","language":"ru","timeZone":"Asia/Baku","currency":"AZN","phone":"+994501112233"}

{"id":"p-3","country":"TR","language":"tr","timeZone":"Europe/Istanbul","currency":"TRY","kycStatus":"passed","ageVerified":true}
`
	badLine := `{"id":"p-4","country":"AZ"}
{"id":"p-5","email":"not-an-address"}
`
	steps := []struct {
		name   string
		who    caller
		method string
		path   string
		body   string
		status int
		want   string
	}{
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
	}
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
		Data:       map[string][]byte{ingest.SecretHMACKey: []byte("k1"), ingest.SecretBearerToken: []byte("tok")},
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
}
