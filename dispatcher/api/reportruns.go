package api

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// ReportRun is one run of a scheduled Report as GET .../reports/{report}/runs lists it.
type ReportRun struct {
	// ID names the run in the files' path: the scheduled time in Unix seconds.
	ID        string    `json:"id"`
	Scheduled time.Time `json:"scheduled"`
	Generated time.Time `json:"generated,omitzero"`
	Sent      time.Time `json:"sent,omitzero"`
	Error     string    `json:"error,omitempty"`
	Files     []string  `json:"files,omitempty"`
}

// ReportRunsBody is GET /v1/brands/{brand}/reports/{report}/runs: the newest runs first
// (at most maxReportRuns); their files are kept 90 days.
type ReportRunsBody struct {
	Brand  string      `json:"brand"`
	Report string      `json:"report"`
	Runs   []ReportRun `json:"runs"`
}

const maxReportRuns = 50

// reportRuns lists a Report's runs from croupier-report-runs.
func (in *Insight) reportRuns(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	report := r.PathValue("report")
	if err := bus.CheckToken("report", report); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "report"})
		return
	}
	body := ReportRunsBody{Brand: brand, Report: report, Runs: []ReportRun{}}
	kv, err := in.JS.KeyValue(r.Context(), bus.BucketReportRuns)
	if err == nil {
		var keys jetstream.KeyLister
		keys, err = kv.ListKeysFiltered(r.Context(), brand+"."+report+".*")
		if err == nil {
			var names []string
			for k := range keys.Keys() {
				names = append(names, k)
			}
			sort.Sort(sort.Reverse(sort.StringSlice(names))) // the slot's time sorts as text
			for _, k := range names[:min(len(names), maxReportRuns)] {
				slot, perr := bus.ReportRunSlot(k)
				e, gerr := kv.Get(r.Context(), k)
				if perr != nil || gerr != nil {
					continue
				}
				res, derr := bus.Decode[bus.ReportResult](e.Value())
				if derr != nil {
					continue
				}
				body.Runs = append(body.Runs, ReportRun{ID: strconv.FormatInt(slot.Unix(), 10), Scheduled: slot, Generated: res.Generated,
					Sent: res.Sent, Error: res.Error, Files: res.Files})
			}
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the report runs cannot be read now: " + err.Error()})
		return
	}
	ingest.WriteJSON(w, http.StatusOK, body)
}

// reportFile serves one attachment of a run, as mailed: only a file the run names.
func (in *Insight) reportFile(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	report, file := r.PathValue("report"), r.PathValue("file")
	secs, err := strconv.ParseInt(r.PathValue("run"), 10, 64)
	if err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "run: not a run id (the scheduled time in Unix seconds)", Field: "run"})
		return
	}
	if err := bus.CheckToken("report", report); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "report"})
		return
	}
	slot := time.Unix(secs, 0).UTC()
	kv, err := in.JS.KeyValue(r.Context(), bus.BucketReportRuns)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the report runs cannot be read now: " + err.Error()})
		return
	}
	e, err := kv.Get(r.Context(), bus.ReportRunKey(brand, report, slot))
	var res bus.ReportResult
	if err == nil {
		res, err = bus.Decode[bus.ReportResult](e.Value())
	}
	if err != nil || !slices.Contains(res.Files, file) {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "no such file of this report run"})
		return
	}
	store, err := in.JS.ObjectStore(r.Context(), bus.ObjectReports)
	var data []byte
	if err == nil {
		data, err = store.GetBytes(r.Context(), bus.ReportObject(brand, report, slot, file))
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		ingest.WriteProblem(w, http.StatusGone, ingest.Problem{Error: "the file is no longer kept (90 days)"})
		return
	}
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the file cannot be read now: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", bus.ReportFileType(file))
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(data)
}
