package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/session"
	"github.com/croupier-crm/croupier/internal/rules"
)

// SegmentRow is a Segment as the console lists it.
type SegmentRow struct {
	Name            string     `json:"name"`
	Description     string     `json:"description,omitempty"`
	Rule            string     `json:"rule"`
	MemberCount     *int64     `json:"memberCount,omitempty"`
	Evaluated       *time.Time `json:"evaluated,omitempty"`
	Ready           string     `json:"ready,omitempty"`
	Message         string     `json:"message,omitempty"`
	ResourceVersion string     `json:"resourceVersion"`
	// GitOps names the mark that puts it under Argo CD or Flux ("" when none).
	GitOps string `json:"gitOps,omitempty"`
}

func segmentRow(sg *crmv1.Segment) SegmentRow {
	r := SegmentRow{Name: sg.Name, Description: sg.Spec.Description, Rule: sg.Spec.Rule, MemberCount: sg.Status.MemberCount,
		ResourceVersion: sg.ResourceVersion, GitOps: gitOps(sg.Labels, sg.Annotations)}
	if t := sg.Status.LastEvaluationTime; t != nil {
		tt := t.Time
		r.Evaluated = &tt
	}
	for _, c := range sg.Status.Conditions {
		if c.Type == "Ready" {
			r.Ready, r.Message = string(c.Status), c.Message
		}
	}
	return r
}

// segments serves GET: the brand's Segments as the person may list them.
func (s *Server) segments(w http.ResponseWriter, r *http.Request, ns string) {
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	var list crmv1.SegmentList
	if err := c.List(r.Context(), &list, client.InNamespace(ns)); err != nil {
		apiError(w, err)
		return
	}
	rows := make([]SegmentRow, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, segmentRow(&list.Items[i]))
	}
	writeJSON(w, http.StatusOK, rows)
}

// SegmentEdit is what the segment editor saves: the rule (from the builder or written
// as CEL), the description, and the resourceVersion read ("" creates it).
type SegmentEdit struct {
	Rule            string `json:"rule"`
	Description     string `json:"description"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// saveSegment serves PUT: the rule and description applied as the person (server-side
// apply, conditional on the resourceVersion read), or committed to the brand's Git
// repository (the two fields edited in the document there) after a dry run as the person.
func (s *Server) saveSegment(w http.ResponseWriter, r *http.Request, ns string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body: over 1 MiB")
		return
	}
	var e SegmentEdit
	if err := json.Unmarshal(body, &e); err != nil {
		problem(w, http.StatusBadRequest, `body: {"rule": "...", "description": "...", "resourceVersion": "..."}`)
		return
	}
	name := r.PathValue("name")
	if !objectName.MatchString(name) || strings.Contains(name, ".") {
		problem(w, http.StatusBadRequest, "name: a Segment name is a DNS label")
		return
	}
	// The controller compiles the rule; a rule it would refuse is refused here with its
	// position, before anything is applied or committed.
	if _, err := rules.Compile(rules.PlayerRule, e.Rule); err != nil {
		wouldRefuse(w, []Cause{{Field: "spec.rule", Message: err.Error()}})
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	sg := &crmv1.Segment{}
	sg.APIVersion, sg.Kind = crmv1.GroupVersion.String(), "Segment"
	sg.Namespace, sg.Name = ns, name
	sg.Spec.Rule, sg.Spec.Description = e.Rule, e.Description
	var cur crmv1.Segment
	getErr := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: name}, &cur)
	if getErr == nil {
		sg.Spec.Refresh = cur.Spec.Refresh // the editor does not change the refresh
	}
	if _, managed := s.Git.Manages(ns); managed {
		if err := c.Patch(r.Context(), sg.DeepCopy(), client.Apply, client.FieldOwner(FieldManager), client.DryRunAll, client.ForceOwnership); err != nil {
			refused(w, err)
			return
		}
		s.segmentToGit(w, r, ns, name, &e)
		return
	}
	if !mayApply(w, "segment", &cur, getErr, e.ResourceVersion) {
		return
	}
	sg.ResourceVersion = e.ResourceVersion
	if err := c.Patch(r.Context(), sg, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		if apierrors.IsConflict(err) {
			writeJSON(w, http.StatusConflict, Checked{Error: "the segment changed since you opened it: reload it, your rule is kept in the editor"})
			return
		}
		refused(w, err)
		return
	}
	var saved crmv1.Segment
	if err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: name}, &saved); err != nil {
		apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, segmentRow(&saved))
}

// segmentToGit commits the rule and description to the Segment's document in Git.
func (s *Server) segmentToGit(w http.ResponseWriter, r *http.Request, ns, name string, e *SegmentEdit) {
	o, err := s.Git.Open(r.Context(), ns, "Segment", name)
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	doc := o.YAML
	if o.New {
		doc = fmt.Sprintf("apiVersion: %s\nkind: Segment\nmetadata:\n  name: %s\nspec:\n  rule: \"\"\n", crmv1.GroupVersion, name)
	}
	edit, err := gitops.Set(doc, e.Rule, "spec", "rule")
	if err == nil {
		if e.Description != "" {
			edit, err = gitops.Set(edit, e.Description, "spec", "description")
		}
	}
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	base := o.Commit
	if o.New {
		base = ""
	}
	saved, err := s.Git.Save(r.Context(), ns, "Segment", name, base, edit, gitops.Person{Name: session.From(r.Context()).User})
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Checked{OK: true, Git: saved})
}
