package server

import (
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// ReportRow is a Report as the console lists it: what it mails, when, and how the last
// run went. Recipients are counted, not listed: the YAML shows them to who may read it.
type ReportRow struct {
	Name       string     `json:"name"`
	Title      string     `json:"title,omitempty"`
	Cron       string     `json:"cron"`
	TimeZone   string     `json:"timeZone"`
	Formats    []string   `json:"formats"`
	Contents   []string   `json:"contents,omitempty"`
	Period     string     `json:"period,omitempty"`
	Language   string     `json:"language,omitempty"`
	Recipients int        `json:"recipients"`
	Suspended  bool       `json:"suspended,omitempty"`
	NextRun    *time.Time `json:"nextRun,omitempty"`
	LastRun    *time.Time `json:"lastRun,omitempty"`
	LastSent   *time.Time `json:"lastSent,omitempty"`
	LastError  string     `json:"lastError,omitempty"`
	Ready      string     `json:"ready,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	GitOps     string     `json:"gitOps,omitempty"`
}

func reportRow(rp *crmv1.Report) ReportRow {
	r := ReportRow{Name: rp.Name, Title: rp.Spec.Title, Cron: rp.Spec.Schedule.Cron, TimeZone: rp.Spec.Schedule.TimeZone,
		Period: string(rp.Spec.Period), Language: rp.Spec.Language, Recipients: len(rp.Spec.Recipients), Suspended: rp.Spec.Suspend,
		LastError: rp.Status.LastError, GitOps: gitOps(rp.Labels, rp.Annotations)}
	for _, f := range rp.Spec.Formats {
		r.Formats = append(r.Formats, string(f))
	}
	for _, c := range rp.Spec.Contents {
		r.Contents = append(r.Contents, string(c))
	}
	for _, t := range []struct {
		from *metav1.Time
		to   **time.Time
	}{{rp.Status.NextRunTime, &r.NextRun}, {rp.Status.LastRunTime, &r.LastRun}, {rp.Status.LastSentTime, &r.LastSent}} {
		if t.from != nil {
			tt := t.from.Time
			*t.to = &tt
		}
	}
	for _, c := range rp.Status.Conditions {
		if c.Type == "Ready" {
			r.Ready, r.Reason, r.Message = string(c.Status), c.Reason, c.Message
		}
	}
	return r
}

// reports serves GET: the brand's Reports as the person may list them.
func (s *Server) reports(w http.ResponseWriter, r *http.Request, ns string) {
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	var list crmv1.ReportList
	if err := c.List(r.Context(), &list, client.InNamespace(ns)); err != nil {
		apiError(w, err)
		return
	}
	rows := make([]ReportRow, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, reportRow(&list.Items[i]))
	}
	writeJSON(w, http.StatusOK, rows)
}
