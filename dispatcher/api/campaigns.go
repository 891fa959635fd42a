package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/rules"
)

// Campaigns serves the campaign tools of the admin API behind `kubectl croupier`: a test
// send to a seed player (campaigns/testsend) and the dry-run preview (campaigns/preview).
type Campaigns struct {
	JS         jetstream.JetStream
	Catalog    *flow.Catalog
	Partitions int
	Clock      clock.Func
	// Preview gathers a dry run from every partition owner (app.PreviewClient).
	Preview func(r *http.Request, brand, campaign string) (*bus.Preview, error)
	// Count gathers how many of a brand's players a rule selects (app.GatherCount).
	Count func(r *http.Request, brand, rule string) (*bus.Preview, error)
}

// Register adds the routes behind the admin guard.
func (c *Campaigns) Register(mux *http.ServeMux, a *Admin) {
	mux.Handle("POST /v1/brands/{brand}/campaigns/{campaign}/testsend", a.guard("create", crmv1.AdminCampaignsTestSend, c.testSend))
	mux.Handle("GET /v1/brands/{brand}/campaigns/{campaign}/preview", a.guard("get", crmv1.AdminCampaignsPreview, c.preview))
	// A Segment's rule counted while it is written: who it would reach, as a preview does.
	mux.Handle("POST /v1/brands/{brand}/segments/count", a.guard("get", crmv1.AdminCampaignsPreview, c.count))
}

// CountRequest is a player rule to count (a Segment's spec.rule).
type CountRequest struct {
	Rule string `json:"rule"`
}

// Counted is how many of the brand's players the rule selects now, and from which
// partitions (Missing: partitions no owner answered for in time).
type Counted struct {
	Rule       string `json:"rule"`
	Count      int64  `json:"count"`
	Partitions []int  `json:"partitions"`
	Missing    []int  `json:"missing,omitempty"`
}

func (c *Campaigns) count(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	var req CountRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		bodyProblem(w, err, "the body must be {\"rule\": \"...\"}: ")
		return
	}
	if strings.TrimSpace(req.Rule) == "" {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "rule: required", Field: "rule"})
		return
	}
	// Compiled as the Segment controller compiles it: a rule it would refuse is refused here.
	if _, err := rules.Compile(rules.PlayerRule, req.Rule); err != nil {
		ingest.WriteProblem(w, http.StatusUnprocessableEntity, ingest.Problem{Error: err.Error(), Field: "rule"})
		return
	}
	if c.Count == nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "counts are not served by this dispatcher"})
		return
	}
	p, err := c.Count(r, brand, req.Rule)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the count could not be gathered: " + err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, Counted{Rule: req.Rule, Count: p.Audience, Partitions: p.Partitions, Missing: p.Missing})
}

// TestSendRequest names the seed player and, optionally, the send step (default: the
// campaign's first send step).
type TestSendRequest struct {
	Player string `json:"player"`
	Step   string `json:"step,omitempty"`
}

// TestSent is the answer: the intent routed, whose outcome shows in the player's history.
type TestSent struct {
	IntentID string `json:"intentId"`
	Player   string `json:"player"`
	Step     string `json:"step"`
	Content  string `json:"content"`
}

func (c *Campaigns) campaign(w http.ResponseWriter, r *http.Request, brand string) *flow.Campaign {
	name := r.PathValue("campaign")
	if err := bus.CheckToken("campaign", name); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "campaign"})
		return nil
	}
	b := c.Catalog.Brand(brand)
	if b == nil || b.Campaigns[name] == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "no Campaign " + name + " is published in " + brand})
		return nil
	}
	return b.Campaigns[name]
}

func (c *Campaigns) testSend(w http.ResponseWriter, r *http.Request, brand string, u user.Info) {
	cp := c.campaign(w, r, brand)
	if cp == nil {
		return
	}
	var req TestSendRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTestSendBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		bodyProblem(w, err, "the body must be {\"player\", \"step\"}: ")
		return
	}
	if err := bus.CheckToken("player", req.Player); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "player"})
		return
	}
	var step *crmv1.Step
	for i := range cp.Spec().Steps {
		st := &cp.Spec().Steps[i]
		if st.Send != nil && (req.Step == "" || st.Name == req.Step) {
			step = st
			break
		}
	}
	if step == nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the campaign has no send step " + req.Step, Field: "step"})
		return
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "test-" + hex.EncodeToString(b)
	it := bus.Intent{ID: id, Brand: brand, Player: req.Player, Campaign: cp.Name, Step: step.Name, FlowInstance: id,
		Category: cp.Spec().Category, Content: step.Send.Content, Created: c.Clock.Now().UTC(), Test: true}
	raw, _ := bus.Encode(&it)
	subj := bus.IntentSubject(brand, bus.Partition(req.Player, c.Partitions), req.Player)
	if _, err := c.JS.Publish(r.Context(), subj, raw, jetstream.WithMsgID(id)); err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the test send cannot be queued now; retry"})
		return
	}
	ingest.WriteJSON(w, http.StatusAccepted, TestSent{IntentID: id, Player: req.Player, Step: step.Name, Content: step.Send.Content})
}

func (c *Campaigns) preview(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	cp := c.campaign(w, r, brand)
	if cp == nil {
		return
	}
	if c.Preview == nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "previews are not served by this dispatcher"})
		return
	}
	p, err := c.Preview(r, brand, cp.Name)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the preview could not be gathered: " + err.Error()})
		return
	}
	// What the sends would cost: each channel's count at its first provider's price.
	var micros int64
	for ch, n := range p.ByChannel {
		if _, price, ok := primaryPrice(c.Catalog, brand, crmv1.Channel(ch)); ok && (p.Currency == "" || p.Currency == price.Currency) {
			micros += n * price.Micros
			p.Currency = price.Currency
		}
	}
	if p.Currency != "" {
		p.MessageCost = money.FormatMicrosIn(micros, p.Currency)
	}
	ingest.WriteJSON(w, http.StatusOK, p)
}
