package gitops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/croupier-crm/croupier/internal/gittest"
)

func setup(t *testing.T, pr bool) (*Git, *gittest.Server, *gittest.Forge, string) {
	t.Helper()
	sample, err := os.ReadFile("../../config/samples/baku-casino.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := gittest.New(t, map[string]string{"brands/baku-casino/crm.yaml": string(sample), "README.md": "# crm\n"})
	creds := t.TempDir()
	if err := os.MkdirAll(filepath.Join(creds, "git"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(creds, "git", "username"), []byte(srv.User), 0o600)
	_ = os.WriteFile(filepath.Join(creds, "git", "token"), []byte(srv.Pass+"\n"), 0o600)
	repo := Repository{Namespace: "baku-casino", URL: srv.URL, Path: "brands/baku-casino", CredentialsSecret: "git"}
	var forge *gittest.Forge
	if pr {
		forge = gittest.NewForge(t, srv, "casino/crm")
		repo.PullRequests = &PullRequests{GitHub: &GitHub{API: forge.URL, Repository: "casino/crm"}}
	}
	c := &Config{Repositories: []Repository{repo}}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return New(c, creds), srv, forge, string(sample)
}

// Every sample Campaign opened from Git and saved unedited: no commit, the file the same
// bytes; one edited: one commit on main by the person, only its line changed.
func TestSaveToGit(t *testing.T) {
	ctx := context.Background()
	g, srv, _, sample := setup(t, false)
	_, names := sampleCampaigns(t)
	first := gittest.Git(t, srv.Bare, "rev-parse", "main")
	for _, name := range names {
		o, err := g.Open(ctx, "baku-casino", "Campaign", name)
		if err != nil || o.New || o.File != "brands/baku-casino/crm.yaml" || !strings.Contains(o.YAML, "name: "+name+"\n") {
			t.Fatalf("%s: opened %+v, %v", name, o, err)
		}
		s, err := g.Save(ctx, "baku-casino", "Campaign", name, o.Commit, o.YAML, Person{Name: "marketer"})
		if err != nil || !s.Unchanged || s.Diff != "" {
			t.Fatalf("%s: unedited save: %+v, %v", name, s, err)
		}
	}
	if head := gittest.Git(t, srv.Bare, "rev-parse", "main"); head != first {
		t.Fatalf("unedited saves committed: %s", head)
	}

	o, _ := g.Open(ctx, "baku-casino", "Campaign", "welcome-series")
	edit := strings.Replace(o.YAML, "timeout: 72h", "timeout: 48h", 1)
	d, err := g.Diff(ctx, "baku-casino", "Campaign", "welcome-series", o.Commit, edit)
	if err != nil || d.Unchanged || !strings.Contains(d.Diff, "-        timeout: 72h\n+        timeout: 48h\n") || strings.Count(d.Diff, "\n-") != 1 {
		t.Fatalf("diff: %v\n%s", err, d.Diff)
	}
	s, err := g.Save(ctx, "baku-casino", "Campaign", "welcome-series", o.Commit, edit, Person{Name: "system:serviceaccount:baku-casino:console-marketer"})
	if err != nil || s.Commit == "" || s.Branch != "main" || s.Diff != d.Diff {
		t.Fatalf("save: %+v, %v", s, err)
	}
	if head := gittest.Git(t, srv.Bare, "rev-parse", "main"); head != s.Commit {
		t.Fatalf("main is %s, saved %s", head, s.Commit)
	}
	if got := srv.Show(t, "main", "brands/baku-casino/crm.yaml"); got != strings.Replace(sample, "timeout: 72h", "timeout: 48h", 1) {
		t.Fatalf("the file is not the sample with one line changed")
	}
	if a := gittest.Git(t, srv.Bare, "log", "-1", "--format=%an"); a != "system:serviceaccount:baku-casino:console-marketer" {
		t.Fatalf("author %q", a)
	}

	// Someone pushed a change to another field since the editor opened: the push is
	// refused by the new head, the edit re-applied on it, both kept.
	o, _ = g.Open(ctx, "baku-casino", "Campaign", "welcome-series")
	now := srv.Show(t, "main", "brands/baku-casino/crm.yaml")
	srv.Commit(t, "brands/baku-casino/crm.yaml", strings.Replace(now, "priority: 70", "priority: 75", 1), "priority")
	edit = strings.Replace(o.YAML, "controlPercent: 10", "controlPercent: 20", 1)
	s, err = g.Save(ctx, "baku-casino", "Campaign", "welcome-series", o.Commit, edit, Person{Name: "marketer"})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Show(t, "main", "brands/baku-casino/crm.yaml")
	if !strings.Contains(got, "priority: 75") || !strings.Contains(got, "controlPercent: 20") || !strings.Contains(got, "timeout: 48h") {
		t.Fatal("a change was lost merging on the moved branch")
	}
	stale := o
	// The branch moves between the clone and the push: the push is refused, the edit
	// re-applied on the new head.
	o, _ = g.Open(ctx, "baku-casino", "Campaign", "welcome-series")
	g.beforePush = func() {
		g.beforePush = nil
		now := srv.Show(t, "main", "brands/baku-casino/crm.yaml")
		srv.Commit(t, "brands/baku-casino/crm.yaml", strings.Replace(now, "minSampleSize: 2000", "minSampleSize: 2500", 1), "sample size")
	}
	s, err = g.Save(ctx, "baku-casino", "Campaign", "welcome-series", o.Commit, strings.Replace(o.YAML, "goalWindow: 168h", "goalWindow: 120h", 1), Person{Name: "marketer"})
	if err != nil || s.Rebased != 1 {
		t.Fatalf("moved branch: %+v, %v", s, err)
	}
	got = srv.Show(t, "main", "brands/baku-casino/crm.yaml")
	if !strings.Contains(got, "minSampleSize: 2500") || !strings.Contains(got, "goalWindow: 120h") || !strings.Contains(got, "priority: 75") {
		t.Fatal("a change was lost re-applying on the moved branch")
	}
	// ... the same field changed there: a conflict naming it, nothing pushed.
	head := gittest.Git(t, srv.Bare, "rev-parse", "main")
	edit = strings.Replace(stale.YAML, "priority: 70", "priority: 90", 1)
	_, err = g.Save(ctx, "baku-casino", "Campaign", "welcome-series", stale.Commit, edit, Person{Name: "marketer"})
	var c *Conflict
	if !errors.As(err, &c) || c.Fields[0] != "spec.priority" {
		t.Fatalf("want a conflict on spec.priority, got %v", err)
	}
	if gittest.Git(t, srv.Bare, "rev-parse", "main") != head {
		t.Fatal("a conflicting save pushed")
	}

	// A new campaign gets its own file.
	o, _ = g.Open(ctx, "baku-casino", "Campaign", "new-one")
	if !o.New || o.File != "brands/baku-casino/campaign-new-one.yaml" {
		t.Fatalf("new: %+v", o)
	}
	doc := "apiVersion: crm.croupier.dev/v1alpha1\nkind: Campaign\nmetadata:\n  name: new-one\nspec:\n  priority: 1\n"
	if _, err := g.Save(ctx, "baku-casino", "Campaign", "new-one", o.Commit, doc, Person{Name: "marketer"}); err != nil {
		t.Fatal(err)
	}
	if srv.Show(t, "main", o.File) != doc {
		t.Fatal("new file content")
	}

	// Wrong credentials: a clear error, no secret in it.
	_ = os.WriteFile(filepath.Join(g.credentialsDir, "git", "token"), []byte("wrong-token-value"), 0o600)
	_, err = g.Open(ctx, "baku-casino", "Campaign", "welcome-series")
	if err == nil || strings.Contains(err.Error(), "wrong-token-value") || !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("bad credentials: %v", err)
	}
}

func TestSaveProposesPullRequest(t *testing.T) {
	ctx := context.Background()
	g, srv, forge, sample := setup(t, true)
	o, err := g.Open(ctx, "baku-casino", "Campaign", "welcome-series")
	if err != nil {
		t.Fatal(err)
	}
	edit := strings.Replace(o.YAML, "timeout: 72h", "timeout: 36h", 1)
	s, err := g.Save(ctx, "baku-casino", "Campaign", "welcome-series", o.Commit, edit, Person{Name: "marketer"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Show(t, "main", "brands/baku-casino/crm.yaml") != sample {
		t.Fatal("main changed: the edit must wait for the pull request")
	}
	if got := srv.Show(t, s.Branch, "brands/baku-casino/crm.yaml"); !strings.Contains(got, "timeout: 36h") {
		t.Fatal("the branch lacks the edit")
	}
	p := forge.Pulls()
	if len(p) != 1 || p[0].Head != s.Branch || p[0].Base != "main" || !strings.Contains(p[0].Body, "+        timeout: 36h") || s.PullRequest != "https://github.example/casino/crm/pull/1" {
		t.Fatalf("pull requests %+v, saved %+v", p, s)
	}
}

func TestConfigCheckNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Repositories: []Repository{{URL: "x"}}}, "repositories[0].namespace: required"},
		{Config{Repositories: []Repository{{Namespace: "a"}}}, "repositories[0].url: required"},
		{Config{Repositories: []Repository{{Namespace: "a", URL: "x"}, {Namespace: "a", URL: "y"}}}, "repositories[1].namespace"},
		{Config{Repositories: []Repository{{Namespace: "a", URL: "x", Path: "../etc"}}}, "repositories[0].path"},
		{Config{Repositories: []Repository{{Namespace: "a", URL: "x", PullRequests: &PullRequests{GitHub: &GitHub{API: "h", Repository: "x"}}}}}, "owner/name"},
	} {
		if err := tc.c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// The setting shipped in config/console loads, and so does its commented example.
func TestShippedConfigLoads(t *testing.T) {
	b, err := os.ReadFile("../../config/console/console.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "  config.yaml: |\n")
	if i < 0 {
		t.Fatal("no config.yaml in config/console")
	}
	var lines []string
	for _, l := range strings.Split(s[i+len("  config.yaml: |\n"):], "\n") {
		if !strings.HasPrefix(l, "    ") {
			break
		}
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	shipped := strings.Join(lines, "\n")
	example := strings.ReplaceAll(strings.Replace(shipped, "repositories: []", "repositories:", 1), "# ", "")
	dir := t.TempDir()
	for name, text := range map[string]string{"shipped": shipped, "example": example} {
		f := filepath.Join(dir, name)
		_ = os.WriteFile(f, []byte(text), 0o600)
		c, err := LoadConfig(f)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, text)
		}
		if want := map[string]int{"shipped": 0, "example": 1}[name]; len(c.Repositories) != want {
			t.Fatalf("%s: %d repositories", name, len(c.Repositories))
		}
	}
}
