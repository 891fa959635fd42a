package devstack_test

import (
	"github.com/chromedp/chromedp"

	"fmt"
	"github.com/croupier-crm/croupier/internal/browsertest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	info, _ := startStack(t, func(o *devstack.Options) { o.Out, o.Players = out, 5 })
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
