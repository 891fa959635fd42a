package server

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/croupier-crm/croupier/console/gitops"
	"github.com/croupier-crm/croupier/console/session"
)

// Body is one message body kept in a ConfigMap (a Campaign's bodyFrom): the studio reads
// it to preview and edit it, and saves large HTML there rather than in the Campaign.
type Body struct {
	ConfigMap       string `json:"configMap"`
	Key             string `json:"key"`
	Value           string `json:"value"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// configMapKey is a ConfigMap data key (Kubernetes' rule).
var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)

// body serves GET /api/brands/{ns}/bodies/{configMap}/{key}: the value as the person may
// read the ConfigMap.
func (s *Server) body(w http.ResponseWriter, r *http.Request, ns string) {
	name, key, ok := bodyRef(w, r)
	if !ok {
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	var cm corev1.ConfigMap
	if err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: name}, &cm); err != nil {
		apiError(w, err)
		return
	}
	v, found := cm.Data[key]
	if !found {
		problem(w, http.StatusNotFound, "ConfigMap "+name+" has no key "+key)
		return
	}
	writeJSON(w, http.StatusOK, Body{ConfigMap: name, Key: key, Value: v, ResourceVersion: cm.ResourceVersion})
}

// saveBody serves PUT: the key's value patched as the person (conditional on the
// resourceVersion read: a body changed since is a 409, never overwritten), or committed to
// the ConfigMap's document in the brand's Git repository after a dry run as the person.
// The manager publishes the Campaigns that name it again.
func (s *Server) saveBody(w http.ResponseWriter, r *http.Request, ns string) {
	name, key, ok := bodyRef(w, r)
	if !ok {
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body: over 1 MiB (a ConfigMap holds at most 1 MiB)")
		return
	}
	var b Body
	if err := json.Unmarshal(raw, &b); err != nil {
		problem(w, http.StatusBadRequest, `body: {"value": "...", "resourceVersion": "..."}`)
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	var cur corev1.ConfigMap
	if err := c.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: name}, &cur); err != nil {
		apiError(w, err)
		return
	}
	if cur.Data == nil {
		cur.Data = map[string]string{}
	}
	if _, managed := s.Git.Manages(ns); managed {
		dry := cur.DeepCopy()
		dry.Data[key] = b.Value
		if err := c.Update(r.Context(), dry, client.DryRunAll); err != nil {
			refused(w, err)
			return
		}
		o, err := s.Git.Open(r.Context(), ns, "ConfigMap", name)
		if err != nil {
			s.gitProblem(w, err)
			return
		}
		if o.New {
			problem(w, http.StatusConflict, "ConfigMap "+name+" is not in the brand's Git repository: change it where it is kept")
			return
		}
		edit, err := gitops.Set(o.YAML, b.Value, "data", key)
		if err != nil {
			s.gitProblem(w, err)
			return
		}
		saved, err := s.Git.Save(r.Context(), ns, "ConfigMap", name, o.Commit, edit, gitops.Person{Name: session.From(r.Context()).User})
		if err != nil {
			s.gitProblem(w, err)
			return
		}
		writeJSON(w, http.StatusOK, Checked{OK: true, Git: saved})
		return
	}
	if m := gitOps(cur.Labels, cur.Annotations); m != "" {
		writeJSON(w, http.StatusConflict, Checked{Error: "this ConfigMap is applied from Git (" + m + "): change it there, or configure the console to save this brand to Git"})
		return
	}
	if b.ResourceVersion == "" || b.ResourceVersion != cur.ResourceVersion {
		writeJSON(w, http.StatusConflict, Checked{Error: "the ConfigMap changed since you opened it: reload it, your text is kept in the editor"})
		return
	}
	cur.Data[key] = b.Value
	if err := c.Update(r.Context(), &cur); err != nil {
		if apierrors.IsConflict(err) {
			writeJSON(w, http.StatusConflict, Checked{Error: "the ConfigMap changed since you opened it: reload it, your text is kept in the editor"})
			return
		}
		refused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Body{ConfigMap: name, Key: key, Value: b.Value, ResourceVersion: cur.ResourceVersion})
}

func bodyRef(w http.ResponseWriter, r *http.Request) (name, key string, ok bool) {
	name, key = r.PathValue("configMap"), r.PathValue("key")
	if !objectName.MatchString(name) {
		problem(w, http.StatusBadRequest, "configMap: a ConfigMap name is a DNS subdomain")
		return "", "", false
	}
	if !configMapKey.MatchString(key) || strings.HasPrefix(key, "..") {
		problem(w, http.StatusBadRequest, "key: a ConfigMap key is letters, digits, '-', '_' and '.'")
		return "", "", false
	}
	return name, key, true
}
