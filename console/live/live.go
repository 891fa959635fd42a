// Package live streams a brand's campaigns to the console as server-sent events: a watch
// on the API server made with the signed-in person's token (so they see what they may
// list, nothing more), passed on as rows. The figures are the Campaign status as the
// manager writes it, so the dashboard and `kubectl get` agree by construction.
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/kube"
	"github.com/croupier-crm/croupier/console/session"
)

// Row is one campaign as the dashboard draws it.
type Row struct {
	Name       string               `json:"name"`
	Generation int64                `json:"generation"`
	Category   string               `json:"category,omitempty"`
	Paused     bool                 `json:"paused,omitempty"`
	Budget     *crmv1.Budget        `json:"budget,omitempty"`
	Status     crmv1.CampaignStatus `json:"status"`
	Ready      string               `json:"ready,omitempty"`
	Reason     string               `json:"reason,omitempty"`
	Message    string               `json:"message,omitempty"`
	Labels     map[string]string    `json:"labels,omitempty"`
	Steps      int                  `json:"steps"`
	Variants   []crmv1.Variant      `json:"variants,omitempty"`
	// Tournament says a reward of the campaign is a tournament (it has standings).
	Tournament bool `json:"tournament,omitempty"`
}

// RowOf is c as a dashboard row.
func RowOf(c *crmv1.Campaign) Row {
	r := Row{Name: c.Name, Generation: c.Generation, Paused: c.Spec.Paused, Budget: c.Spec.Budget, Status: c.Status,
		Labels: c.Labels, Steps: len(c.Spec.Steps), Category: string(c.Spec.Category)}
	if c.Spec.Experiment != nil {
		r.Variants = c.Spec.Experiment.Variants
	}
	for _, rw := range c.Spec.Rewards {
		r.Tournament = r.Tournament || rw.Tournament != nil
	}
	for _, cond := range c.Status.Conditions {
		if cond.Type == "Ready" {
			r.Ready, r.Reason, r.Message = string(cond.Status), cond.Reason, cond.Message
		}
	}
	return r
}

// Event is one message of the stream: the whole list first ("snapshot"), then changes.
type Event struct {
	Kind string `json:"kind"` // snapshot, upsert, delete
	Rows []Row  `json:"rows,omitempty"`
	Name string `json:"name,omitempty"`
}

// Heartbeat is how often an idle stream sends a comment (proxies close silent ones).
var Heartbeat = 15 * time.Second

// Stream serves the stream of namespace's campaigns with c, a client acting as the
// person. It ends when the client goes away; a watch the API server ends is resumed
// from a fresh snapshot.
func Stream(w http.ResponseWriter, r *http.Request, c client.WithWatch, namespace string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx := r.Context()
	var list crmv1.CampaignList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		session.WriteProblem(w, kube.Status(err), err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(ev Event) bool {
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	for {
		rows := make([]Row, 0, len(list.Items))
		for i := range list.Items {
			rows = append(rows, RowOf(&list.Items[i]))
		}
		if !send(Event{Kind: "snapshot", Rows: rows}) {
			return
		}
		if !follow(ctx, w, fl, c, namespace, list.ResourceVersion, send) {
			return
		}
		// The watch ended (expired or closed by the API server): start again.
		list = crmv1.CampaignList{}
		if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return
		}
	}
}

// follow passes the watch's events on until it ends (true) or the client leaves (false).
func follow(ctx context.Context, w http.ResponseWriter, fl http.Flusher, c client.WithWatch, namespace, rv string, send func(Event) bool) bool {
	wi, err := c.Watch(ctx, &crmv1.CampaignList{}, &client.ListOptions{Namespace: namespace, Raw: &metav1.ListOptions{ResourceVersion: rv}})
	if err != nil {
		return ctx.Err() == nil
	}
	defer wi.Stop()
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": beat\n\n"); err != nil {
				return false
			}
			fl.Flush()
		case e, ok := <-wi.ResultChan():
			if !ok {
				return true
			}
			c, isCampaign := e.Object.(*crmv1.Campaign)
			switch {
			case e.Type == watch.Error || !isCampaign:
				return true
			case e.Type == watch.Deleted:
				if !send(Event{Kind: "delete", Name: c.Name}) {
					return false
				}
			case e.Type == watch.Added || e.Type == watch.Modified:
				if !send(Event{Kind: "upsert", Rows: []Row{RowOf(c)}}) {
					return false
				}
			}
		}
	}
}
