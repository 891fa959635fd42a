// Package gittest serves bare Git repositories for tests the way a forge does: Git's own
// smart HTTP server (git http-backend) behind basic authentication, on loopback, and a
// stand-in for GitHub's pull-request call.
package gittest

import (
	"encoding/json"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a Git server over HTTP with one bare repository, crm.git.
type Server struct {
	URL  string // of the repository
	Bare string // its directory
	User string
	Pass string
	srv  *httptest.Server
}

// Git runs git with args in dir and returns its output, failing the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=platform", "GIT_AUTHOR_EMAIL=platform@example.test",
		"GIT_COMMITTER_NAME=platform", "GIT_COMMITTER_EMAIL=platform@example.test", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// New serves a bare repository whose main branch holds files (path -> content).
func New(t testing.TB, files map[string]string) *Server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	bare := filepath.Join(root, "crm.git")
	work := filepath.Join(root, "work")
	Git(t, root, "init", "-q", "--bare", "-b", "main", bare)
	Git(t, bare, "config", "http.receivepack", "true")
	Git(t, root, "init", "-q", "-b", "main", work)
	for p, c := range files {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "-q", "-m", "manifests")
	Git(t, work, "push", "-q", bare, "main")
	s := &Server{Bare: bare, User: "croupier", Pass: "s3cret-token"}
	backend := &cgi.Handler{
		Path: mustLook(t, "git"), Args: []string{"http-backend"}, Dir: root,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=croupier"},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.User || p != s.Pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/crm.git"
	return s
}

func mustLook(t testing.TB, bin string) string {
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Show is a file's content at a revision of the bare repository.
func (s *Server) Show(t testing.TB, rev, file string) string {
	t.Helper()
	cmd := exec.Command("git", "show", rev+":"+file)
	cmd.Dir = s.Bare
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git show %s:%s: %v", rev, file, err)
	}
	return string(out)
}

// Commit pushes a change made by someone else (outside the console) to main.
func (s *Server) Commit(t testing.TB, file, content, msg string) string {
	t.Helper()
	work := t.TempDir()
	Git(t, work, "clone", "-q", s.Bare, ".")
	if err := os.WriteFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, work, "commit", "-q", "-am", msg)
	Git(t, work, "push", "-q", "origin", "main")
	return Git(t, work, "rev-parse", "HEAD")
}

// PullRequest is one proposal the forge stand-in received.
type PullRequest struct {
	Title, Head, Base, Body string
	Token                   string
}

// Forge answers GitHub's POST /repos/{owner}/{repo}/pulls as GitHub does (201 with
// html_url; 422 when the head branch is not in the repository; 401 without a token).
type Forge struct {
	URL   string
	mu    sync.Mutex
	pulls []PullRequest
}

// NewForge serves the stand-in for owner/name, whose branches are those of s.
func NewForge(t testing.TB, s *Server, repo string) *Forge {
	f := &Forge{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/repos/"+repo+"/pulls" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Not Found"}`))
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok != s.Pass {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
			return
		}
		var pr PullRequest
		if json.NewDecoder(r.Body).Decode(&pr) != nil || pr.Title == "" || pr.Head == "" || pr.Base == "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"Validation Failed"}`))
			return
		}
		if exec.Command("git", "-C", s.Bare, "rev-parse", "--verify", "-q", "refs/heads/"+pr.Head).Run() != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"Validation Failed","errors":[{"message":"head: invalid"}]}`))
			return
		}
		pr.Token = tok
		f.mu.Lock()
		f.pulls = append(f.pulls, pr)
		n := len(f.pulls)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"number": n, "html_url": "https://github.example/" + repo + "/pull/" + strconv.Itoa(n)})
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Pulls are the proposals received.
func (f *Forge) Pulls() []PullRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PullRequest{}, f.pulls...)
}
