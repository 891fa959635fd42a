package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/session"
	"github.com/croupier-crm/croupier/internal/campaigncheck"
)

// GitOps tracking marks: a Campaign carrying one (or in a namespace carrying one) is
// Argo CD's or Flux's to apply; the console does not apply over it.
var gitOpsMarks = []string{
	"argocd.argoproj.io/instance", "argocd.argoproj.io/tracking-id", "app.kubernetes.io/instance-argocd",
	"kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name",
}

// gitOps names the mark that puts obj under GitOps ("" when none does).
func gitOps(labels, annotations map[string]string) string {
	for _, m := range gitOpsMarks {
		if _, ok := labels[m]; ok {
			return m
		}
		if _, ok := annotations[m]; ok {
			return m
		}
	}
	return ""
}

// Edit is a Campaign as the editor holds it: YAML, and the resourceVersion it was read at
// ("" for a new Campaign).
type Edit struct {
	YAML            string `json:"yaml"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Git is where the YAML was read under GitOps (its commit is the edit's base).
	Git *gitops.Opened `json:"git,omitempty"`
}

// Cause is one thing the API server refused, at a field path (spec.steps[1].branch...).
type Cause struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Checked is the answer of a validation or a save.
type Checked struct {
	OK              bool    `json:"ok"`
	Error           string  `json:"error,omitempty"`
	Causes          []Cause `json:"causes,omitempty"`
	ResourceVersion string  `json:"resourceVersion,omitempty"`
	YAML            string  `json:"yaml,omitempty"`
	// Git is what a save under GitOps committed (or would: a diff).
	Git *gitops.Saved `json:"git,omitempty"`
}

// editable is c as the editor shows it: what a person writes, without what the API
// server and the controllers own.
func editable(c *crmv1.Campaign) (string, error) {
	out := map[string]any{"apiVersion": crmv1.GroupVersion.String(), "kind": "Campaign"}
	md := map[string]any{"name": c.Name, "namespace": c.Namespace}
	if len(c.Labels) > 0 {
		md["labels"] = c.Labels
	}
	if len(c.Annotations) > 0 {
		ann := map[string]string{}
		for k, v := range c.Annotations {
			if k != "kubectl.kubernetes.io/last-applied-configuration" {
				ann[k] = v
			}
		}
		if len(ann) > 0 {
			md["annotations"] = ann
		}
	}
	out["metadata"] = md
	out["spec"] = c.Spec
	b, err := yaml.Marshal(out)
	return string(b), err
}

// campaignYAML serves GET: the Campaign as YAML and its resourceVersion; under GitOps its
// document as it is in Git (comments and all) and the commit read.
func (s *Server) campaignYAML(w http.ResponseWriter, r *http.Request, ns string) {
	cp, ok := s.getCampaign(w, r, ns) // the person may read it: only then is Git read for them
	if !ok {
		return
	}
	y, err := editable(cp)
	if err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	e := Edit{YAML: y, ResourceVersion: cp.ResourceVersion}
	if _, managed := s.Git.Manages(ns); managed {
		o, err := s.Git.Open(r.Context(), ns, "Campaign", cp.Name)
		if err != nil {
			s.gitProblem(w, err)
			return
		}
		if !o.New {
			e.YAML = o.YAML
		}
		e.Git = o
	}
	writeJSON(w, http.StatusOK, e)
}

// newInGit serves GET .../campaigns/{name}/git for a campaign not created yet: where it
// would go in the brand's repository and the commit read, so a new campaign is reviewed as
// a diff and committed like an edit. 404 when the brand is not saved to Git; 409 (without
// its content) when Git has a Campaign of that name already.
func (s *Server) newInGit(w http.ResponseWriter, r *http.Request, ns string) {
	if _, managed := s.Git.Manages(ns); !managed {
		problem(w, http.StatusNotFound, "namespace "+ns+" is not saved to Git by this console")
		return
	}
	name := r.PathValue("name")
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || strings.Contains(name, ".") {
		problem(w, http.StatusBadRequest, "name: "+strings.Join(append(errs, "a Campaign name is lower-case letters, digits and '-'"), "; "))
		return
	}
	o, err := s.Git.Open(r.Context(), ns, "Campaign", name)
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	if !o.New {
		problem(w, http.StatusConflict, "a Campaign "+name+" is in Git already ("+o.File+"): open it to edit it")
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// gitProblem answers a Git failure: a conflict names its fields (409), the rest is the
// repository's answer (502), never its credentials.
func (s *Server) gitProblem(w http.ResponseWriter, err error) {
	var c *gitops.Conflict
	if errors.As(err, &c) {
		out := Checked{Error: "not saved: " + c.Error() + ". Reload to see Git's version; your edit stays in the editor"}
		for _, f := range c.Fields {
			out.Causes = append(out.Causes, Cause{Field: f, Message: "changed in Git since you opened it"})
		}
		writeJSON(w, http.StatusConflict, out)
		return
	}
	if errors.Is(err, gitops.ErrMoved) {
		writeJSON(w, http.StatusConflict, Checked{Error: err.Error()})
		return
	}
	s.Log.Warn("git", "error", err)
	writeJSON(w, http.StatusBadGateway, Checked{Error: "Git: " + err.Error()})
}

// parseEdit reads the request's Campaign and checks it names the path's object.
func parseEdit(w http.ResponseWriter, r *http.Request, ns string) (*Edit, *crmv1.Campaign, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body: over 1 MiB")
		return nil, nil, false
	}
	var e Edit
	if err := json.Unmarshal(body, &e); err != nil || strings.TrimSpace(e.YAML) == "" {
		problem(w, http.StatusBadRequest, `yaml: required ({"yaml": "...", "resourceVersion": "..."})`)
		return nil, nil, false
	}
	var cp crmv1.Campaign
	if err := yaml.UnmarshalStrict([]byte(e.YAML), &cp); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, Checked{Error: "yaml: " + err.Error()})
		return nil, nil, false
	}
	name := r.PathValue("name")
	var wrong []Cause
	if cp.Kind != "Campaign" || cp.APIVersion != crmv1.GroupVersion.String() {
		wrong = append(wrong, Cause{Field: "kind", Message: fmt.Sprintf("must be Campaign in %s", crmv1.GroupVersion)})
	}
	if cp.Name != name {
		wrong = append(wrong, Cause{Field: "metadata.name", Message: fmt.Sprintf("must be %q (the campaign being edited)", name)})
	}
	if cp.Namespace != "" && cp.Namespace != ns {
		wrong = append(wrong, Cause{Field: "metadata.namespace", Message: fmt.Sprintf("must be %q (the brand)", ns)})
	}
	if len(wrong) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, Checked{Error: "the YAML is not this campaign", Causes: wrong})
		return nil, nil, false
	}
	cp.Namespace = ns
	cp.Status = crmv1.CampaignStatus{}
	cp.ManagedFields, cp.UID, cp.Generation, cp.CreationTimestamp = nil, "", 0, metav1.Time{}
	return &e, &cp, true
}

// validateCampaign serves POST: a server-side dry run of the edit as the person (the API
// server's schema, CEL rules and admission); nothing is stored.
func (s *Server) validateCampaign(w http.ResponseWriter, r *http.Request, ns string) {
	_, cp, ok := parseEdit(w, r, ns)
	if !ok {
		return
	}
	if s.dryRun(w, r, cp) {
		writeJSON(w, http.StatusOK, Checked{OK: true})
	}
}

// dryRun applies cp as the person without storing it: the API server's schema, CEL rules,
// admission and the person's RBAC (a dry run needs the right to write). False: answered.
func (s *Server) dryRun(w http.ResponseWriter, r *http.Request, cp *crmv1.Campaign) bool {
	c, ok := s.client(w, r)
	if !ok {
		return false
	}
	err := c.Patch(r.Context(), applyable(cp), client.Apply, client.FieldOwner(FieldManager), client.DryRunAll, client.ForceOwnership)
	p := managerVerdict(cp)
	if err != nil {
		refused(w, err, p...)
		return false
	}
	if len(p) > 0 {
		wouldRefuse(w, p)
		return false
	}
	return true
}

// wouldRefuse answers 422 with what the manager would refuse.
func wouldRefuse(w http.ResponseWriter, p []Cause) {
	writeJSON(w, http.StatusUnprocessableEntity, Checked{Error: "the manager would refuse it: " + p[0].Field + ": " + p[0].Message, Causes: p})
}

// managerVerdict is what the manager's controller would refuse in cp that the API server
// cannot check (CEL conditions, cron, zones: campaigncheck, the controller's own code),
// with steps named by index as the API server names them.
func managerVerdict(cp *crmv1.Campaign) []Cause {
	p := campaigncheck.Spec(&cp.Spec)
	if p == nil {
		return nil
	}
	field := p.Field
	for i, st := range cp.Spec.Steps {
		if pre := "spec.steps[" + st.Name + "]"; strings.HasPrefix(field, pre) {
			field = fmt.Sprintf("spec.steps[%d]%s", i, strings.TrimPrefix(field, pre))
			break
		}
	}
	return []Cause{{Field: field, Message: p.Message}}
}

// diffCampaign serves POST .../diff under GitOps: what saving would change in Git now.
func (s *Server) diffCampaign(w http.ResponseWriter, r *http.Request, ns string) {
	if _, managed := s.Git.Manages(ns); !managed {
		problem(w, http.StatusNotFound, "namespace "+ns+" is not saved to Git by this console")
		return
	}
	e, cp, ok := parseEdit(w, r, ns)
	if !ok {
		return
	}
	if !s.dryRun(w, r, cp) {
		return
	}
	d, err := s.Git.Diff(r.Context(), ns, "Campaign", cp.Name, gitBase(e), e.YAML)
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Checked{OK: true, Git: d})
}

func gitBase(e *Edit) string {
	if e.Git == nil {
		return ""
	}
	return e.Git.Commit
}

// saveToGit commits the edit to the namespace's repository as the person, after the API
// server accepted it in a dry run as them (so Git gets only what they may apply, and only
// what the API server would take).
func (s *Server) saveToGit(w http.ResponseWriter, r *http.Request, ns string, e *Edit, cp *crmv1.Campaign) {
	if !s.dryRun(w, r, cp) {
		return
	}
	// Without git.commit the edit is a new campaign: if Git has one of that name, the
	// save is a conflict (open it to edit it).
	saved, err := s.Git.Save(r.Context(), ns, "Campaign", cp.Name, gitBase(e), e.YAML, gitops.Person{Name: session.From(r.Context()).User})
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Checked{OK: true, Git: saved})
}

// saveCampaign serves PUT: server-side apply as the person with field manager
// croupier-console, conditional on the resourceVersion the editor read (a Campaign changed
// since is a conflict to reload, never overwritten). A Campaign under GitOps is refused:
// its truth is in Git.
func (s *Server) saveCampaign(w http.ResponseWriter, r *http.Request, ns string) {
	e, cp, ok := parseEdit(w, r, ns)
	if !ok {
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	if _, managed := s.Git.Manages(ns); managed {
		s.saveToGit(w, r, ns, e, cp)
		return
	}
	var cur crmv1.Campaign
	err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: cp.Name}, &cur)
	if !mayApply(w, "campaign", &cur, err, e.ResourceVersion) {
		return
	}
	if m := gitOps(cp.Labels, cp.Annotations); m != "" {
		writeJSON(w, http.StatusConflict, Checked{Error: fmt.Sprintf("the YAML carries %s: campaigns applied from Git are changed there", m)})
		return
	}
	if p := managerVerdict(cp); len(p) > 0 {
		wouldRefuse(w, p)
		return
	}
	obj := applyable(cp)
	obj.ResourceVersion = e.ResourceVersion // the precondition: unchanged since it was read
	if err := c.Patch(r.Context(), obj, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		if apierrors.IsConflict(err) {
			writeJSON(w, http.StatusConflict, Checked{Error: "the campaign changed since you opened it (someone saved, or a controller): reload it, your edit is kept in the editor"})
			return
		}
		refused(w, err)
		return
	}
	var saved crmv1.Campaign
	if err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: cp.Name}, &saved); err != nil {
		apiError(w, err)
		return
	}
	y, _ := editable(&saved)
	writeJSON(w, http.StatusOK, Checked{OK: true, ResourceVersion: saved.ResourceVersion, YAML: y})
}

// mayApply checks, before a server-side apply, the object as it is now (cur, read with
// getErr) against the edit's resourceVersion ("" creates): deleted or created since, or
// under Argo CD / Flux, is a conflict answered here (false).
func mayApply(w http.ResponseWriter, kind string, cur client.Object, getErr error, resourceVersion string) bool {
	switch {
	case apierrors.IsNotFound(getErr):
		if resourceVersion != "" {
			writeJSON(w, http.StatusConflict, Checked{Error: "the " + kind + " was deleted since you opened it"})
			return false
		}
	case getErr != nil:
		apiError(w, getErr)
		return false
	default:
		if m := gitOps(cur.GetLabels(), cur.GetAnnotations()); m != "" {
			writeJSON(w, http.StatusConflict, Checked{Error: fmt.Sprintf("this %s is applied from Git (%s): change it there, or configure the console to save this brand to Git", kind, m)})
			return false
		}
		if resourceVersion == "" {
			writeJSON(w, http.StatusConflict, Checked{Error: "a " + kind + " of this name exists: open it to edit it"})
			return false
		}
	}
	return true
}

// applyable is cp as an apply configuration: type metadata set, status left out.
func applyable(cp *crmv1.Campaign) *crmv1.Campaign {
	out := cp.DeepCopy()
	out.APIVersion, out.Kind = crmv1.GroupVersion.String(), "Campaign"
	return out
}

// refused answers the API server's refusal with its causes by field (422 for invalid),
// and more causes found beside it for an invalid object.
func refused(w http.ResponseWriter, err error, more ...Cause) {
	var se apierrors.APIStatus
	if !asStatus(err, &se) {
		problem(w, http.StatusBadGateway, "Kubernetes API server: "+err.Error())
		return
	}
	st := se.Status()
	out := Checked{Error: st.Message}
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			out.Causes = append(out.Causes, Cause{Field: c.Field, Message: c.Message})
		}
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusBadGateway
	}
	if code == http.StatusUnprocessableEntity {
		out.Causes = append(out.Causes, more...)
	}
	if code == http.StatusForbidden {
		out.Error = "forbidden: " + st.Message
	}
	writeJSON(w, code, out)
}

// pauseInGit commits spec.paused to the campaign's document in Git.
func (s *Server) pauseInGit(w http.ResponseWriter, r *http.Request, ns, name string, paused bool) {
	o, err := s.Git.Open(r.Context(), ns, "Campaign", name)
	if err == nil && o.New {
		err = fmt.Errorf("campaign %s is not in %s (%s): it cannot be paused through Git", name, o.Repository, o.File)
	}
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	edit, err := gitops.Set(o.YAML, paused, "spec", "paused")
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	saved, err := s.Git.Save(r.Context(), ns, "Campaign", name, o.Commit, edit, gitops.Person{Name: session.From(r.Context()).User})
	if err != nil {
		s.gitProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Checked{OK: true, Git: saved})
}
