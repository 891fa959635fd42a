package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/cli"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/testenv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(&out, &errOut)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// The plugin against a real API server (status, pause, resume) and a dispatcher stand-in
// over TLS that checks the request carries the kubeconfig user's client certificate.
func TestPlugin(t *testing.T) {
	env, err := testenv.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtestUser("leyla"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := env.AddUser(envtestUser("admin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = crmv1.AddToScheme(scheme.Scheme)
	c, err := client.New(admin.Config(), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "baku"}}); err != nil {
		t.Fatal(err)
	}
	cp := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "baku", Name: "daily-spins"}, Spec: crmv1.CampaignSpec{
		Category: crmv1.CategoryMarketing, Trigger: crmv1.Trigger{Schedule: &crmv1.ScheduleTrigger{Cron: "0 10 * * *"}},
		Audience: &crmv1.Audience{Rule: "true"},
		Steps:    []crmv1.Step{{Name: "offer", Send: &crmv1.SendStep{Content: "spins"}}},
		Contents: []crmv1.Content{{Name: "spins", Messages: []crmv1.Message{{Channel: crmv1.ChannelPush, Locale: "az", Subject: "Salam", Body: "20 pulsuz"}}}},
		Budget:   &crmv1.Budget{Total: &crmv1.Money{Amount: "500.00", Currency: "AZN"}}}}
	if err := c.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	cp.Status.Phase = crmv1.PhaseScheduled
	cp.Status.Counters = &crmv1.CampaignCounters{Sent: 1200, Delivered: 1100, Converted: 90}
	cp.Status.Spend = &crmv1.SpendStatus{Spent: &crmv1.Money{Amount: "120.5", Currency: "AZN"}}
	cp.Status.Report = &crmv1.CampaignReport{Currency: "AZN", MessageCost: "12", RewardCost: "108.5", Revenue: "900.00", Conversions: 90, CPA: "1.338888",
		Leads: 30, CPL: "4.016666", ROI: "6.47"}
	cp.Status.Channels = []crmv1.ChannelReport{{Channel: crmv1.ChannelPush, Sent: 1200, Opened: 310, Clicked: 55, Converted: 70, MessageCost: "12", Revenue: "700.00", CPA: "0.171428"}}
	cp.Status.Conditions = []metav1.Condition{{Type: crmv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Published", Message: "published", LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(ctx, cp); err != nil {
		t.Fatal(err)
	}

	// A second campaign by SMS, whose aggregator sends delivery reports, with nothing spent.
	sms := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "baku", Name: "kyc-sms"}, Spec: crmv1.CampaignSpec{
		Category: crmv1.CategoryService, Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed"}},
		Steps:    []crmv1.Step{{Name: "notice", Send: &crmv1.SendStep{Content: "kyc"}}},
		Contents: []crmv1.Content{{Name: "kyc", Messages: []crmv1.Message{{Channel: crmv1.ChannelSMS, Locale: "az", Body: "KYC tamamlandı"}}}},
		Budget:   &crmv1.Budget{Total: &crmv1.Money{Amount: "100", Currency: "AZN"}}}}
	if err := c.Create(ctx, sms); err != nil {
		t.Fatal(err)
	}
	sms.Status.Counters = &crmv1.CampaignCounters{Sent: 40, Delivered: 37}
	if err := c.Status().Update(ctx, sms); err != nil {
		t.Fatal(err)
	}
	for _, cpol := range []*crmv1.ChannelPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "baku", Name: "sms"}, Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelSMS,
			Providers: []crmv1.Provider{{Name: "aggregator", Type: crmv1.ProviderSMSRest, Endpoint: "https://sms.example.az/send"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "baku", Name: "push"}, Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelPush,
			Providers: []crmv1.Provider{{Name: "fcm", Type: crmv1.ProviderFCM, Endpoint: "https://fcm.googleapis.com"}}}},
	} {
		if err := c.Create(ctx, cpol); err != nil {
			t.Fatal(err)
		}
	}

	// leyla has no rights yet: the API server refuses her, and the plugin says so.
	if out, err := run(t, "status", "--kubeconfig", kubeconfig, "-n", "baku"); err == nil || !strings.Contains(out, "forbidden") {
		t.Fatalf("status without rights: %v %s", err, out)
	}
	roles, err := manifests.ReadDir(filepath.Join("..", "..", "config", "rbac", "people"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &rbacBinding); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "status", "--kubeconfig", kubeconfig, "-n", "baku")
	if err != nil || !strings.Contains(out, "daily-spins") || !strings.Contains(out, "1200") || !strings.Contains(out, "120.50 AZN / 500.00 AZN") ||
		!strings.Contains(out, "Scheduled") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// SENT beside DELIVERED; DELIVERED only where a channel has delivery reports; one
	// money form, nothing spent included.
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if h := rows["CAMPAIGN"]; len(h) < 6 || h[3] != "SENT" || h[4] != "DELIVERED" {
		t.Errorf("status header %v: want SENT then DELIVERED", h)
	}
	if r := rows["daily-spins"]; len(r) < 5 || r[3] != "1200" || r[4] != "-" {
		t.Errorf("push campaign row %v: want SENT 1200 and DELIVERED - (push has no delivery reports)", r)
	}
	if r := rows["kyc-sms"]; len(r) < 5 || r[3] != "40" || r[4] != "37" {
		t.Errorf("SMS campaign row %v: want SENT 40 and DELIVERED 37", r)
	}
	// The report: the status's figures, per channel, in the one money form.
	rep, err := run(t, "report", "daily-spins", "--kubeconfig", kubeconfig, "-n", "baku")
	if err != nil {
		t.Fatalf("report: %v\n%s", err, rep)
	}
	for _, want := range []string{"sent               1200", "revenue            900.00 AZN", "cpa                1.338888 AZN",
		"cpl                4.016666 AZN", "roi                6.47 (647%)",
		"push     1200  0          310     55       0        0           0             0       0            70         12.00 AZN     700.00 AZN  0.171428 AZN"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report: no %q in\n%s", want, rep)
		}
	}
	if !strings.Contains(out, "0.00 AZN / 100.00 AZN") {
		t.Errorf("a campaign with nothing spent: want \"0.00 AZN / 100.00 AZN\" in\n%s", out)
	}
	if out, err := run(t, "pause", "daily-spins", "--kubeconfig", kubeconfig, "-n", "baku"); err != nil || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %v %s", err, out)
	}
	_ = c.Get(ctx, client.ObjectKeyFromObject(cp), cp)
	if !cp.Spec.Paused {
		t.Fatal("spec.paused not set")
	}
	if _, err := run(t, "resume", "daily-spins", "--kubeconfig", kubeconfig, "-n", "baku"); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(ctx, client.ObjectKeyFromObject(cp), cp)
	if cp.Spec.Paused {
		t.Fatal("spec.paused still set")
	}
	// can-i answers for the admin API's virtual resources, which kubectl auth can-i cannot
	// look up: a marketer may explain and preview, not erase.
	for _, c := range []struct {
		verb, resource, want string
		ok                   bool
	}{{"get", "players/explain", "yes", true}, {"get", "campaigns/preview", "yes", true}, {"create", "players/erase", "no", false}, {"get", "consent/report", "no", false}} {
		out, err := run(t, "can-i", c.verb, c.resource, "--kubeconfig", kubeconfig, "-n", "baku")
		if (err == nil) != c.ok || strings.TrimSpace(strings.Split(out, "\n")[0]) != c.want {
			t.Errorf("can-i %s %s: %v %q, want %s", c.verb, c.resource, err, out, c.want)
		}
	}
	if out, err := run(t, "can-i", "get", "players", "--kubeconfig", kubeconfig, "-n", "baku"); err == nil || !strings.Contains(out, "players/explain") {
		t.Errorf("can-i of a resource the admin API does not have: %v %q", err, out)
	}
	if out, _ := run(t, "pause", "--help"); !strings.Contains(out, "Argo CD") {
		t.Fatalf("pause help does not mention GitOps: %s", out)
	}

	// The dispatcher stand-in: it answers only a client certificate of leyla's.
	var seen []string
	disp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "leyla" {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"error":"authentication required"}`)
			return
		}
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		switch {
		case strings.HasSuffix(r.URL.Path, "/preview"):
			_ = json.NewEncoder(w).Encode(map[string]any{"audience": 42, "wouldSend": 30, "step": "offer",
				"byChannel": map[string]int{"push": 30}, "byLocale": map[string]int{"push/az": 21, "push/ru": 9}, "suppressed": map[string]int{"NoConsent": 12}})
		case strings.HasSuffix(r.URL.Path, "/testsend"):
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"player":"p-seed"`) {
				w.WriteHeader(400)
				return
			}
			w.WriteHeader(202)
			_, _ = io.WriteString(w, `{"intentId":"test-1","step":"offer"}`)
		case strings.HasSuffix(r.URL.Path, "/history"):
			_, _ = io.WriteString(w, `{"player":"p-seed","records":[]}`)
		default:
			w.WriteHeader(403)
			_, _ = io.WriteString(w, `{"error":"user \"leyla\" may not get players/explain"}`)
		}
	}))
	disp.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	disp.StartTLS()
	defer disp.Close()
	flags := []string{"--kubeconfig", kubeconfig, "-n", "baku", "--dispatcher", disp.URL, "--insecure-skip-dispatcher-verify"}
	out, err = run(t, append([]string{"preview", "daily-spins"}, flags...)...)
	if err != nil || !strings.Contains(out, "audience 42, would send 30") || !strings.Contains(out, "NoConsent") ||
		!regexp.MustCompile(`by locale\s+push/ru\s+9`).MatchString(out) {
		t.Fatalf("preview: %v\n%s", err, out)
	}
	if out, err = run(t, append([]string{"test-send", "daily-spins", "--to", "p-seed"}, flags...)...); err != nil || !strings.Contains(out, "test-1") {
		t.Fatalf("test-send: %v\n%s", err, out)
	}
	if out, err = run(t, append([]string{"history", "p-seed"}, flags...)...); err != nil || !strings.Contains(out, `"player": "p-seed"`) {
		t.Fatalf("history: %v\n%s", err, out)
	}
	if out, err = run(t, append([]string{"explain", "p-seed", "--campaign", "daily-spins"}, flags...)...); err == nil || !strings.Contains(out, "may not get players/explain") {
		t.Fatalf("explain refused: %v\n%s", err, out)
	}
	want := []string{"GET /v1/brands/baku/campaigns/daily-spins/preview", "POST /v1/brands/baku/campaigns/daily-spins/testsend",
		"GET /v1/brands/baku/players/p-seed/history", "GET /v1/brands/baku/players/p-seed/explain?campaign=daily-spins"}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s", strings.Join(seen, "\n"))
	}
}
