package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type forgeClient interface {
	Do(*http.Request) (*http.Response, error)
}

// openPullRequest proposes branch against the repository's branch with GitHub's REST
// call (POST /repos/{owner}/{repo}/pulls), authenticated with the credentials' token.
func (g *Git) openPullRequest(ctx context.Context, r *Repository, branch, kind, ns, name string, who Person, diff string) (string, error) {
	gh := r.PullRequests.GitHub
	token := g.secret(r, "token")
	if token == "" {
		token = g.secret(r, "password")
	}
	body, _ := json.Marshal(map[string]any{
		"title": fmt.Sprintf("%s %s/%s: edited in the Croupier console", kind, ns, name),
		"head":  branch,
		"base":  r.Branch,
		"body":  fmt.Sprintf("Saved by %s in the Croupier console.\n\n```diff\n%s```\n", who.Name, diff),
	})
	url := strings.TrimRight(gh.API, "/") + "/repos/" + gh.Repository + "/pulls"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := g.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		HTMLURL string `json:"html_url"`
		Message string `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != http.StatusCreated {
		msg := out.Message
		for _, e := range out.Errors {
			msg += "; " + e.Message
		}
		return "", fmt.Errorf("%s answered %d: %s", gh.API, resp.StatusCode, msg)
	}
	return out.HTMLURL, nil
}
