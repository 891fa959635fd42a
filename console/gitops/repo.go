// Package gitops saves the console's edits where a namespace's truth is Git: the changed
// manifest is committed to the configured repository (go-git) and, when a forge is
// configured, proposed as a pull request; Argo CD or Flux then applies it. Edits are
// merged node by node (yamlnode.go), so a file keeps its comments, order and bytes.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"
)

// Config is the console's GitOps setting (--gitops-config): which namespaces are edited
// through which repository.
type Config struct {
	Repositories []Repository `json:"repositories"`
}

// Repository is where one namespace's manifests live.
type Repository struct {
	// Namespace is the brand whose kinds are saved here (the console's per-namespace
	// setting: edits there always go to Git, with or without Argo CD or Flux marks).
	Namespace string `json:"namespace"`
	// URL to clone and push (https://, or file:// and a path for tests and one machine).
	URL string `json:"url"`
	// Branch the GitOps tool follows; default main.
	Branch string `json:"branch,omitempty"`
	// Path is the directory (or the one file) holding the namespace's manifests; "" is the
	// repository's root. New objects go to <dir>/<kind>-<name>.yaml, or the end of the file.
	Path string `json:"path,omitempty"`
	// CredentialsSecret names the Secret (mounted under the console's credentials
	// directory) with username and password or token for Git over HTTPS; the token also
	// authenticates to the forge.
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// PullRequests, when set, puts each save on its own branch and opens a pull request
	// against Branch instead of pushing to it.
	PullRequests *PullRequests `json:"pullRequests,omitempty"`
	// AuthorEmail is the e-mail of the commits' author (the person's name is theirs);
	// default console@croupier.invalid.
	AuthorEmail string `json:"authorEmail,omitempty"`
}

// PullRequests names the forge to propose changes on.
type PullRequests struct {
	GitHub *GitHub `json:"github,omitempty"`
}

// GitHub is GitHub's (or GitHub Enterprise's) REST API and the repository there.
type GitHub struct {
	// API is the REST API root, e.g. https://api.github.com.
	API string `json:"api"`
	// Repository is owner/name.
	Repository string `json:"repository"`
}

// LoadConfig reads and checks a GitOps setting.
func LoadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &c, c.Check()
}

// Check names the first field that is wrong.
func (c *Config) Check() error {
	seen := map[string]bool{}
	for i, r := range c.Repositories {
		f := fmt.Sprintf("repositories[%d]", i)
		switch {
		case r.Namespace == "":
			return fmt.Errorf("%s.namespace: required", f)
		case seen[r.Namespace]:
			return fmt.Errorf("%s.namespace: %q is listed twice", f, r.Namespace)
		case r.URL == "":
			return fmt.Errorf("%s.url: required", f)
		case strings.Contains(r.Path, ".."):
			return fmt.Errorf("%s.path: must stay inside the repository", f)
		case r.PullRequests != nil && r.PullRequests.GitHub == nil:
			return fmt.Errorf("%s.pullRequests.github: required when pullRequests is set", f)
		case r.PullRequests != nil && (r.PullRequests.GitHub.API == "" || strings.Count(r.PullRequests.GitHub.Repository, "/") != 1):
			return fmt.Errorf("%s.pullRequests.github: api and repository (owner/name) are required", f)
		}
		seen[r.Namespace] = true
	}
	return nil
}

// Git saves edits to the configured repositories.
type Git struct {
	repos map[string]*Repository
	// CredentialsDir holds one directory per Secret (its keys as files).
	credentialsDir string
	locks          sync.Map // namespace -> *sync.Mutex: one save at a time per repository
	HTTP           forgeClient
	// beforePush runs between commit and push (tests move the branch there).
	beforePush func()
}

// New is a Git for c; credentialsDir is where the named Secrets are mounted.
func New(c *Config, credentialsDir string) *Git {
	g := &Git{repos: map[string]*Repository{}, credentialsDir: credentialsDir}
	for i := range c.Repositories {
		r := c.Repositories[i]
		if r.Branch == "" {
			r.Branch = "main"
		}
		if r.AuthorEmail == "" {
			r.AuthorEmail = "console@croupier.invalid"
		}
		r.Path = strings.Trim(path.Clean("/"+r.Path), "/")
		g.repos[r.Namespace] = &r
	}
	return g
}

// Manages says whether ns's edits go to Git, and where.
func (g *Git) Manages(ns string) (*Repository, bool) {
	if g == nil {
		return nil, false
	}
	r, ok := g.repos[ns]
	return r, ok
}

// repository is ns's repository, or why there is none.
func (g *Git) repository(ns string) (*Repository, error) {
	r, ok := g.Manages(ns)
	if !ok {
		return nil, fmt.Errorf("namespace %s has no Git repository configured", ns)
	}
	return r, nil
}

// checkout is a fresh clone of ns's repository.
func (g *Git) checkout(ctx context.Context, ns string) (*Repository, *checkout, error) {
	r, err := g.repository(ns)
	if err != nil {
		return nil, nil, err
	}
	co, err := g.clone(ctx, r)
	return r, co, err
}

func (g *Git) secret(r *Repository, key string) string {
	if r.CredentialsSecret == "" || g.credentialsDir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(g.credentialsDir, r.CredentialsSecret, key))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (g *Git) auth(r *Repository) transport.AuthMethod {
	user, pass := g.secret(r, "username"), g.secret(r, "password")
	if pass == "" {
		pass = g.secret(r, "token")
	}
	if pass == "" {
		return nil
	}
	if user == "" {
		user = "croupier-console"
	}
	return &githttp.BasicAuth{Username: user, Password: pass}
}

// checkout is one fresh clone of the repository's branch, in memory.
type checkout struct {
	repo *git.Repository
	head *object.Commit
}

func (g *Git) clone(ctx context.Context, r *Repository) (*checkout, error) {
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL: r.URL, Auth: g.auth(r), ReferenceName: plumbing.NewBranchReferenceName(r.Branch), SingleBranch: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cloning %s (branch %s): %w", redact(r.URL), r.Branch, err)
	}
	ref, err := repo.Head()
	if err != nil {
		return nil, err
	}
	head, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, err
	}
	return &checkout{repo: repo, head: head}, nil
}

// redact drops any user information from a URL for messages.
func redact(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		return u[:i+3] + u[j+1:]
	}
	return u
}

// found is the document declaring an object in one commit: its file and text.
type found struct {
	file, content, doc string
}

// find looks for kind/name under r.Path in commit c.
func find(r *Repository, c *object.Commit, kind, ns, name string) (*found, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	var files []*object.File
	err = tree.Files().ForEach(func(f *object.File) error {
		ext := path.Ext(f.Name)
		if (ext == ".yaml" || ext == ".yml") && (r.Path == "" || f.Name == r.Path || strings.HasPrefix(f.Name, r.Path+"/")) {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, f := range files {
		content, err := f.Contents()
		if err != nil {
			return nil, err
		}
		if d, ok := findDoc([]byte(content), kind, ns, name); ok {
			return &found{file: f.Name, content: content, doc: content[d.start:d.end]}, nil
		}
	}
	return nil, nil
}

// newFile is where a new object is written.
func newFile(r *Repository, kind, name string) string {
	if ext := path.Ext(r.Path); ext == ".yaml" || ext == ".yml" {
		return r.Path
	}
	return path.Join(r.Path, strings.ToLower(kind)+"-"+name+".yaml")
}

// Opened is an object as it is in Git: its document's text, its file and the commit read.
type Opened struct {
	YAML   string `json:"yaml"`
	File   string `json:"file"`
	Commit string `json:"commit"`
	// Repository and Branch name where it lives (no credentials).
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	// New: not in Git yet (File is where it would go).
	New bool `json:"new,omitempty"`
}

// Open reads kind/name from the branch's head.
func (g *Git) Open(ctx context.Context, ns, kind, name string) (*Opened, error) {
	r, co, err := g.checkout(ctx, ns)
	if err != nil {
		return nil, err
	}
	f, err := find(r, co.head, kind, ns, name)
	if err != nil {
		return nil, err
	}
	o := &Opened{Commit: co.head.Hash.String(), Repository: redact(r.URL), Branch: r.Branch}
	if f == nil {
		o.New, o.File = true, newFile(r, kind, name)
		return o, nil
	}
	o.YAML, o.File = f.doc, f.file
	return o, nil
}

// Person is who saves: the commit's author.
type Person struct{ Name string }

// Saved is what a save did.
type Saved struct {
	// Unchanged: the edit changes nothing in Git (no commit).
	Unchanged bool   `json:"unchanged,omitempty"`
	File      string `json:"file"`
	Diff      string `json:"diff"`
	Commit    string `json:"commit,omitempty"`
	Branch    string `json:"branch,omitempty"`
	// PullRequest is the proposal's address when the repository proposes changes.
	PullRequest string `json:"pullRequest,omitempty"`
	// Rebased counts the times the branch had moved and the edit was re-applied on it.
	Rebased int `json:"rebased,omitempty"`
	// Commit read by the editor and the head the edit was applied on.
	Base string `json:"base"`
	Head string `json:"head"`
}

// ErrMoved is a push refused every time because the branch kept moving.
var ErrMoved = errors.New("the branch kept moving while saving; try again")

// plan applies edit (made on the version of baseCommit) to the head of co: the file, its
// old and new content. The edit is merged field by field, so changes made in Git since
// the person opened the object stay, and a field both changed is a *Conflict.
func plan(r *Repository, co *checkout, kind, ns, name, baseCommit, edit string) (file, before, after string, err error) {
	base := ""
	if baseCommit != "" {
		bc, err := co.repo.CommitObject(plumbing.NewHash(baseCommit))
		if err != nil {
			return "", "", "", &Conflict{Fields: []string{"(the commit you opened, " + short(baseCommit) + ", is no longer on " + r.Branch + ")"}}
		}
		bf, err := find(r, bc, kind, ns, name)
		if err != nil {
			return "", "", "", err
		}
		if bf != nil {
			base = bf.doc
		}
	}
	cur, err := find(r, co.head, kind, ns, name)
	if err != nil {
		return "", "", "", err
	}
	switch {
	case cur == nil && base != "":
		return "", "", "", &Conflict{Fields: []string{"(deleted from Git since you opened it)"}}
	case cur != nil && base == "":
		return "", "", "", &Conflict{Fields: []string{"(created in Git since you opened it: open it there)"}}
	case cur == nil:
		file = newFile(r, kind, name)
		if f, err := co.head.File(file); err == nil {
			before, _ = f.Contents()
		}
		out, err := Replace([]byte(before), kind, ns, name, "", edit)
		return file, before, string(out), err
	}
	out, err := Replace([]byte(cur.content), kind, ns, name, base, edit)
	return cur.file, cur.content, string(out), err
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// unified is the diff a person reviews before saving.
func unified(file, before, after string) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(before), B: difflib.SplitLines(after),
		FromFile: "a/" + file, ToFile: "b/" + file, Context: 3,
	})
	return d
}

// Diff is what saving edit would change in Git now, without saving.
func (g *Git) Diff(ctx context.Context, ns, kind, name, baseCommit, edit string) (*Saved, error) {
	r, co, err := g.checkout(ctx, ns)
	if err != nil {
		return nil, err
	}
	file, before, after, err := plan(r, co, kind, ns, name, baseCommit, edit)
	if err != nil {
		return nil, err
	}
	return &Saved{Unchanged: before == after, File: file, Diff: unified(file, before, after), Base: baseCommit, Head: co.head.Hash.String()}, nil
}

// Save commits edit (made on baseCommit's version) and pushes it: to the branch, or to a
// branch of its own with a pull request when the repository proposes changes. A push
// refused because the branch moved is retried on the new head (the edit re-applied field
// by field); a field changed there too is a *Conflict, never overwritten.
func (g *Git) Save(ctx context.Context, ns, kind, name, baseCommit, edit string, who Person) (*Saved, error) {
	r, err := g.repository(ns)
	if err != nil {
		return nil, err
	}
	mu, _ := g.locks.LoadOrStore(ns, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	for attempt := 0; attempt < 5; attempt++ {
		co, err := g.clone(ctx, r)
		if err != nil {
			return nil, err
		}
		file, before, after, err := plan(r, co, kind, ns, name, baseCommit, edit)
		if err != nil {
			return nil, err
		}
		out := &Saved{File: file, Diff: unified(file, before, after), Base: baseCommit, Head: co.head.Hash.String(), Rebased: attempt}
		if before == after {
			out.Unchanged = true
			return out, nil
		}
		hash, err := commit(co, r, file, after, fmt.Sprintf("%s %s/%s: edited in the Croupier console\n\nSaved by %s.\n", kind, ns, name, who.Name), who)
		if err != nil {
			return nil, err
		}
		out.Commit = hash.String()
		target := r.Branch
		if r.PullRequests != nil {
			target = fmt.Sprintf("croupier-console/%s/%s-%s", ns, name, short(hash.String()))
		}
		out.Branch = target
		if g.beforePush != nil {
			g.beforePush()
		}
		err = co.repo.PushContext(ctx, &git.PushOptions{
			RemoteName: "origin", Auth: g.auth(r),
			RefSpecs: []config.RefSpec{config.RefSpec(hash.String() + ":" + plumbing.NewBranchReferenceName(target).String())},
		})
		if err != nil && moved(err) && r.PullRequests == nil {
			continue // the branch moved: re-apply the edit on its new head
		}
		if err != nil {
			return nil, fmt.Errorf("pushing to %s: %w", redact(r.URL), err)
		}
		if r.PullRequests != nil {
			url, err := g.openPullRequest(ctx, r, target, kind, ns, name, who, out.Diff)
			if err != nil {
				return out, fmt.Errorf("committed to branch %s, but the pull request was not opened: %w", target, err)
			}
			out.PullRequest = url
		}
		return out, nil
	}
	return nil, ErrMoved
}

func moved(err error) bool {
	return errors.Is(err, git.ErrForceNeeded) || strings.Contains(err.Error(), "non-fast-forward")
}

// commit writes file and commits it on the checkout's head.
func commit(co *checkout, r *Repository, file, content, msg string, who Person) (plumbing.Hash, error) {
	wt, err := co.repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if dir := path.Dir(file); dir != "." {
		if err := wt.Filesystem.MkdirAll(dir, 0o755); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	f, err := wt.Filesystem.Create(file)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.WriteString(f, content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := f.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wt.Add(file); err != nil {
		return plumbing.ZeroHash, err
	}
	now := time.Now()
	return wt.Commit(msg, &git.CommitOptions{
		Author:    &object.Signature{Name: who.Name, Email: r.AuthorEmail, When: now},
		Committer: &object.Signature{Name: "Croupier console", Email: r.AuthorEmail, When: now},
	})
}
