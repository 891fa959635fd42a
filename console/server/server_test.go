package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/console/live"
	"github.com/croupier-crm/croupier/console/server"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/people"
	"github.com/croupier-crm/croupier/internal/testenv"
)

const ns = "baku-casino"

type fixture struct {
	url    string
	tokens map[string]string
	admin  client.Client
	env    *envtest.Environment
}

var fx fixture

func TestMain(m *testing.M) {
	env, err := testenv.Start(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer func() { _ = env.Stop() }()
		ctx := context.Background()
		admin, err := client.New(env.Config, client.Options{Scheme: kube.Scheme})
		if err != nil {
			panic(err)
		}
		objs, err := manifests.ReadDir(filepath.Join("..", "..", "config", "rbac", "people"))
		if err != nil {
			panic(err)
		}
		for _, u := range objs {
			if u.GetKind() != "" {
				if err := admin.Create(ctx, u); err != nil {
					panic(err)
				}
			}
		}
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			panic(err)
		}
		cs := kubernetes.NewForConfigOrDie(env.Config)
		tokens, err := people.Ensure(ctx, cs, ns, 3600)
		if err != nil {
			panic(err)
		}
		h, err := console.New(console.Options{Cluster: &kube.Cluster{Host: env.Config.Host, CA: env.Config.CAData}, Brands: []string{ns}}, nil)
		if err != nil {
			panic(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		fx = fixture{url: srv.URL, tokens: tokens, admin: admin, env: env}
		return m.Run()
	}()
	os.Exit(code)
}

// browser is a person's browser: a cookie jar and the CSRF token from sign-in.
type browser struct {
	t    testing.TB
	c    *http.Client
	csrf string
	url  string
}

func signIn(t testing.TB, person string) *browser {
	t.Helper()
	return signInAt(t, fx.url, fx.tokens, person)
}

func signInAt(t testing.TB, url string, tokens map[string]string, person string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: url}
	code, body := b.do("POST", "/api/session", fmt.Sprintf(`{"token":%q}`, tokens[person]), nil)
	if code != 200 {
		t.Fatalf("sign-in as %s: %d %s", person, code, body)
	}
	var me struct{ User, CSRF string }
	_ = json.Unmarshal([]byte(body), &me)
	if !strings.HasSuffix(me.User, ":"+people.Account(person)) || me.CSRF == "" {
		t.Fatalf("sign-in as %s: %s", person, body)
	}
	b.csrf = me.CSRF
	return b
}

func (b *browser) do(method, path, body string, hdr map[string]string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if method != "GET" {
		req.Header.Set("Origin", b.url)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (b *browser) mutate(method, path, body string) (int, string) {
	return b.do(method, path, body, map[string]string{"X-CSRF-Token": b.csrf})
}

func sampleCampaign(t testing.TB, name string) {
	t.Helper()
	objs, err := manifests.ReadDir(filepath.Join("..", "..", "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == "Campaign" {
			u.SetNamespace(ns)
			u.SetName(name)
			if err := fx.admin.Create(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no Campaign among the samples")
}

// TestPeopleActAsThemselves: the console signs people in with their token and makes every
// call as them: the marketer pauses a campaign, the analyst's pause is refused by the API
// server (403), and neither gets anything without a session, a CSRF token or their own
// origin.
func TestPeopleActAsThemselves(t *testing.T) {
	sampleCampaign(t, "spring-promo")
	marketer, analyst := signIn(t, "marketer"), signIn(t, "analyst")

	code, body := analyst.do("GET", "/api/brands/"+ns+"/campaigns", "", nil)
	var rows []live.Row
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 1 || rows[0].Name != "spring-promo" {
		t.Fatalf("the analyst's campaign list: %d %s", code, body)
	}
	// What the front end shows follows the rules the API server reports.
	for person, want := range map[*browser]bool{marketer: true, analyst: false} {
		code, body := person.do("GET", "/api/brands/"+ns+"/access", "", nil)
		var a kube.Access
		if code != 200 || json.Unmarshal([]byte(body), &a) != nil {
			t.Fatalf("access: %d %s", code, body)
		}
		if got := a.Can("crm.croupier.dev", "campaigns", "patch"); got != want {
			t.Errorf("may patch campaigns: %v, want %v (%s)", got, want, body)
		}
	}

	if code, body := analyst.mutate("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true}`); code != 403 || !strings.Contains(body, "forbidden") {
		t.Errorf("the analyst's pause: %d %s, want 403 from the API server", code, body)
	}
	if code, body := marketer.do("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true}`, nil); code != 403 || !strings.Contains(body, "CSRF") {
		t.Errorf("a pause without the CSRF token: %d %s", code, body)
	}
	if code, body := marketer.do("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true}`,
		map[string]string{"X-CSRF-Token": marketer.csrf, "Origin": "https://evil.example"}); code != 403 {
		t.Errorf("a pause from another origin: %d %s", code, body)
	}
	if code, body := marketer.do("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true}`,
		map[string]string{"X-CSRF-Token": analyst.csrf}); code != 403 {
		t.Errorf("a pause with another person's CSRF token: %d %s", code, body)
	}
	if code, body := marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":"yes"}`); code != 400 || !strings.Contains(body, "paused") {
		t.Errorf("a malformed pause: %d %s", code, body)
	}
	if code, body := marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true}`); code != 200 {
		t.Fatalf("the marketer's pause: %d %s", code, body)
	}
	var cp crmv1.Campaign
	if err := fx.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "spring-promo"}, &cp); err != nil || !cp.Spec.Paused {
		t.Fatalf("after the pause: %v %v", cp.Spec.Paused, err)
	}
	manager := ""
	for _, mf := range cp.ManagedFields {
		if strings.Contains(string(mf.FieldsV1.Raw), "paused") {
			manager = mf.Manager
		}
	}
	if manager != "croupier-console" {
		t.Errorf("spec.paused is managed by %q, want croupier-console", manager)
	}

	// No session, a forged cookie, a refused token, a bad path, an oversized body.
	anon := &browser{t: t, c: &http.Client{}, url: fx.url}
	if code, _ := anon.do("GET", "/api/brands/"+ns+"/campaigns", "", nil); code != 401 {
		t.Errorf("without a session: %d", code)
	}
	if code, _ := anon.do("GET", "/api/me", "", map[string]string{"Cookie": "croupier_session=AAAA" + strings.Repeat("B", 80)}); code != 401 {
		t.Errorf("a forged cookie: %d", code)
	}
	if code, body := anon.do("POST", "/api/session", `{"token":"not-a-token"}`, nil); code != 401 || !strings.Contains(body, "refused") {
		t.Errorf("a refused token: %d %s", code, body)
	}
	if code, body := anon.do("POST", "/api/session", `{"token":"`+strings.Repeat("x", 70000)+`"}`, nil); code != 413 {
		t.Errorf("an oversized sign-in: %d %s", code, body)
	}
	if code, body := marketer.do("GET", "/api/brands/Baku_Casino/campaigns", "", nil); code != 400 || !strings.Contains(body, "brand") {
		t.Errorf("a bad brand: %d %s", code, body)
	}
	if code, body := marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/spring-promo/paused", `{"paused":true,"x":"`+strings.Repeat("x", 2<<20)+`"}`); code != 413 && code != 400 {
		t.Errorf("an oversized pause: %d %s", code, body)
	}
	// The person who signs out has no session left.
	if code, _ := marketer.mutate("DELETE", "/api/session", ""); code != 204 {
		t.Errorf("sign-out: %d", code)
	}
	if code, _ := marketer.do("GET", "/api/me", "", nil); code != 401 {
		t.Errorf("after sign-out: %d", code)
	}
}

// TestLiveStreamFollowsTheStatus: the dashboard's stream starts with the list and passes
// on a status change the manager writes.
func TestLiveStreamFollowsTheStatus(t *testing.T) {
	sampleCampaign(t, "live-promo")
	analyst := signIn(t, "analyst")
	req, _ := http.NewRequest("GET", fx.url+"/api/brands/"+ns+"/live", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := analyst.c.Do(req.WithContext(ctx))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("live: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan live.Event, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev live.Event
				if json.Unmarshal([]byte(d), &ev) == nil {
					events <- ev
				}
			}
		}
		close(events)
	}()
	next := func() live.Event {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			return ev
		case <-time.After(time.Minute):
			t.Fatal("nothing on the stream for a minute")
		}
		return live.Event{}
	}
	if ev := next(); ev.Kind != "snapshot" || len(ev.Rows) == 0 {
		t.Fatalf("first event: %+v", ev)
	}
	var cp crmv1.Campaign
	if err := fx.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "live-promo"}, &cp); err != nil {
		t.Fatal(err)
	}
	cp.Status.Counters = &crmv1.CampaignCounters{Targeted: 120, Sent: 118, Delivered: 101}
	if err := fx.admin.Status().Update(ctx, &cp); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next()
		if ev.Kind == "upsert" && ev.Rows[0].Name == "live-promo" && ev.Rows[0].Status.Counters != nil && ev.Rows[0].Status.Counters.Delivered == 101 {
			return
		}
	}
}

// TestEditValidateAndSave: the marketer reads a campaign's YAML, a dry run as them reports
// the API server's refusal by field, a fixed edit saves with server-side apply (field
// manager croupier-console); a save on a stale resourceVersion is a conflict, not an
// overwrite; the analyst's save is refused by the API server; a campaign applied from Git
// is not applied over.
func TestEditValidateAndSave(t *testing.T) {
	sampleCampaign(t, "edit-promo")
	marketer, analyst := signIn(t, "marketer"), signIn(t, "analyst")
	code, body := marketer.do("GET", "/api/brands/"+ns+"/campaigns/edit-promo/yaml", "", nil)
	var ed server.Edit
	if code != 200 || json.Unmarshal([]byte(body), &ed) != nil || !strings.Contains(ed.YAML, "kind: Campaign") || ed.ResourceVersion == "" {
		t.Fatalf("the YAML: %d %s", code, body)
	}
	if strings.Contains(ed.YAML, "status:") || strings.Contains(ed.YAML, "managedFields") {
		t.Errorf("the editable YAML holds what the server owns:\n%s", ed.YAML)
	}
	edit := func(y, rv string) string {
		b, _ := json.Marshal(server.Edit{YAML: y, ResourceVersion: rv})
		return string(b)
	}
	priority := regexp.MustCompile(`(?m)^  priority: \d+$`)
	if !priority.MatchString(ed.YAML) {
		t.Fatalf("no priority in:\n%s", ed.YAML)
	}
	bad := priority.ReplaceAllString(ed.YAML, "  priority: 1000")
	code, body = marketer.mutate("POST", "/api/brands/"+ns+"/campaigns/edit-promo/validate", edit(bad, ed.ResourceVersion))
	var ck server.Checked
	_ = json.Unmarshal([]byte(body), &ck)
	if code != 422 || len(ck.Causes) == 0 || ck.Causes[0].Field != "spec.priority" {
		t.Fatalf("the dry run of priority 1000: %d %s", code, body)
	}
	if code, body := marketer.mutate("POST", "/api/brands/"+ns+"/campaigns/edit-promo/validate", edit("kind: Campaign\nmetadata: {name: other}\n", "")); code != 422 || !strings.Contains(body, "metadata.name") {
		t.Errorf("YAML of another campaign: %d %s", code, body)
	}
	if code, body := marketer.mutate("POST", "/api/brands/"+ns+"/campaigns/edit-promo/validate", edit("spec: [unclosed", "")); code != 422 || !strings.Contains(body, "yaml") {
		t.Errorf("broken YAML: %d %s", code, body)
	}
	// A CEL condition that does not compile: the API server takes it, the manager would
	// not; the console says so on the step's field, by index, on a check and on a save.
	if !strings.Contains(ed.YAML, "when: player.betCount > 0") {
		t.Fatalf("the sample's branch is not there:\n%s", ed.YAML)
	}
	cel := strings.Replace(ed.YAML, "when: player.betCount > 0", "when: player.betCount >", 1)
	for _, m := range []string{"POST", "PUT"} {
		path := "/api/brands/" + ns + "/campaigns/edit-promo"
		if m == "POST" {
			path += "/validate"
		}
		code, body = marketer.mutate(m, path, edit(cel, ed.ResourceVersion))
		_ = json.Unmarshal([]byte(body), &ck)
		if code != 422 || len(ck.Causes) != 1 || ck.Causes[0].Field != "spec.steps[5].branch.cases[0].when" || !strings.Contains(ck.Error, "manager") {
			t.Fatalf("%s of a CEL condition that does not compile: %d %s", m, code, body)
		}
	}
	good := priority.ReplaceAllString(ed.YAML, "  priority: 77")
	if code, body := marketer.mutate("POST", "/api/brands/"+ns+"/campaigns/edit-promo/validate", edit(good, ed.ResourceVersion)); code != 200 {
		t.Fatalf("the dry run of priority 77: %d %s", code, body)
	}
	var cp crmv1.Campaign
	if err := fx.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "edit-promo"}, &cp); err != nil || cp.Spec.Priority == 77 {
		t.Fatalf("a dry run stored the edit: %v %v", cp.Spec.Priority, err)
	}
	if code, body := analyst.mutate("PUT", "/api/brands/"+ns+"/campaigns/edit-promo", edit(good, ed.ResourceVersion)); code != 403 {
		t.Errorf("the analyst's save: %d %s", code, body)
	}
	code, body = marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/edit-promo", edit(good, ed.ResourceVersion))
	if code != 200 {
		t.Fatalf("the marketer's save: %d %s", code, body)
	}
	if err := fx.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "edit-promo"}, &cp); err != nil || cp.Spec.Priority != 77 {
		t.Fatalf("after the save: priority %d %v", cp.Spec.Priority, err)
	}
	// The editor still holds the first resourceVersion: saving again is a conflict.
	again := priority.ReplaceAllString(ed.YAML, "  priority: 12")
	if code, body := marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/edit-promo", edit(again, ed.ResourceVersion)); code != 409 || !strings.Contains(body, "changed since") {
		t.Errorf("a save on a stale resourceVersion: %d %s", code, body)
	}
	if err := fx.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "edit-promo"}, &cp); err != nil || cp.Spec.Priority != 77 {
		t.Fatalf("the stale save changed the campaign: priority %d", cp.Spec.Priority)
	}
	// Under Argo CD: refused with the reason, whatever the resourceVersion.
	cp.Labels = map[string]string{"argocd.argoproj.io/instance": "baku"}
	if err := fx.admin.Update(context.Background(), &cp); err != nil {
		t.Fatal(err)
	}
	code, body = marketer.do("GET", "/api/brands/"+ns+"/campaigns/edit-promo/yaml", "", nil)
	_ = json.Unmarshal([]byte(body), &ed)
	if code, body := marketer.mutate("PUT", "/api/brands/"+ns+"/campaigns/edit-promo", edit(ed.YAML, ed.ResourceVersion)); code != 409 || !strings.Contains(body, "Git") {
		t.Errorf("a save under GitOps: %d %s", code, body)
	}
}

// TestSegmentEditor: the segment editor saves a rule as the person (the marketer creates
// and edits, the analyst is refused by the API server), refuses a rule the controller
// would not compile with its position, and a stale edit is a conflict.
func TestSegmentEditor(t *testing.T) {
	marketer, analyst := signIn(t, "marketer"), signIn(t, "analyst")
	path := "/api/brands/" + ns + "/segments/vip-az"
	if code, body := marketer.mutate("PUT", path, `{"rule":"player.vipLevel >=","description":"VIPs"}`); code != 422 || !strings.Contains(body, `"field":"spec.rule"`) {
		t.Fatalf("a rule that does not compile: %d %s", code, body)
	}
	if code, body := analyst.mutate("PUT", path, `{"rule":"player.vipLevel >= 3","description":"VIPs"}`); code != 403 {
		t.Fatalf("the analyst's segment: %d %s", code, body)
	}
	code, body := marketer.mutate("PUT", path, `{"rule":"player.vipLevel >= 3 && player.country == \"AZ\"","description":"VIPs in Azerbaijan"}`)
	var row server.SegmentRow
	if code != 200 || json.Unmarshal([]byte(body), &row) != nil || row.ResourceVersion == "" {
		t.Fatalf("the marketer's new segment: %d %s", code, body)
	}
	var sg crmv1.Segment
	if err := fx.admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "vip-az"}, &sg); err != nil || sg.Spec.Rule != `player.vipLevel >= 3 && player.country == "AZ"` {
		t.Fatalf("the segment on the API server: %+v %v", sg.Spec, err)
	}
	edit := func(rule, rv string) string {
		b, _ := json.Marshal(server.SegmentEdit{Rule: rule, Description: "VIPs", ResourceVersion: rv})
		return string(b)
	}
	if code, body := marketer.mutate("PUT", path, edit("player.vipLevel >= 4", row.ResourceVersion)); code != 200 {
		t.Fatalf("an edit: %d %s", code, body)
	}
	if code, body := marketer.mutate("PUT", path, edit("player.vipLevel >= 5", row.ResourceVersion)); code != 409 {
		t.Fatalf("a stale edit: %d %s", code, body)
	}
	code, body = analyst.do("GET", "/api/brands/"+ns+"/segments", "", nil)
	if code != 200 || !strings.Contains(body, `"rule":"player.vipLevel \u003e= 4"`) {
		t.Fatalf("the analyst's list: %d %s", code, body)
	}
}

// TestMessageBodiesInConfigMaps: the studio reads a body a Campaign keeps in a ConfigMap
// and saves it there as the person: the marketer may, the analyst may only read; an edit
// made on an older version is refused, never written over.
func TestMessageBodiesInConfigMaps(t *testing.T) {
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "promo-email"}, Data: map[string]string{"az.html": "<p>Salam</p>"}}
	if err := fx.admin.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	marketer, analyst := signIn(t, "marketer"), signIn(t, "analyst")
	path := "/api/brands/" + ns + "/bodies/promo-email/az.html"
	code, body := marketer.do("GET", path, "", nil)
	var b server.Body
	if code != 200 || json.Unmarshal([]byte(body), &b) != nil || b.Value != "<p>Salam</p>" || b.ResourceVersion == "" {
		t.Fatalf("the marketer reads the body: %d %s", code, body)
	}
	if code, body := analyst.do("GET", path, "", nil); code != 200 || !strings.Contains(body, "Salam") {
		t.Fatalf("the analyst reads the body: %d %s", code, body)
	}
	save := func(who *browser, value, rv string) (int, string) {
		raw, _ := json.Marshal(server.Body{Value: value, ResourceVersion: rv})
		return who.mutate("PUT", path, string(raw))
	}
	if code, body := save(analyst, "<p>Hacked</p>", b.ResourceVersion); code != 403 {
		t.Fatalf("the analyst's save: %d %s", code, body)
	}
	if code, body := save(marketer, "<h1>Xoş gəldiniz!</h1>", b.ResourceVersion); code != 200 {
		t.Fatalf("the marketer's save: %d %s", code, body)
	}
	var got corev1.ConfigMap
	if err := fx.admin.Get(ctx, client.ObjectKeyFromObject(cm), &got); err != nil || got.Data["az.html"] != "<h1>Xoş gəldiniz!</h1>" {
		t.Fatalf("the ConfigMap on the API server: %v %v", got.Data, err)
	}
	if code, body := save(marketer, "<p>Old tab</p>", b.ResourceVersion); code != 409 || !strings.Contains(body, "changed since you opened it") {
		t.Fatalf("a save on an older version: %d %s", code, body)
	}
	if code, body := marketer.do("GET", "/api/brands/"+ns+"/bodies/promo-email/ru.html", "", nil); code != 404 || !strings.Contains(body, "no key ru.html") {
		t.Fatalf("a key the ConfigMap has not: %d %s", code, body)
	}
	if code, body := marketer.do("GET", "/api/brands/"+ns+"/bodies/promo-email/a%20b", "", nil); code != 400 || !strings.Contains(body, "key:") {
		t.Fatalf("a key that is no key: %d %s", code, body)
	}
	if code, _ := marketer.do("PUT", path, `{"value":"x","resourceVersion":"1"}`, nil); code != 403 {
		t.Fatalf("a save without the CSRF token: %d", code)
	}
}

// TestHeaders: every answer carries the policy: scripts and style elements only from the
// console itself, inline style attributes allowed (the studio's email preview shows the
// inline styles emails are made of), no framing.
func TestHeaders(t *testing.T) {
	resp, err := http.Get(fx.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self';", "style-src 'self';", "style-src-attr 'unsafe-inline';", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Count(csp, "'unsafe-inline'") != 1 || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows more inline than style attributes", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
}

// TestReportsListed: the Reports page's list, as the person: the marketer sees the brand's
// Report with its schedule, counted recipients (not their addresses), next run and last
// error; the support agent, who may not read Reports, is refused by the API server.
func TestReportsListed(t *testing.T) {
	ctx := context.Background()
	rp := &crmv1.Report{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly-digest"},
		Spec: crmv1.ReportSpec{Schedule: crmv1.ReportSchedule{Cron: "0 8 * * 1", TimeZone: "Asia/Baku"},
			Recipients: []string{"cmo@baku.example", "crm@baku.example"}, Formats: []crmv1.ReportFormat{crmv1.ReportPDF, crmv1.ReportCSV},
			Contents: []crmv1.ReportContent{crmv1.ReportChannels}, Period: crmv1.PeriodLast7Days, Language: "az", Title: "Həftəlik"}}
	if err := fx.admin.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	next := metav1.NewTime(time.Date(2026, 12, 14, 4, 0, 0, 0, time.UTC))
	rp.Status.NextRunTime, rp.Status.LastError = &next, "mailing recipient 1 of 2: connection refused"
	if err := fx.admin.Status().Update(ctx, rp); err != nil {
		t.Fatal(err)
	}
	code, body := signIn(t, "marketer").do("GET", "/api/brands/"+ns+"/reports", "", nil)
	var rows []server.ReportRow
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil {
		t.Fatalf("the marketer's reports: %d %s", code, body)
	}
	var got *server.ReportRow
	for i := range rows {
		if rows[i].Name == "weekly-digest" {
			got = &rows[i]
		}
	}
	if got == nil || got.Cron != "0 8 * * 1" || got.TimeZone != "Asia/Baku" || got.Recipients != 2 || len(got.Formats) != 2 ||
		got.Title != "Həftəlik" || got.NextRun == nil || !got.NextRun.Equal(next.Time) || !strings.Contains(got.LastError, "connection refused") {
		t.Fatalf("the row: %+v", got)
	}
	if strings.Contains(body, "@baku.example") {
		t.Fatalf("the list names the recipients: %s", body)
	}
	if code, body := signIn(t, "support-agent").do("GET", "/api/brands/"+ns+"/reports", "", nil); code != 403 {
		t.Fatalf("the support agent's reports: %d %s", code, body)
	}
}
