// Package browsertest drives Debian's chromium from Go tests with chromedp (never a
// browser a package downloads): the console's browser tests use it.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/croupier-crm/croupier/console/web"
)

// Chromium is the browser's path. Without it, or without the console's built front end,
// the test is skipped, unless CROUPIER_BROWSER_TESTS=required (make test) fails it.
func Chromium(t testing.TB) string {
	t.Helper()
	required := os.Getenv("CROUPIER_BROWSER_TESTS") == "required"
	if _, ok := web.Assets(); !ok {
		if required {
			t.Fatal("the console's front end is not built (make console)")
		}
		t.Skip("the console's front end is not built (make console)")
	}
	for _, p := range []string{os.Getenv("CROUPIER_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if required {
		t.Fatal("no chromium: apt-get install chromium")
	}
	t.Skip("no chromium (apt-get install chromium)")
	return ""
}

// Browse starts a headless chromium with a fresh profile and no network of its own.
func Browse(t testing.TB, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1400, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Run runs browser actions, failing with the page when nothing a person would see appears
// for a minute.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
}

// Value reads what a browser action returns.
func Value[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Until waits until a JavaScript predicate holds in the page (a minute at most).
func Until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Minute))
}

// SignIn signs a person in on the console at base with their token and waits for the
// dashboard's row of campaign.
func SignIn(t testing.TB, ctx context.Context, base, token, campaign string) {
	t.Helper()
	Run(t, ctx, "signing in", EnterToken(base, token),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-campaign="`+campaign+`"]`)),
	)
}

// EnterToken opens the sign-in page, puts the token into React's state (the textarea's
// value through its native setter and an input event: a value set in the DOM alone is lost
// when the page renders again, say when the brands arrive) and submits.
func EnterToken(base, token string) chromedp.Action[chromedp.Void] {
	raw, _ := json.Marshal(token)
	return chromedp.Steps(
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`textarea[name=token]`)),
		Until(`(() => {
			const el = document.querySelector('textarea[name=token]');
			if (el.value !== `+string(raw)+`) {
				Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(el, `+string(raw)+`);
				el.dispatchEvent(new Event('input', {bubbles: true}));
				return false;
			}
			return !document.querySelector('button[type=submit]').disabled;
		})()`),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
}

// Shoot writes a screenshot of the page to $CROUPIER_SCREENSHOTS/name.png when that is
// set (make console-screenshots writes docs/console/).
func Shoot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CROUPIER_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := Value(t, ctx, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
