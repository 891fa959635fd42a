package devstack_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/devstack"
)

// fakeClock is the manager's clock: real time plus an offset the test moves.
type fakeClock struct{ offset atomic.Int64 }

func (f *fakeClock) Now() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }

// moveTo sets the clock to at.
func (f *fakeClock) moveTo(at time.Time) { f.offset.Store(int64(time.Until(at))) }

// reportMail is a scheduled report's mail at the SMTP sink.
type reportMail struct {
	decision string
	pdf, csv []byte
}

// reportMails reads the mails the sink holds for addr that carry a report.
func reportMails(t *testing.T, dir, addr string) []reportMail {
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var out []reportMail
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		r, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		if !strings.Contains(r.Header.Get("To"), addr) {
			continue
		}
		m := reportMail{decision: r.Header.Get("X-Croupier-Decision")}
		for {
			p, err := r.NextPart()
			if err != nil {
				break
			}
			if h, ok := p.Header.(*mail.AttachmentHeader); ok {
				name, _ := h.Filename()
				b, _ := io.ReadAll(p.Body)
				switch {
				case strings.HasSuffix(name, ".pdf"):
					m.pdf = b
				case strings.HasSuffix(name, ".csv"):
					m.csv = b
				}
			}
		}
		if m.pdf != nil || m.csv != nil {
			out = append(out, m)
		}
	}
	return out
}

// checkScheduledReport applies a Report on the stack's API server, moves the manager's
// clock to its next slot and finds one mail per slot at the SMTP sink: a PDF whose text
// (pdftotext) holds the Azerbaijani title and the channel figures the admin API serves for
// the period it states, and a CSV beside it.
func checkScheduledReport(t *testing.T, info devstack.Info, c client.Client, clock *fakeClock) {
	t.Helper()
	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatal("pdftotext (Debian poppler-utils) is needed; .ci/run installs it")
	}
	ctx := context.Background()
	const staff = "cfo@baku-casino.example"
	rep := &crmv1.Report{ObjectMeta: metav1.ObjectMeta{Namespace: "baku-casino", Name: "e2e-weekly"}, Spec: crmv1.ReportSpec{
		Schedule: crmv1.ReportSchedule{Cron: "*/5 * * * *", TimeZone: "Asia/Baku"}, Recipients: []string{staff},
		Formats: []crmv1.ReportFormat{crmv1.ReportPDF, crmv1.ReportCSV}, Period: crmv1.PeriodMonthToDate, Language: "az",
		Title: "Həftəlik hesabat: Şəki, Ağdam — Еженедельный отчёт"}}
	if err := c.Create(ctx, rep); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "the Report Ready with its next run", func() bool {
		_ = c.Get(ctx, client.ObjectKeyFromObject(rep), rep)
		return rep.Status.NextRunTime != nil && meta.IsStatusConditionTrue(rep.Status.Conditions, crmv1.ConditionReady)
	})
	poke := func(n int) {
		patch := client.MergeFrom(rep.DeepCopy())
		if rep.Annotations == nil {
			rep.Annotations = map[string]string{}
		}
		rep.Annotations["e2e/poke"] = fmt.Sprint(n)
		if err := c.Patch(ctx, rep, patch); err != nil {
			t.Fatal(err)
		}
	}
	first := rep.Status.NextRunTime.Time
	clock.moveTo(first.Add(5 * time.Second))
	poke(1)
	var mails []reportMail
	bustest.Eventually(t, 60*time.Second, "the first slot's report at the SMTP sink", func() bool {
		mails = reportMails(t, info.MailDir, staff)
		return len(mails) == 1
	})
	poke(2) // the same slot again: nothing new is published
	bustest.Eventually(t, 30*time.Second, "the Report's status names the mail", func() bool {
		_ = c.Get(ctx, client.ObjectKeyFromObject(rep), rep)
		return rep.Status.LastSentTime != nil && rep.Status.LastRunTime != nil && rep.Status.LastRunTime.Time.Equal(first) && rep.Status.LastError == ""
	})
	m := mails[0]
	if m.pdf == nil || m.csv == nil {
		t.Fatalf("the mail carries pdf %d bytes, csv %d bytes", len(m.pdf), len(m.csv))
	}
	f := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(f, m.pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdftotext, "-layout", f, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := string(out)
	for _, w := range []string{rep.Spec.Title, "başlanğıcından", "Göndərilib", "baku-casino"} {
		if !strings.Contains(text, w) {
			t.Errorf("%q not in the PDF's text:\n%s", w, text)
		}
	}
	period := regexp.MustCompile(`(\d{4}-\d\d-\d\d) – (\d{4}-\d\d-\d\d) \(Asia/Baku\)`).FindStringSubmatch(text)
	if period == nil {
		t.Fatalf("no period in the PDF:\n%s", text)
	}
	// The figures equal the admin API's channel report for the period the PDF states.
	var body api.ChannelReportBody
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // make dev's self-signed certificate
	req, _ := http.NewRequest("GET", info.APIURL+"/v1/brands/baku-casino/channels/report?from="+period[1]+"&to="+period[2], nil)
	req.Header.Set("Authorization", "Bearer "+info.People["ops-manager"])
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin channel report: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if len(body.Total) == 0 {
		t.Fatal("the admin API counts nothing for the period: the comparison would prove nothing")
	}
	lines := strings.Split(text, "\n")
	for _, ch := range body.Total {
		want := []string{string(ch.Channel), fmt.Sprint(ch.Sent), fmt.Sprint(ch.Delivered), fmt.Sprint(ch.Opened), fmt.Sprint(ch.Clicked)}
		found := false
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 5 && f[0] == want[0] && f[1] == want[1] && f[2] == want[2] && f[3] == want[3] && f[4] == want[4] {
				found = true
			}
		}
		if !found {
			t.Errorf("no PDF row %v (the admin API's) in:\n%s", want, text)
		}
	}
	if !strings.Contains(string(m.csv), "Həftəlik hesabat") || !strings.Contains(string(m.csv), "\r\n") {
		t.Errorf("csv: %q", m.csv)
	}
	// The run and its files as mailed, from the admin API and through the console (the
	// reports page's links), as the analyst.
	checkReportFiles(t, info, hc, rep.Name, first, m.pdf)
	// The next slot: one more mail, and every slot's mail exactly once.
	second := first.Add(5 * time.Minute)
	clock.moveTo(second.Add(5 * time.Second))
	poke(3)
	bustest.Eventually(t, 60*time.Second, "the second slot's report", func() bool {
		mails = reportMails(t, info.MailDir, staff)
		return len(mails) >= 2
	})
	seen := map[string]int{}
	for _, m := range mails {
		seen[m.decision]++
	}
	if len(mails) != 2 || len(seen) != 2 {
		t.Fatalf("%d mails for %d slots (%v), want one per slot", len(mails), len(seen), seen)
	}
	clock.moveTo(time.Now())
}

// checkReportFiles lists the report's runs at the admin API and through the console as the
// analyst, and downloads the run's PDF both ways: the bytes that were mailed.
func checkReportFiles(t *testing.T, info devstack.Info, hc *http.Client, report string, slot time.Time, mailed []byte) {
	t.Helper()
	get := func(c *http.Client, url string, header map[string]string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	path := "/brands/baku-casino/reports/" + report + "/runs"
	code, _, b := get(hc, info.APIURL+"/v1"+path, map[string]string{"Authorization": "Bearer " + info.People["analyst"]})
	var runs api.ReportRunsBody
	if code != 200 || json.Unmarshal(b, &runs) != nil || len(runs.Runs) == 0 {
		t.Fatalf("the report's runs: %d %s", code, b)
	}
	run := runs.Runs[0]
	var pdf string
	for _, f := range run.Files {
		if strings.HasSuffix(f, ".pdf") {
			pdf = f
		}
	}
	if !run.Scheduled.Equal(slot) || run.Sent.IsZero() || pdf == "" {
		t.Fatalf("the newest run: %+v (slot %s)", run, slot)
	}
	code, h, b := get(hc, info.APIURL+"/v1"+path+"/"+run.ID+"/"+pdf, map[string]string{"Authorization": "Bearer " + info.People["analyst"]})
	if code != 200 || h.Get("Content-Type") != "application/pdf" || !bytes.Equal(b, mailed) {
		t.Fatalf("the PDF from the admin API: %d %s, %d bytes (mailed %d)", code, h.Get("Content-Type"), len(b), len(mailed))
	}
	// Through the console, signed in as the analyst (a session cookie).
	jar, _ := cookiejar.New(nil)
	cc := &http.Client{Jar: jar, Transport: hc.Transport}
	req, _ := http.NewRequest("POST", info.ConsoleURL+"/api/session", strings.NewReader(`{"token":"`+info.People["analyst"]+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := cc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("signing in to the console: %v %v", resp, err)
	}
	resp.Body.Close()
	code, h, b = get(cc, info.ConsoleURL+"/api/brands/baku-casino/admin/reports/"+report+"/runs/"+run.ID+"/"+pdf, nil)
	if code != 200 || !strings.Contains(h.Get("Content-Disposition"), pdf) || !bytes.Equal(b, mailed) {
		t.Fatalf("the PDF through the console: %d %q, %d bytes (mailed %d)", code, h.Get("Content-Disposition"), len(b), len(mailed))
	}
}
