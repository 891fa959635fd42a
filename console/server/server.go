// Package server routes the console's HTTP API and serves its front end. It is thin: the
// session package signs people in, kube acts as them on the API server, live streams the
// dashboards; rules (validation, routing, previews) come from the API server and the
// dispatcher, never from a copy here or in the front end.
package server

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/console/live"
	"github.com/croupier-crm/croupier/console/session"
)

// FieldManager names the console's writes in managedFields.
const FieldManager = "croupier-console"

// Server is the console.
type Server struct {
	Cluster  *kube.Cluster
	Sessions *session.Manager
	// Brands are the namespaces offered at sign-in (a person may type another).
	Brands []string
	// Assets is the built front end (nil: a page saying how to build it).
	Assets fs.FS
	Log    *slog.Logger
	// Dispatcher is the admin API the console reads as the person (nil: none).
	Dispatcher *Dispatcher
	// Git saves the edits of the brands whose truth is a Git repository (nil: none).
	Git *gitops.Git
}

// CSP is the console's Content-Security-Policy.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// maxBody bounds what a request may send (a Campaign with its steps is far smaller).
const maxBody = 1 << 20

// Handler is the console's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	need := s.Sessions.Require
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /api/config", s.config)
	mux.HandleFunc("POST /api/session", s.Sessions.SignIn)
	mux.HandleFunc("DELETE /api/session", s.Sessions.SignOut)
	mux.Handle("GET /api/me", need(http.HandlerFunc(s.Sessions.Me)))
	mux.Handle("GET /api/brands/{ns}/access", need(s.brand(s.access)))
	mux.Handle("GET /api/brands/{ns}/campaigns", need(s.brand(s.campaigns)))
	mux.Handle("GET /api/brands/{ns}/campaigns/{name}", need(s.brand(s.campaign)))
	mux.Handle("PUT /api/brands/{ns}/campaigns/{name}/paused", need(s.brand(s.pause)))
	mux.Handle("GET /api/brands/{ns}/campaigns/{name}/yaml", need(s.brand(s.campaignYAML)))
	mux.Handle("POST /api/brands/{ns}/campaigns/{name}/validate", need(s.brand(s.validateCampaign)))
	mux.Handle("PUT /api/brands/{ns}/campaigns/{name}", need(s.brand(s.saveCampaign)))
	mux.Handle("POST /api/brands/{ns}/campaigns/{name}/diff", need(s.brand(s.diffCampaign)))
	mux.Handle("GET /api/brands/{ns}/campaigns/{name}/git", need(s.brand(s.newInGit)))
	mux.Handle("GET /api/brands/{ns}/bodies/{configMap}/{key}", need(s.brand(s.body)))
	mux.Handle("PUT /api/brands/{ns}/bodies/{configMap}/{key}", need(s.brand(s.saveBody)))
	mux.Handle("GET /api/brands/{ns}/segments", need(s.brand(s.segments)))
	mux.Handle("PUT /api/brands/{ns}/segments/{name}", need(s.brand(s.saveSegment)))
	mux.Handle("GET /api/brands/{ns}/reports", need(s.brand(s.reports)))
	mux.Handle("GET /api/brands/{ns}/live", need(s.brand(s.live)))
	mux.Handle("GET /api/brands/{ns}/admin/{path...}", need(s.brand(s.admin)))
	mux.Handle("POST /api/brands/{ns}/admin/{path...}", need(s.brand(s.admin)))
	mux.Handle("PUT /api/brands/{ns}/admin/{path...}", need(s.brand(s.admin)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			problem(w, http.StatusNotFound, "no such console API: "+r.Method+" "+r.URL.Path)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			problem(w, http.StatusMethodNotAllowed, "the console's pages are read with GET")
			return
		}
		s.static(w, r)
	})
	return s.logged(headers(mux))
}

// headers sets what every answer carries: a strict content security policy (no inline
// script, nothing from elsewhere: the console works offline), no framing, no sniffing.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// style-src-attr: the studio's email preview (a sandboxed srcdoc frame, which takes
		// this policy) shows the inline styles emails are made of; no <style> element and no
		// script may come inline.
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// logged logs each API request: method, path, status, person. Never a token, a cookie or
// a body.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, code: 200}
		start := time.Now()
		next.ServeHTTP(rec, r)
		if s.Log != nil && strings.HasPrefix(r.URL.Path, "/api/") {
			user := ""
			if ss := session.From(r.Context()); ss != nil {
				user = ss.User
			}
			s.Log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.code, "ms", time.Since(start).Milliseconds(), "user", user)
		}
	})
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
var objectName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// brand checks the path's namespace (and object name) before h runs.
func (s *Server) brand(h func(w http.ResponseWriter, r *http.Request, ns string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("ns")
		if !dnsLabel.MatchString(ns) {
			problem(w, http.StatusBadRequest, "brand: not a namespace name (lowercase letters, digits and '-', at most 63)")
			return
		}
		if n := r.PathValue("name"); n != "" && !objectName.MatchString(n) {
			problem(w, http.StatusBadRequest, "name: not an object name (lowercase letters, digits, '-' and '.')")
			return
		}
		h(w, r, ns)
	})
}

// Config is what the front end needs before sign-in.
type Config struct {
	Brands []string `json:"brands"`
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Config{Brands: s.Brands})
}

func (s *Server) client(w http.ResponseWriter, r *http.Request) (client.WithWatch, bool) {
	c, err := client.NewWithWatch(s.Cluster.Config(session.From(r.Context()).Token), client.Options{Scheme: kube.Scheme})
	if err != nil {
		problem(w, http.StatusInternalServerError, "API client: "+err.Error())
		return nil, false
	}
	return c, true
}

// access is what the person may do in the brand (the front end hides the rest).
func (s *Server) access(w http.ResponseWriter, r *http.Request, ns string) {
	a, err := s.Cluster.Rules(r.Context(), session.From(r.Context()), ns)
	if err != nil {
		apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) campaigns(w http.ResponseWriter, r *http.Request, ns string) {
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	var list crmv1.CampaignList
	if err := c.List(r.Context(), &list, client.InNamespace(ns)); err != nil {
		apiError(w, err)
		return
	}
	rows := make([]live.Row, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, live.RowOf(&list.Items[i]))
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *Server) campaign(w http.ResponseWriter, r *http.Request, ns string) {
	cp, ok := s.getCampaign(w, r, ns)
	if !ok {
		return
	}
	cp.ManagedFields = nil
	writeJSON(w, http.StatusOK, cp)
}

// getCampaign reads the path's Campaign as the person (false once the error is answered).
func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request, ns string) (*crmv1.Campaign, bool) {
	c, ok := s.client(w, r)
	if !ok {
		return nil, false
	}
	var cp crmv1.Campaign
	if err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: r.PathValue("name")}, &cp); err != nil {
		apiError(w, err)
		return nil, false
	}
	return &cp, true
}

// pause sets spec.paused with a merge patch as the person (field manager
// croupier-console); the API server's RBAC and admission decide.
func (s *Server) pause(w http.ResponseWriter, r *http.Request, ns string) {
	var req struct {
		Paused *bool `json:"paused"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body: over 1 MiB")
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Paused == nil {
		problem(w, http.StatusBadRequest, `paused: required, true or false ({"paused": true})`)
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	cp := &crmv1.Campaign{}
	cp.Namespace, cp.Name = ns, r.PathValue("name")
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"paused": *req.Paused}})
	if _, managed := s.Git.Manages(ns); managed {
		// Under GitOps a pause is a commit like any edit: checked as the person first.
		if err := c.Patch(r.Context(), cp, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager), client.DryRunAll); err != nil {
			apiError(w, err)
			return
		}
		s.pauseInGit(w, r, ns, cp.Name, *req.Paused)
		return
	}
	if err := c.Patch(r.Context(), cp, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
		apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, live.RowOf(cp))
}

func (s *Server) live(w http.ResponseWriter, r *http.Request, ns string) {
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	live.Stream(w, r, c, ns)
}

// static serves the front end; paths without a file get index.html (the SPA's routes,
// such as a shared drill-down URL).
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	if s.Assets == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, noAssets)
		return
	}
	p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if p == "" {
		p = "index.html"
	}
	if st, err := fs.Stat(s.Assets, p); err != nil || st.IsDir() {
		p = "index.html"
	}
	if strings.HasPrefix(p, "assets/") {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // hashed names
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeFileFS(w, r, s.Assets, p)
}

const noAssets = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Croupier console</title></head>
<body><h1>Croupier console</h1><p>This binary was built without the console's front end.
Build it with <code>make console</code> (npm and Vite, from the lock file in console/web), then build the binary again.</p></body></html>
`

// The console's answers are the session package's: JSON, never cached; errors as
// {"error": ...}.
var (
	writeJSON = session.WriteJSON
	problem   = session.WriteProblem
)

// apiError passes the API server's answer on with its status and message (a 403 names
// the verb and resource the person lacks).
func asStatus(err error, se *apierrors.APIStatus) bool { return errors.As(err, se) }

func apiError(w http.ResponseWriter, err error) {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		problem(w, int(st.Code), st.Message)
		return
	}
	problem(w, http.StatusBadGateway, "Kubernetes API server: "+err.Error())
}
