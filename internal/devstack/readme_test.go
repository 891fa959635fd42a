package devstack_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/browsertest"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/devstack"
	"github.com/croupier-crm/croupier/internal/testenv"
)

// printed returns the command of a labelled entry of make dev's welcome and its
// continuation lines (indented to the command column), without the parenthesised notes.
func printed(t *testing.T, welcome, label string) string {
	t.Helper()
	const col = 15 // "  events       "
	lines := strings.Split(welcome, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "  "+label+" ") || len(l) <= col {
			continue
		}
		cmds := []string{strings.TrimSpace(l[col:])}
		for _, c := range lines[i+1:] {
			if len(c) <= col || strings.TrimSpace(c[:col]) != "" || strings.HasPrefix(strings.TrimSpace(c), "(") {
				break
			}
			cmds = append(cmds, strings.TrimSpace(c))
		}
		return strings.Join(cmds, "\n")
	}
	t.Fatalf("make dev printed no %q line:\n%s", label, welcome)
	return ""
}

// sh runs a script with bash in dir and returns what it printed; it fails the test when
// the script fails.
func sh(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v running\n%s\n%s", err, script, out)
	}
	return string(out)
}

// What make dev prints and the README's kubectl croupier block run as written on a fresh
// stack: the bearer and the HMAC-signed curl lines post a deposit, the player token reads
// the preference centre, and every plugin line succeeds with the printed CA file (no
// --insecure-skip-dispatcher-verify), kubectl from the path make dev names.
func TestPrintedAndREADMELinesWork(t *testing.T) {
	out := &syncBuffer{}
	info, kc := startStack(t, func(o *devstack.Options) { o.Out, o.Players = out, 5 })
	welcome := out.String()
	work := t.TempDir()

	deposit := printed(t, welcome, "events")
	if got := sh(t, work, nil, deposit); !strings.Contains(got, `"accepted":1`) {
		t.Fatalf("the bearer curl line:\n%s\nanswered %s", deposit, got)
	}
	body := strings.SplitN(deposit, "\n", 2)[0]
	signed := body + "\n" + printed(t, welcome, "signed")
	time.Sleep(1100 * time.Millisecond) // another second: another event id
	if got := sh(t, work, nil, signed); !strings.Contains(got, `"accepted":1`) {
		t.Fatalf("the signed curl line:\n%s\nanswered %s", signed, got)
	}
	// The console line: the page, and a printed person's token signs in and reads the
	// brand's campaigns as that person.
	consoleURL := strings.Fields(printed(t, welcome, "console"))[0]
	marketer := printed(t, welcome, "marketer")
	page := sh(t, work, nil, "curl -sS "+consoleURL+"/")
	if !strings.Contains(page, "Croupier") {
		t.Fatalf("the console at %s answered:\n%s", consoleURL, page)
	}
	campaigns := sh(t, work, nil, fmt.Sprintf(`jar=$(mktemp); curl -sS -c "$jar" -H 'Content-Type: application/json' -d '{"token":"%s"}' %s/api/session >/dev/null
curl -sS -b "$jar" %s/api/brands/baku-casino/campaigns`, marketer, consoleURL, consoleURL))
	if !strings.Contains(campaigns, `"name":"welcome-series"`) {
		t.Fatalf("the marketer's campaigns through the console:\n%s", campaigns)
	}
	// The dispatcher's admin API through the console, as the person: the analyst reads the
	// brand's channel report, the support agent is refused by the dispatcher.
	adminRead := func(token string) string {
		return sh(t, work, nil, fmt.Sprintf(`jar=$(mktemp); curl -sS -c "$jar" -H 'Content-Type: application/json' -d '{"token":"%s"}' %s/api/session >/dev/null
curl -sS -b "$jar" -w ' %%{http_code}' %s/api/brands/baku-casino/admin/channels/report`, token, consoleURL, consoleURL))
	}
	if got := adminRead(printed(t, welcome, "analyst")); !strings.Contains(got, `"total":`) || !strings.HasSuffix(got, " 200") {
		t.Fatalf("the analyst's channel report through the console: %s", got)
	}
	if got := adminRead(printed(t, welcome, "support")); !strings.HasSuffix(got, " 403") || !strings.Contains(got, "campaigns/report") {
		t.Fatalf("the support agent's channel report through the console: %s", got)
	}
	// In the browser: the analyst opens a campaign's figures day by day, which the console
	// reads from the dispatcher's channel report as the analyst (the period in the URL).
	b := browsertest.Browse(t, browsertest.Chromium(t))
	browsertest.SignIn(t, b, consoleURL, printed(t, welcome, "analyst"), "payment-received")
	// A withdrawal of the sample player: the payment-received service notice goes out, and
	// today's row appears (the page is opened again until the owner's counters hold it).
	withdrawal := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(deposit, "deposit.completed", "withdrawal.completed"),
		`"method":"card","depositId"`, `"withdrawalId"`), `"id":"dep-`, `"id":"wd-`)
	if got := sh(t, work, nil, withdrawal); !strings.Contains(got, `"accepted":1`) {
		t.Fatalf("the withdrawal:\n%s\nanswered %s", withdrawal, got)
	}
	bustest.Eventually(t, 2*time.Minute, "today's payment-received figures in the console", func() bool {
		browsertest.Run(t, b, "payment-received day by day",
			chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/payment-received?by=day"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=period]`)),
			browsertest.Until(`!!document.querySelector('[data-testid=period-days], [data-testid=period-empty], [data-testid=period] [role=alert]')`))
		if alert := browsertest.Value(t, b, chromedp.Evaluate[string](`document.querySelector('[data-testid=period] [role=alert]')?.textContent ?? ""`)); alert != "" {
			t.Fatalf("the day-by-day figures: %s", alert)
		}
		return browsertest.Value(t, b, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid=period-days] tr[data-channel]')`))
	})
	// The sample player's start was measured: the effect table has the campaign's arm.
	browsertest.Run(t, b, "the campaign's effect on its players",
		browsertest.Until(`!!document.querySelector('[data-testid=effect-rows] tr[data-arm=all], [data-testid=effect] [role=alert]')`))
	if alert := browsertest.Value(t, b, chromedp.Evaluate[string](`document.querySelector('[data-testid=effect] [role=alert]')?.textContent ?? ""`)); alert != "" {
		t.Fatalf("the effect: %s", alert)
	}
	buildInTheBrowser(t, consoleURL, printed(t, welcome, "marketer"), kc)
	// The analyst sees the campaign's graph, and no palette, form or save to change it.
	browsertest.Run(t, b, "the analyst on the built campaign",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/builder-promo"),
		chromedp.WaitVisible(chromedp.CSS(`.react-flow__node[data-id="branch-1"]`)))
	if n := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll('[data-palette], [data-testid=save], [data-testid=delete-step]').length`)); n != 0 {
		t.Fatalf("the analyst is offered %d edit controls", n)
	}
	supportDesk(t, consoleURL, printed(t, welcome, "support"))
	couponPools(t, consoleURL, printed(t, welcome, "ops-manager"), printed(t, welcome, "analyst"))
	prefs := printed(t, welcome, "preferences")
	bustest.Eventually(t, 60*time.Second, "the sample player's preference centre", func() bool {
		cmd := exec.Command("bash", "-c", prefs)
		got, err := cmd.CombinedOutput()
		return err == nil && strings.Contains(string(got), `"player":"p-100000"`)
	})

	// The README's plugin block, with the stack's own state directory and API port.
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "```sh\nexport KUBECONFIG=.croupier/kubeconfig")
	if start < 0 {
		t.Fatal("README.md has no kubectl croupier block")
	}
	block := readme[start+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	if !strings.Contains(block, "k8s-"+testenv.K8sVersion) {
		t.Fatalf("the README's PATH names another kubectl than k8s-%s:\n%s", testenv.K8sVersion, block)
	}
	state := filepath.Dir(info.Kubeconfig)
	// The warehouse export: make dev writes the brand's outcomes and players' metrics under .croupier/export/,
	// Parquet beside NDJSON, players pseudonymised.
	bustest.Eventually(t, 2*time.Minute, "the export under .croupier/export", func() bool {
		pq, _ := filepath.Glob(filepath.Join(state, "export", "brand=baku-casino", "date=*", "outcomes-*.parquet"))
		nd, _ := filepath.Glob(filepath.Join(state, "export", "brand=baku-casino", "date=*", "outcomes-*.ndjson"))
		pl, _ := filepath.Glob(filepath.Join(state, "export", "brand=baku-casino", "date=*", "players-*.parquet"))
		if len(pq) == 0 || len(nd) == 0 || len(pl) == 0 {
			return false
		}
		b, err := os.ReadFile(nd[0])
		line := strings.SplitN(string(b), "\n", 2)[0]
		return err == nil && strings.Contains(line, `"schema_version":1`) && regexp.MustCompile(`"player":"[0-9a-f]{64}"`).MatchString(line)
	})
	// The control plane is recorded for the next start to stop if this one gets killed.
	if pids, err := os.ReadFile(filepath.Join(state, "stack.pids")); err != nil || !strings.Contains(string(pids), " etcd\n") || !strings.Contains(string(pids), " kube-apiserver\n") {
		t.Fatalf("stack.pids: %q %v", pids, err)
	}
	block = strings.ReplaceAll(block, ".croupier/", state+"/")
	bin := filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-croupier"), "./cmd/kubectl-croupier")
	build.Dir = filepath.Join("..", "..")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, b)
	}
	home, _ := os.UserHomeDir()
	env := []string{"CROUPIER_DISPATCHER=" + info.APIURL, "HOME=" + home}
	// The sample player must exist for test-send and explain.
	bustest.Eventually(t, 60*time.Second, "player p-100000 known to the dispatcher", func() bool {
		cmd := exec.Command("bash", "-c", strings.Join(strings.Split(block, "\n")[:3], "\n")+"\nkubectl croupier -n baku-casino explain p-100000 --campaign daily-free-spins")
		cmd.Dir, cmd.Env = work, append(os.Environ(), env...)
		return cmd.Run() == nil
	})
	got := sh(t, work, env, block)
	for _, want := range []string{"daily-free-spins", "audience", "test", "p-100000"} {
		if !strings.Contains(got, want) {
			t.Errorf("the README's block printed no %q:\n%s", want, got)
		}
	}
}

// buildInTheBrowser: the marketer builds a two-branch campaign without YAML (drag kinds
// from the palette onto the graph, drag outlets onto steps), sees the API server's
// complaint on the branch node, fixes it in the step's form, saves, and the campaign is
// Ready on the API server as the builder drew it.
func buildInTheBrowser(t *testing.T, consoleURL, token string, kc client.Client) {
	m := browsertest.Browse(t, browsertest.Chromium(t))
	browsertest.SignIn(t, m, consoleURL, token, "welcome-series")
	node := func(id string) string { return `.react-flow__node[data-id="` + id + `"]` }
	browsertest.Run(t, m, "naming a new campaign",
		chromedp.Click(chromedp.CSS(`[data-testid=new-campaign]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=new-name]`), "builder-promo"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-start]`)),
		chromedp.WaitVisible(chromedp.CSS(node("welcome"))))
	for _, k := range []string{"branch", "send", "exit"} {
		browsertest.Run(t, m, "dragging "+k+" onto the graph",
			chromedp.DragAndDrop(chromedp.CSS(`[data-palette="`+k+`"]`), chromedp.CSS(`[data-testid=graph]`)),
			chromedp.WaitVisible(chromedp.CSS(node(k+"-1"))))
	}
	browsertest.Run(t, m, "connecting the branch's first case to the send",
		chromedp.DragAndDrop(chromedp.CSS(node("branch-1")+` .react-flow__handle[data-handleid="case-0"]`), chromedp.CSS(node("send-1")+` .react-flow__handle.target`)),
		browsertest.Until(`!!document.querySelector('.react-flow__edge[data-id="branch-1->send-1:case-0"], [data-testid="rf__edge-branch-1->send-1:case-0"]')`))
	browsertest.Run(t, m, "connecting otherwise to the exit",
		chromedp.DragAndDrop(chromedp.CSS(node("branch-1")+` .react-flow__handle[data-handleid="otherwise"]`), chromedp.CSS(node("exit-1")+` .react-flow__handle.target`)),
		browsertest.Until(`!!document.querySelector('[data-testid="rf__edge-branch-1->exit-1:otherwise"]')`))
	// The case has no condition yet: the API server's dry run says so, on the branch.
	browsertest.Run(t, m, "the API server's complaint on the branch node",
		browsertest.Until(`(document.querySelector('`+node("branch-1")+` [data-testid=node-error]')?.textContent ?? "").includes("when")`))
	browsertest.Shoot(t, m, "builder")
	when := `input[data-field="spec.steps[1].branch.cases[0].when"]`
	browsertest.Run(t, m, "fixing the condition in the branch's form",
		chromedp.Click(chromedp.CSS(node("branch-1"))),
		chromedp.WaitVisible(chromedp.CSS(when)),
		chromedp.SendKeys(chromedp.CSS(when), "player.betCount > 0"),
		browsertest.Until(`!document.querySelector('[data-testid=node-error]')`),
		chromedp.Click(chromedp.CSS(`[data-testid=save]`)),
		browsertest.Until(`location.pathname === "/brands/baku-casino/campaigns/builder-promo"`))
	bustest.Eventually(t, 2*time.Minute, "the built campaign Ready", func() bool {
		var cp crmv1.Campaign
		if kc.Get(context.Background(), client.ObjectKey{Namespace: "baku-casino", Name: "builder-promo"}, &cp) != nil {
			return false
		}
		return meta.IsStatusConditionTrue(cp.Status.Conditions, "Ready")
	})
	var cp crmv1.Campaign
	if err := kc.Get(context.Background(), client.ObjectKey{Namespace: "baku-casino", Name: "builder-promo"}, &cp); err != nil {
		t.Fatal(err)
	}
	// From its page: a test send of its first step to the sample player, through the
	// dispatcher's admin API as the marketer (retried until the dispatcher has loaded it).
	bustest.Eventually(t, 2*time.Minute, "a test send from the builder", func() bool {
		browsertest.Run(t, m, "the built campaign's page",
			chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/builder-promo"),
			chromedp.WaitVisible(chromedp.CSS(node("welcome"))),
			// The page settles (its figures by day arrive) before a step is clicked.
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=period-empty], [data-testid=period-days]`)),
			chromedp.Click(chromedp.CSS(node("welcome"))))
		if !browsertest.Value(t, m, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid=testsend-player]')`)) {
			return false
		}
		browsertest.Run(t, m, "a test send",
			chromedp.SendKeys(chromedp.CSS(`[data-testid=testsend-player]`), "p-100000"),
			chromedp.Click(chromedp.CSS(`[data-testid=testsend-run]`)),
			browsertest.Until(`!!document.querySelector('[data-testid=testsend] [role=status], [data-testid=testsend] .error')`))
		return browsertest.Value(t, m, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid=testsend] [role=status]')`))
	})
	// The template studio: the welcome push in az and ru rendered by the dispatcher for the
	// sample profile, the brand's third language shown missing with its fallback, an edit
	// previewed at once, and markup in it shown as text.
	push := `[data-testid=studio] [data-channel=push]`
	browsertest.Run(t, m, "the studio's previews",
		chromedp.ScrollIntoView(chromedp.CSS(`[data-testid=studio]`)),
		browsertest.Until(`(document.querySelector('`+push+` [data-locale=az] [data-testid=preview-push]')?.textContent ?? "").includes("Aysel")`),
		browsertest.Until(`(document.querySelector('`+push+` [data-locale=en] [data-testid=missing]')?.textContent ?? "").includes("az")`),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const ta = document.querySelector('`+push+` [data-locale=az] textarea');
			const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
			set.call(ta, 'Salam, {{ .Player.FirstName }}! <img src=x onerror="document.body.dataset.owned=1">');
			ta.dispatchEvent(new Event('input', {bubbles: true}));
		})()`),
		browsertest.Until(`(document.querySelector('`+push+` [data-locale=az] .push-body')?.textContent ?? "").includes('<img src=x')`))
	browsertest.Shoot(t, m, "studio")
	if browsertest.Value(t, m, chromedp.Evaluate[bool](`document.body.dataset.owned === "1" || !!document.querySelector('[data-testid=studio] img')`)) {
		t.Fatal("markup in a template ran in the studio")
	}
	// The email block editor on weekly-cashback's email (nothing saved): its text becomes a
	// paragraph under a heading, a heading typed in place and a button added show in the
	// dispatcher's preview; its SMS shows what one costs at the first provider.
	email := `[data-testid=studio] [data-channel=email] [data-locale=az]`
	browsertest.Run(t, m, "the email block editor",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/weekly-cashback"),
		chromedp.WaitVisible(chromedp.CSS(`[data-use-blocks="email/az"]`)),
		browsertest.Until(`(document.querySelector('[data-testid=studio] [data-channel=sms] [data-locale=az] [data-testid=message-cost]')?.textContent ?? "").includes("0.035 AZN")`),
		chromedp.Click(chromedp.CSS(`[data-use-blocks="email/az"]`)),
		chromedp.WaitVisible(chromedp.CSS(email+` [data-testid=block-editor] [data-edit="0"]`)),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const el = document.querySelector('`+email+` [data-testid=block-editor] [data-edit="0"]');
			el.focus();
			el.innerText = 'Keşbek hazırdır, {{ .Player.FirstName }}!';
			el.blur();
		})()`),
		chromedp.Click(chromedp.CSS(email+` [data-add-block=button]`)),
		browsertest.Until(`(() => {
			const doc = document.querySelector('`+email+` [data-testid=preview-email] iframe')?.srcdoc ?? "";
			return doc.includes("Keşbek hazırdır, Aysel!") && doc.includes("Play now") && doc.includes("Keçən həftənin") && !doc.includes("croupier-blocks");
		})()`))
	browsertest.Shoot(t, m, "email-blocks")
	// A body kept in a ConfigMap (welcome-series' email): previewed from the ConfigMap,
	// edited, and saved back to it as the marketer.
	cmBody := `[data-body="welcome-email/az.html"]`
	browsertest.Run(t, m, "a ConfigMap body in the studio",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/welcome-series"),
		chromedp.WaitVisible(chromedp.CSS(cmBody+` textarea`)),
		browsertest.Until(`(document.querySelector('[data-testid=studio] [data-channel=email] [data-locale=az] [data-testid=preview-email] iframe')?.srcdoc ?? "").includes("Xoş gəlmisiniz, Aysel!")`),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const ta = document.querySelector('`+cmBody+` textarea');
			const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
			set.call(ta, ta.value.replace('100% bonus', '150% bonus'));
			ta.dispatchEvent(new Event('input', {bubbles: true}));
		})()`),
		browsertest.Until(`(document.querySelector('[data-testid=studio] [data-channel=email] [data-locale=az] [data-testid=preview-email] iframe')?.srcdoc ?? "").includes("150% bonus")`),
		chromedp.Click(chromedp.CSS(`[data-save-body="welcome-email/az.html"]`)),
		chromedp.WaitVisible(chromedp.CSS(cmBody+` [data-testid=body-saved]`)))
	var welcomeEmail corev1.ConfigMap
	if err := kc.Get(context.Background(), client.ObjectKey{Namespace: "baku-casino", Name: "welcome-email"}, &welcomeEmail); err != nil || !strings.Contains(welcomeEmail.Data["az.html"], "150% bonus") {
		t.Fatalf("the ConfigMap after the studio's save: %v %v", welcomeEmail.Data["az.html"], err)
	}

	// The drill-down by country, in the URL: its rows sum to the campaign's targeted
	// players in its status (read until both have the same moment's counters).
	bustest.Eventually(t, 2*time.Minute, "welcome-series by country equal to its status", func() bool {
		browsertest.Run(t, m, "welcome-series by country",
			chromedp.Navigate(consoleURL+"/brands/baku-casino/campaigns/welcome-series?by=country"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=breakdown] [data-dim=country].active`)),
			browsertest.Until(`!!document.querySelector('[data-testid=breakdown-rows], [data-testid=breakdown-empty], [data-testid=breakdown] [role=alert]')`))
		sum := browsertest.Value(t, m, chromedp.Evaluate[int](`[...document.querySelectorAll('[data-testid=breakdown-rows] tr[data-value] td:nth-child(2)')].reduce((n, td) => n + Number(td.textContent.replace(/[^0-9]/g, "")), 0)`))
		var cp crmv1.Campaign
		if kc.Get(context.Background(), client.ObjectKey{Namespace: "baku-casino", Name: "welcome-series"}, &cp) != nil || cp.Status.Counters == nil {
			return false
		}
		return sum > 0 && int64(sum) == cp.Status.Counters.Targeted
	})
	browsertest.Shoot(t, m, "by-country")

	// The tournament's live standings, read from the dispatcher as the marketer.
	browsertest.Run(t, m, "the tournaments page",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/tournaments"),
		browsertest.Until(`(document.querySelector('[data-testid=board][data-campaign=slots-weekend-race]')?.textContent ?? "").includes("Participants")`))
	if e := browsertest.Value(t, m, chromedp.Evaluate[string](`document.querySelector('[data-testid=board] .error')?.textContent ?? ""`)); e != "" {
		t.Fatalf("the standings: %s", e)
	}

	// A Segment built without CEL: one condition, the dispatcher's live count of the
	// players it selects, saved as the marketer; the controller then counts its members.
	browsertest.Run(t, m, "a segment from the builder",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/segments"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=segments] tr[data-segment=depositors]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=new-segment-name]`), "azerbaijan"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-segment]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=add-cond]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=add-cond]`)),
		browsertest.Until(`document.querySelector('[data-testid=cel-of-builder]')?.textContent === 'player.country == "AZ"'`),
		browsertest.Until(`/: \d+$/.test(document.querySelector('[data-testid=segment-count]')?.textContent ?? "")`),
		chromedp.Click(chromedp.CSS(`[data-testid=segment-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=segment-result].ok`)))
	browsertest.Shoot(t, m, "segment")
	bustest.Eventually(t, 2*time.Minute, "the built segment evaluated", func() bool {
		var sg crmv1.Segment
		return kc.Get(context.Background(), client.ObjectKey{Namespace: "baku-casino", Name: "azerbaijan"}, &sg) == nil &&
			sg.Spec.Rule == `player.country == "AZ"` && sg.Status.MemberCount != nil
	})
	var got []string
	for _, s := range cp.Spec.Steps {
		got = append(got, s.Name)
	}
	b := cp.Spec.Steps[1].Branch
	if strings.Join(got, ",") != "welcome,branch-1,send-1,exit-1" || b == nil || len(b.Cases) != 1 || b.Cases[0].When != "player.betCount > 0" || b.Cases[0].Next != "send-1" || b.Otherwise != "exit-1" {
		t.Fatalf("the campaign on the API server is not what was built: %+v", cp.Spec.Steps)
	}
}

// supportDesk: the support agent signs in, finds no campaigns but the player lookup, opens
// the sample player (their history holds the withdrawal's notice) and withdraws a consent
// on the player's request; the page then shows it withdrawn as the dispatcher has it.
func supportDesk(t *testing.T, consoleURL, token string) {
	s := browsertest.Browse(t, browsertest.Chromium(t))
	browsertest.Run(t, s, "the support agent signs in",
		browsertest.EnterToken(consoleURL, token),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=player-id]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=player-id]`), "p-100000"),
		chromedp.Click(chromedp.CSS(`[data-testid=player-lookup] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=prefs] [data-toggle]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=history] tr[data-result]`)))
	if n := browsertest.Value(t, s, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=campaigns]').length`)); n != 0 {
		t.Fatal("the support agent sees campaigns")
	}
	cell := browsertest.Value(t, s, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid=prefs] td[data-state=granted] [data-toggle]')][0]?.dataset.toggle ?? ""`))
	if cell == "" {
		t.Fatal("no granted consent to withdraw on the sample player's page")
	}
	browsertest.Run(t, s, "withdrawing "+cell+" on the player's request",
		chromedp.Click(chromedp.CSS(`[data-toggle="`+cell+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=pref-changed]`)),
		chromedp.Reload(),
		browsertest.Until(`document.querySelector('[data-pref="`+cell+`"]')?.dataset.state === "withdrawn"`))
	browsertest.Shoot(t, s, "player")
	browsertest.Run(t, s, "granting "+cell+" again",
		chromedp.Click(chromedp.CSS(`[data-toggle="`+cell+`"]`)),
		chromedp.Reload(),
		browsertest.Until(`document.querySelector('[data-pref="`+cell+`"]')?.dataset.state === "granted"`))
	// Why a campaign would (not) reach the player now: the dispatcher's decision with every
	// precedence step; the agent has no consent report (the privacy officer's and ops').
	browsertest.Run(t, s, "explaining a campaign for the player",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=explain-campaign]`), "daily-free-spins"),
		chromedp.Click(chromedp.CSS(`[data-testid=explain-run]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=explain-verdict]`)),
		browsertest.Until(`document.querySelectorAll('[data-testid=explain-trace] tr[data-step]').length >= 1`))
	if n := browsertest.Value(t, s, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=consent-check]').length`)); n != 0 {
		t.Fatal("the support agent is shown the consent report")
	}
}

// couponPools: the ops manager imports partner codes into a pool on the coupons page and
// finds the pool's stock; the analyst sees the pools and no import form.
func couponPools(t *testing.T, consoleURL, opsToken, analystToken string) {
	s := browsertest.Browse(t, browsertest.Chromium(t))
	browsertest.SignIn(t, s, consoleURL, opsToken, "payment-received")
	browsertest.Run(t, s, "the ops manager imports three partner codes",
		chromedp.Click(chromedp.CSS(`[data-testid=coupons-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=import-codes]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=import-pool]`), "partner-e2e"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=import-list]`), "PE2E0001\npe2e0002\nPE2E0003"),
		chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=import-result]`)),
		browsertest.Until(`document.querySelector('tr[data-pool="partner-e2e"] [data-testid=left]')?.textContent.trim() === "3"`))
	if got := browsertest.Value(t, s, chromedp.Evaluate[string](`document.querySelector('[data-testid=import-result]').textContent`)); !strings.Contains(got, "3") {
		t.Fatalf("import result %q", got)
	}
	browsertest.Run(t, s, "a code already there is named",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=import-list]`), "PE2E0003\nPE2E0004"),
		chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)),
		browsertest.Until(`(document.querySelector('[data-testid=import-result]')?.textContent ?? "").includes("PE2E0003")`),
		browsertest.Until(`document.querySelector('tr[data-pool="partner-e2e"] [data-testid=left]')?.textContent.trim() === "4"`))
	browsertest.Shoot(t, s, "coupons")
	// The ops manager's player page has the consent check (the ledger against what was sent).
	browsertest.Run(t, s, "the player's consent check",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/players/p-100000"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=consent-verdict]`)))
	a := browsertest.Browse(t, browsertest.Chromium(t))
	browsertest.SignIn(t, a, consoleURL, analystToken, "payment-received")
	browsertest.Run(t, a, "the analyst on the coupons page",
		chromedp.Navigate(consoleURL+"/brands/baku-casino/coupons"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-pool="partner-e2e"]`)))
	if n := browsertest.Value(t, a, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=import-codes]').length`)); n != 0 {
		t.Fatal("the analyst is offered the import form")
	}
	// The analyst reads the scheduled reports: make dev's samples, with their next run.
	browsertest.Run(t, a, "the analyst on the reports page",
		chromedp.Navigate(consoleURL+"/brands/baku-casino"),
		chromedp.Click(chromedp.CSS(`[data-testid=reports-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-report="ops-pulse"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-report="weekly-digest"]`)),
		browsertest.Until(`document.querySelector('tr[data-report="ops-pulse"] [data-testid=next-run]')?.textContent.trim() !== "–"`),
		// Its runs through the console's admin proxy: none yet, or the runs with their files.
		chromedp.Click(chromedp.CSS(`tr[data-report="ops-pulse"] [data-testid=show-runs]`)),
		browsertest.Until(`document.querySelector('tr[data-report="ops-pulse"] [data-testid=no-runs], tr[data-report="ops-pulse"] [data-testid=runs]') !== null`))
	browsertest.Shoot(t, a, "reports")
}
