package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console"
	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/internal/browsertest"
	"github.com/croupier-crm/croupier/internal/gittest"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/people"
	"github.com/croupier-crm/croupier/internal/testenv"
)

const ns = "baku-casino"

// TestConsoleInABrowser drives the console in Debian's chromium against a real API server:
// the marketer signs in, watches a counter move live, pauses a campaign (found paused on
// the API server); the analyst finds no pause control and reads the brand; text from the
// API (a condition message with markup) is shown as text.
func TestConsoleInABrowser(t *testing.T) {
	bin := browsertest.Chromium(t)
	env, err := testenv.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	admin, err := client.New(env.Config, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.ReadDir(filepath.Join("..", "config", "rbac", "people"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "" {
			if err := admin.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	tokens, err := people.Ensure(ctx, kubernetes.NewForConfigOrDie(env.Config), ns, 3600)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := manifests.ReadDir(filepath.Join("..", "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range samples {
		if u.GetKind() == "Campaign" {
			u.SetNamespace(ns)
			u.SetName("spring-promo")
			if err := admin.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	h, err := console.New(console.Options{Cluster: &kube.Cluster{Host: env.Config.Host, CA: env.Config.CAData}, Brands: []string{ns}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	setStatus := func(mut func(*crmv1.Campaign)) {
		t.Helper()
		var cp crmv1.Campaign
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "spring-promo"}, &cp); err != nil {
			t.Fatal(err)
		}
		mut(&cp)
		if err := admin.Status().Update(ctx, &cp); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(b context.Context, person string) {
		t.Helper()
		browsertest.SignIn(t, b, srv.URL, tokens[person], "spring-promo")
	}
	counter := func(name string) string {
		return fmt.Sprintf(`tr[data-campaign="spring-promo"] td[data-counter=%q]`, name)
	}

	marketer := browsertest.Browse(t, bin)
	signIn(marketer, "marketer")
	who := browsertest.Value(t, marketer, chromedp.Text(chromedp.CSS(`[data-testid=who]`)))
	if !strings.Contains(who, people.Account("marketer")) {
		t.Errorf("header: %q", who)
	}
	// The manager writes counters into the status: the open dashboard shows them.
	setStatus(func(cp *crmv1.Campaign) {
		cp.Status.Counters = &crmv1.CampaignCounters{Targeted: 1200, Sent: 1180, Delivered: 1017, Suppressed: map[string]int64{"QuietHours": 7}}
		cp.Status.Channels = []crmv1.ChannelReport{{Channel: crmv1.ChannelSMS, Sent: 1180, Delivered: 1017, Clicked: 41, MessageCost: "23.6"}}
	})
	browsertest.Run(t, marketer, "the delivered counter moves live",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=live].live`)),
		browsertest.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent === "1,017"`, counter("delivered"))),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=suppressed]`)),
	)
	browsertest.Shoot(t, marketer, "dashboard")
	browsertest.Run(t, marketer, "pausing", chromedp.Click(chromedp.CSS(`[data-testid="pause-spring-promo"]`)),
		browsertest.Until(`document.querySelector('[data-testid="pause-spring-promo"]')?.textContent === "Resume"`))
	var cp crmv1.Campaign
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "spring-promo"}, &cp); err != nil || !cp.Spec.Paused {
		t.Errorf("the Campaign after the marketer's pause: paused=%v %v", cp.Spec.Paused, err)
	}

	// A condition message with markup is shown as text on the campaign's page.
	setStatus(func(cp *crmv1.Campaign) {
		meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Invalid",
			Message: `<img src=x onerror="document.body.dataset.owned=1">`})
	})
	browsertest.Run(t, marketer, "a message with markup",
		chromedp.Click(chromedp.CSS(`tr[data-campaign="spring-promo"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=figures]`)),
		browsertest.Until(`document.body.textContent.includes('<img src=x onerror')`),
		// The channel report: the status's per-channel figures.
		browsertest.Until(`document.querySelector('tr[data-channel=sms]')?.textContent.includes('23.6')`),
	)
	// The steps as a graph: the trigger and each step, one node each.
	steps := len(cp.Spec.Steps)
	browsertest.Run(t, marketer, "the graph of the steps",
		browsertest.Until(fmt.Sprintf(`document.querySelectorAll('[data-testid=graph] .react-flow__node').length === %d`, steps+1)))
	browsertest.Shoot(t, marketer, "campaign")
	// A step selected on the graph opens its form.
	browsertest.Run(t, marketer, "a step's form",
		chromedp.Click(chromedp.CSS(`.react-flow__node[data-id="welcome"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=step-form][data-step="welcome"]`)))
	// Edit the YAML: the API server's refusal shows on its field, the fix saves.
	setYAML := func(priority int) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const ta = document.querySelector('[data-testid=yaml]');
			const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
			set.call(ta, ta.value.replace(/priority: \d+/, 'priority: %d'));
			ta.dispatchEvent(new Event('input', {bubbles: true}));
		})()`, priority))
	}
	browsertest.Run(t, marketer, "an invalid edit checked",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=yaml]`)),
		browsertest.Until(`document.querySelector('[data-testid=yaml]').value.includes('priority:')`),
		setYAML(1000),
		chromedp.Click(chromedp.CSS(`[data-testid=validate]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=check] li[data-field="spec.priority"]`)),
	)
	browsertest.Shoot(t, marketer, "editor-refused")
	browsertest.Run(t, marketer, "the fixed edit saved",
		setYAML(61),
		chromedp.Click(chromedp.CSS(`[data-testid=save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=check].ok`)),
	)
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "spring-promo"}, &cp); err != nil || cp.Spec.Priority != 61 {
		t.Errorf("the Campaign after the console's save: priority %d %v", cp.Spec.Priority, err)
	}
	owned := browsertest.Value(t, marketer, chromedp.Evaluate[bool](`document.body.dataset.owned === "1" || document.querySelector('main img') !== null`))
	text := browsertest.Value(t, marketer, chromedp.Location())
	if owned {
		t.Error("markup from the API ran in the page")
	}
	if !strings.HasSuffix(text, "/brands/"+ns+"/campaigns/spring-promo") {
		t.Errorf("the campaign's page is not in the URL: %s", text)
	}

	analyst := browsertest.Browse(t, bin)
	signIn(analyst, "analyst")
	browsertest.Run(t, analyst, "the analyst's dashboard", chromedp.WaitVisible(chromedp.CSS(`.note`)))
	pauses := browsertest.Value(t, analyst, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid^="pause-"]').length`))
	browsertest.Run(t, analyst, "the analyst's campaign page",
		chromedp.Click(chromedp.CSS(`tr[data-campaign="spring-promo"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=validate]`)))
	saves := browsertest.Value(t, analyst, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=save]').length`))
	if saves != 0 {
		t.Errorf("the analyst sees a save control")
	}
	if pauses != 0 {
		t.Errorf("the analyst sees %d pause controls", pauses)
	}

	saveUnderGitOps(t, bin, env.Config, admin)
}

// saveUnderGitOps: in a brand whose truth is a Git repository, the marketer's edit is
// reviewed as a diff and committed to the bare repository on disk, by the marketer, the
// file otherwise byte for byte as it was.
func saveUnderGitOps(t *testing.T, bin string, cfg *rest.Config, admin client.Client) {
	const gns = "baku-git"
	ctx := context.Background()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gns}}); err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(filepath.Join("..", "config", "samples", "baku-casino.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const file = "brands/baku-git/crm.yaml"
	repo := gittest.New(t, map[string]string{file: string(sample)})
	creds := filepath.Join(t.TempDir(), "git")
	_ = os.MkdirAll(creds, 0o700)
	_ = os.WriteFile(filepath.Join(creds, "username"), []byte(repo.User), 0o600)
	_ = os.WriteFile(filepath.Join(creds, "password"), []byte(repo.Pass), 0o600)
	h, err := console.New(console.Options{Cluster: &kube.Cluster{Host: cfg.Host, CA: cfg.CAData}, Brands: []string{gns},
		Git:               &gitops.Config{Repositories: []gitops.Repository{{Namespace: gns, URL: repo.URL, Path: "brands/baku-git", CredentialsSecret: "git"}}},
		GitCredentialsDir: filepath.Dir(creds)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	objs, _ := manifests.ReadDir(filepath.Join("..", "config", "samples"))
	for _, u := range objs {
		if u.GetKind() == "Campaign" && u.GetName() == "welcome-series" {
			u.SetNamespace(gns)
			u.SetLabels(map[string]string{"argocd.argoproj.io/instance": gns})
			if err := admin.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	tokens, err := people.Ensure(ctx, kubernetes.NewForConfigOrDie(cfg), gns, 3600)
	if err != nil {
		t.Fatal(err)
	}
	m := browsertest.Browse(t, bin)
	browsertest.SignIn(t, m, srv.URL, tokens["marketer"], "welcome-series")
	browsertest.Run(t, m, "an edit reviewed as a diff and committed to Git",
		chromedp.Navigate(srv.URL+"/brands/"+gns+"/campaigns/welcome-series"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=git-note]`)),
		browsertest.Until(`document.querySelector('[data-testid=yaml]').value.includes('# Sized for a day of sign-ups')`),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const ta = document.querySelector('[data-testid=yaml]');
			const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
			set.call(ta, ta.value.replace('timeout: 72h', 'timeout: 48h'));
			ta.dispatchEvent(new Event('input', {bubbles: true}));
		})()`),
		chromedp.Click(chromedp.CSS(`[data-testid=diff]`)),
		browsertest.Until(`(document.querySelector('[data-testid=diff-text]')?.textContent ?? '').includes('+        timeout: 48h')`),
		chromedp.Click(chromedp.CSS(`[data-testid=save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=committed]`)),
	)
	browsertest.Shoot(t, m, "gitops-commit")
	if got := repo.Show(t, "main", file); got != strings.Replace(string(sample), "timeout: 72h", "timeout: 48h", 1) {
		t.Fatal("the commit in the bare repository is not the sample with the one line changed")
	}
	if a := gittest.Git(t, repo.Bare, "log", "-1", "--format=%an"); !strings.HasSuffix(a, ":"+people.Account("marketer")) {
		t.Fatalf("the commit's author is %q", a)
	}
	// A new campaign is reviewed as a diff too (the whole document added), then committed;
	// it exists once GitOps applies it, so the page stays on the commit.
	browsertest.Run(t, m, "a new campaign reviewed as a diff and committed",
		chromedp.Navigate(srv.URL+"/brands/"+gns+"/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=new-name]`), "git-fresh"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-start]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=git-note]`)),
		browsertest.Until(`document.querySelector('[data-testid=save]').disabled`),
		chromedp.Click(chromedp.CSS(`[data-testid=diff]`)),
		browsertest.Until(`(document.querySelector('[data-testid=diff-text]')?.textContent ?? '').includes('+  name: git-fresh')`),
		chromedp.Click(chromedp.CSS(`[data-testid=save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=committed]`)),
	)
	if got := repo.Show(t, "main", "brands/baku-git/campaign-git-fresh.yaml"); !strings.Contains(got, "name: git-fresh") || !strings.Contains(got, "kind: Campaign") {
		t.Fatalf("the new campaign's file in the bare repository:\n%s", got)
	}
	// A name Git has already is refused before anything is built on it.
	st, body := getAs(t, srv.URL, tokens["marketer"], "/api/brands/"+gns+"/campaigns/welcome-series/git")
	if st != 409 || !strings.Contains(body, "in Git already") {
		t.Fatalf("a new campaign named like one in Git: %d %s", st, body)
	}
}

// getAs signs in with token (a cookie session, as the front end does) and GETs path.
func getAs(t *testing.T, base, token, path string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	req, _ := http.NewRequest("POST", base+"/api/session", strings.NewReader(fmt.Sprintf(`{"token":%q}`, token)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, err = c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
