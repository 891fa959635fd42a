package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/croupier-crm/croupier/console/session"
)

// Dispatcher is the dispatcher's admin API as the console calls it: with the signed-in
// person's bearer token, so the dispatcher's own authorization (SubjectAccessReview of
// the admin.crm.croupier.dev resources) decides, as for kubectl croupier.
type Dispatcher struct {
	URL    string
	Client *http.Client
}

// NewDispatcher reaches the admin API at base, trusting caFile's CA ("" for the system's).
func NewDispatcher(base, caFile string) (*Dispatcher, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("dispatcher URL %q: want https://host:port", base)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("dispatcher CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("dispatcher CA %s: no certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return &Dispatcher{URL: strings.TrimRight(base, "/"), Client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg}}}, nil
}

// adminReads are the admin API's reads the console passes on (GET only), by the path
// after /v1/brands/{brand}/.
var adminReads = []func(p []string) bool{
	func(p []string) bool { return len(p) == 2 && p[0] == "channels" && p[1] == "report" },
	func(p []string) bool {
		return len(p) == 3 && p[0] == "campaigns" && (p[2] == "report" || p[2] == "preview" || p[2] == "standings")
	},
	func(p []string) bool {
		return len(p) == 3 && p[0] == "players" && (p[2] == "history" || p[2] == "explain" || p[2] == "preferences")
	},
	func(p []string) bool { return len(p) == 2 && p[0] == "consent" && p[1] == "report" },
	func(p []string) bool { return len(p) == 2 && p[0] == "coupons" && p[1] == "pools" },
	// A scheduled report's runs, and a file of one as it was mailed.
	func(p []string) bool { return (len(p) == 3 || len(p) == 5) && p[0] == "reports" && p[2] == "runs" },
}

// adminWrites are the admin API's writes the console passes on, by method (the session's
// CSRF token checked first): a test send of a campaign's step to a seed player, the
// template studio's preview, a segment's live count, partner codes imported into a coupon
// pool, and the support desk's preference change on a player's request.
var adminWrites = map[string][]func(p []string) bool{
	http.MethodPost: {
		func(p []string) bool { return len(p) == 3 && p[0] == "campaigns" && p[2] == "testsend" },
		func(p []string) bool { return len(p) == 1 && p[0] == "render" },                      // the template studio's preview
		func(p []string) bool { return len(p) == 2 && p[0] == "segments" && p[1] == "count" }, // a rule counted while written
		func(p []string) bool { return len(p) == 2 && p[0] == "coupons" && p[1] == "import" }, // partner codes into a pool
	},
	http.MethodPut: {func(p []string) bool { return len(p) == 3 && p[0] == "players" && p[2] == "preferences" }},
}

// playerID is a player's id as the dispatcher takes it (bus.CheckToken).
var playerID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// admin passes GET (and the few POST) /api/brands/{ns}/admin/{path...} to the
// dispatcher's /v1/brands/{ns}/{path...} as the person; the dispatcher's answer comes
// back as it is.
func (s *Server) admin(w http.ResponseWriter, r *http.Request, ns string) {
	if s.Dispatcher == nil {
		problem(w, http.StatusServiceUnavailable, "the console has no dispatcher configured (--dispatcher-url)")
		return
	}
	rest := r.PathValue("path")
	parts := strings.Split(rest, "/")
	allowed := false
	list := adminReads
	if r.Method != http.MethodGet {
		list = adminWrites[r.Method]
	}
	for _, ok := range list {
		allowed = allowed || ok(parts)
	}
	for i, p := range parts {
		if !objectName.MatchString(p) && (i != 1 || parts[0] != "players" || !playerID.MatchString(p)) {
			allowed = false
		}
	}
	if !allowed {
		problem(w, http.StatusNotFound, "path: not an admin API call the console passes on: "+r.Method+" "+rest)
		return
	}
	target := s.Dispatcher.URL + "/v1/brands/" + ns + "/" + rest
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if r.Method != http.MethodGet {
		body = r.Body // bounded by the console's request limit
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+session.From(r.Context()).Token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.Dispatcher.Client.Do(req)
	if err != nil {
		problem(w, http.StatusBadGateway, "the dispatcher's admin API: "+err.Error())
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Disposition", "X-Content-Type-Options"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 16<<20))
}
