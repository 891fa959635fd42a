package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console"
	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/console/server"
	"github.com/croupier-crm/croupier/internal/gittest"
	"github.com/croupier-crm/croupier/internal/manifests"
	"github.com/croupier-crm/croupier/internal/people"
)

// TestEditUnderGitOps: in a brand whose truth is Git, the editor opens the campaign's
// document as it is in Git, a save is checked by the API server as the person and then
// committed as them (never applied), an unedited save commits nothing, a stale edit of a
// field changed since is a conflict naming it, and a pause is a commit too.
func TestEditUnderGitOps(t *testing.T) {
	const gns = "baku-git"
	ctx := context.Background()
	if err := fx.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gns}}); err != nil {
		t.Fatal(err)
	}
	tokens, err := people.Ensure(ctx, kubernetes.NewForConfigOrDie(fx.env.Config), gns, 3600)
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "baku-casino.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const file = "brands/baku-git/crm.yaml"
	repo := gittest.New(t, map[string]string{file: string(sample)})
	creds := filepath.Join(t.TempDir(), "croupier-console-git")
	_ = os.MkdirAll(creds, 0o700)
	_ = os.WriteFile(filepath.Join(creds, "username"), []byte(repo.User), 0o600)
	_ = os.WriteFile(filepath.Join(creds, "password"), []byte(repo.Pass), 0o600)
	h, err := console.New(console.Options{
		Cluster: &kube.Cluster{Host: fx.env.Config.Host, CA: fx.env.Config.CAData}, Brands: []string{gns},
		Git:               &gitops.Config{Repositories: []gitops.Repository{{Namespace: gns, URL: repo.URL, Path: "brands/baku-git", CredentialsSecret: "croupier-console-git"}}},
		GitCredentialsDir: filepath.Dir(creds),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The campaign as Argo CD applied it from the repository.
	objs, _ := manifests.ReadDir(filepath.Join("..", "..", "config", "samples"))
	for _, u := range objs {
		if u.GetKind() == "Campaign" && u.GetName() == "welcome-series" {
			u.SetNamespace(gns)
			u.SetLabels(map[string]string{"argocd.argoproj.io/instance": "baku-git"})
			if err := fx.admin.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	marketer, analyst := signInAt(t, srv.URL, tokens, "marketer"), signInAt(t, srv.URL, tokens, "analyst")
	base := "/api/brands/" + gns + "/campaigns/welcome-series"
	code, body := marketer.do("GET", base+"/yaml", "", nil)
	var ed server.Edit
	if code != 200 || json.Unmarshal([]byte(body), &ed) != nil || ed.Git == nil || ed.Git.File != file || ed.Git.Commit == "" {
		t.Fatalf("opening under GitOps: %d %s", code, body)
	}
	if !strings.Contains(string(sample), ed.YAML) || !strings.Contains(ed.YAML, "# Sized for a day of sign-ups") {
		t.Fatalf("the editor does not hold Git's document:\n%s", ed.YAML)
	}
	first := gittest.Git(t, repo.Bare, "rev-parse", "main")
	put := func(b *browser, method, path string, e server.Edit) (int, server.Checked) {
		j, _ := json.Marshal(e)
		code, body := b.mutate(method, path, string(j))
		var ck server.Checked
		_ = json.Unmarshal([]byte(body), &ck)
		return code, ck
	}
	if code, ck := put(marketer, "PUT", base, ed); code != 200 || ck.Git == nil || !ck.Git.Unchanged {
		t.Fatalf("an unedited save: %d %+v", code, ck)
	}

	edited := ed
	edited.YAML = strings.Replace(ed.YAML, "timeout: 72h", "timeout: 48h", 1)
	code, ck := put(marketer, "POST", base+"/diff", edited)
	if code != 200 || ck.Git == nil || !strings.Contains(ck.Git.Diff, "-        timeout: 72h\n+        timeout: 48h\n") {
		t.Fatalf("the diff: %d %+v", code, ck)
	}
	if code, ck := put(analyst, "PUT", base, edited); code != 403 {
		t.Fatalf("the analyst's save under GitOps: %d %+v", code, ck)
	}
	bad := ed
	bad.YAML = strings.Replace(ed.YAML, "priority: 70", "priority: 1000", 1)
	if code, ck := put(marketer, "PUT", base, bad); code != 422 || len(ck.Causes) == 0 || ck.Causes[0].Field != "spec.priority" {
		t.Fatalf("an invalid save under GitOps: %d %+v", code, ck)
	}
	if gittest.Git(t, repo.Bare, "rev-parse", "main") != first {
		t.Fatal("a refused save committed")
	}
	code, ck = put(marketer, "PUT", base, edited)
	if code != 200 || ck.Git == nil || ck.Git.Commit == "" || ck.Git.Branch != "main" {
		t.Fatalf("the marketer's save: %d %+v", code, ck)
	}
	if got := repo.Show(t, "main", file); got != strings.Replace(string(sample), "timeout: 72h", "timeout: 48h", 1) {
		t.Fatal("Git's file is not the sample with the one line changed")
	}
	if a := gittest.Git(t, repo.Bare, "log", "-1", "--format=%an"); !strings.HasSuffix(a, ":"+people.Account("marketer")) {
		t.Fatalf("commit author %q", a)
	}
	var cp crmv1.Campaign
	if err := fx.admin.Get(ctx, client.ObjectKey{Namespace: gns, Name: "welcome-series"}, &cp); err != nil || cp.Spec.Steps[1].WaitFor.Timeout.Duration.Hours() != 72 {
		t.Fatalf("the console applied under GitOps (Argo CD's job): %v", err)
	}

	stale := ed
	stale.YAML = strings.Replace(ed.YAML, "timeout: 72h", "timeout: 24h", 1)
	if code, ck := put(marketer, "PUT", base, stale); code != 409 || len(ck.Causes) != 1 || ck.Causes[0].Field != "spec.steps[1].waitFor.timeout" {
		t.Fatalf("a stale edit of a field changed in Git: %d %+v", code, ck)
	}

	code, body = marketer.mutate("PUT", base+"/paused", `{"paused": true}`)
	if code != 200 || !strings.Contains(repo.Show(t, "main", file), "  paused: true\n") {
		t.Fatalf("pause under GitOps: %d %s", code, body)
	}
	if code, _ := analyst.mutate("PUT", base+"/paused", `{"paused": false}`); code != 403 {
		t.Fatalf("the analyst's pause under GitOps: %d", code)
	}

	// A Segment's rule from the segment editor: its one line changes in Git (quoted as it
	// was); a new Segment gets its own file.
	before := repo.Show(t, "main", file)
	code, body = marketer.mutate("PUT", "/api/brands/"+gns+"/segments/churn-risk", `{"rule":"player.churnRisk >= 0.6 && player.depositCount > 0","description":"Depositors whose churn risk is high"}`)
	if code != 200 {
		t.Fatalf("a segment's rule under GitOps: %d %s", code, body)
	}
	want := strings.Replace(before, "rule: 'player.churnRisk >= 0.7 && player.depositCount > 0'", "rule: 'player.churnRisk >= 0.6 && player.depositCount > 0'", 1)
	if got := repo.Show(t, "main", file); got != want || got == before {
		t.Fatalf("the segment's document after the edit:\n%s", got)
	}
	if code, body = marketer.mutate("PUT", "/api/brands/"+gns+"/segments/high-rollers", `{"rule":"player.avgBet >= 50.0","description":"High rollers"}`); code != 200 {
		t.Fatalf("a new segment under GitOps: %d %s", code, body)
	}
	if got := repo.Show(t, "main", "brands/baku-git/segment-high-rollers.yaml"); !strings.Contains(got, "kind: Segment") || !strings.Contains(got, `rule: "player.avgBet >= 50.0"`) {
		t.Fatalf("the new segment's file:\n%s", got)
	}
	// A message body kept in a ConfigMap, saved from the studio: its one key changes in
	// Git's document, the other keys and the rest of the file as they were.
	for _, u := range objs {
		if u.GetKind() == "ConfigMap" && u.GetName() == "welcome-email" {
			u.SetNamespace(gns)
			if err := fx.admin.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	before = repo.Show(t, "main", file)
	html := "<h1>Добро пожаловать, {{ .Player.FirstName | default \"друг\" }}!</h1>\n<p>Бонус 100% ждёт вас.</p>\n"
	raw, _ := json.Marshal(server.Body{Value: html})
	if code, body := analyst.mutate("PUT", "/api/brands/"+gns+"/bodies/welcome-email/ru.html", string(raw)); code != 403 {
		t.Fatalf("the analyst's body under GitOps: %d %s", code, body)
	}
	if code, body := marketer.mutate("PUT", "/api/brands/"+gns+"/bodies/welcome-email/ru.html", string(raw)); code != 200 || !strings.Contains(body, `"commit"`) {
		t.Fatalf("a body saved to Git: %d %s", code, body)
	}
	got := repo.Show(t, "main", file)
	if !strings.Contains(got, "  ru.html: |\n    <h1>Добро пожаловать, {{ .Player.FirstName | default \"друг\" }}!</h1>\n    <p>Бонус 100% ждёт вас.</p>\n") ||
		!strings.Contains(got, "<p>İlk depozitiniz üçün 100% bonus və 50 pulsuz fırlanma sizi gözləyir.</p>") ||
		strings.Count(got, "\n") != strings.Count(before, "\n") {
		t.Fatalf("the ConfigMap's document after the edit:\n%s", got)
	}
}
