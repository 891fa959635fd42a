package reports_test

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/api"
	"github.com/croupier-crm/croupier/dispatcher/reports"
)

func sampleDoc(lang string) *reports.Doc {
	return &reports.Doc{Brand: "baku-casino", Report: "weekly", Title: "Həftəlik hesabat: Şəki, Ağdam — Еженедельный отчёт", Language: lang,
		From: "2026-11-30", To: "2026-12-06", Zone: "Asia/Baku", Generation: 3,
		Scheduled: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), Made: time.Date(2026, 12, 7, 4, 0, 2, 0, time.UTC),
		Contents: []crmv1.ReportContent{crmv1.ReportChannels, crmv1.ReportCampaigns, crmv1.ReportExperiments, crmv1.ReportBudget},
		Channels: api.ChannelReportBody{Total: []crmv1.ChannelReport{
			{Channel: "email", Sent: 1234, Delivered: 1200, Opened: 400, Clicked: 77, Converted: 31, MessageCost: "1.234", Revenue: "620.5", CPA: "0.039806", ROI: "501.84"},
			{Channel: "sms", Sent: 88, Converted: 9, MessageCost: "3.96", Revenue: "-12", CPA: "0.44", ROI: "-4.03"},
		}},
		Campaigns: []reports.CampaignRow{{Name: "=HYPERLINK(\"http://x\")", Targeted: 5000, Sent: 1322, Converted: 40,
			Report: &crmv1.CampaignReport{Currency: "AZN", RewardCost: "80", MessageCost: "5.194", Revenue: "608.5", CPA: "2.129", ROI: "6.16"}}},
		Experiment: []reports.ArmRow{{Campaign: "welcome", Arm: crmv1.VariantStatus{Name: "control", Players: 500, Converted: 20, ConversionRate: "0.04", PValue: "0.0213", Significant: true}}},
		Budget:     []reports.BudgetRow{{Campaign: "welcome", Currency: "AZN", Budget: "150000.00", Spent: "85.194", Percent: 0.0568}},
	}
}

// TestPDFTextSurvives: the PDF read back with pdftotext (poppler-utils) holds the title's
// Azerbaijani and Cyrillic letters, the labels of the language and the figures.
func TestPDFTextSurvives(t *testing.T) {
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext (Debian poppler-utils) is not installed; .ci/run installs it")
	}
	for _, lang := range []string{"az", "ru", "en"} {
		raw, err := reports.PDF(sampleDoc(lang))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "r.pdf")
		if err := os.WriteFile(f, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-layout", f, "-").Output()
		if err != nil {
			t.Fatalf("%s: pdftotext: %v", lang, err)
		}
		text := string(out)
		want := []string{"Həftəlik hesabat: Şəki, Ağdam — Еженедельный отчёт", "2026-11-30 – 2026-12-06 (Asia/Baku)",
			"1234", "620.5", "501.84", "0.0213", "150000.00"}
		switch lang {
		case "az":
			want = append(want, "Göndərilib", "Gəlir", "başlanğıcından", "Kampaniyalar", "Büdcə xərclənməsi")
		case "ru":
			want = append(want, "Отправлено", "Выручка", "Кампании")
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q not in the PDF's text:\n%s", lang, w, text)
			}
		}
	}
}

// TestCSVIsRFC4180AndSafe: CRLF rows a standard reader parses, a formula-looking campaign
// name escaped, negative numbers left numbers.
func TestCSVIsRFC4180AndSafe(t *testing.T) {
	raw, err := reports.CSV(sampleDoc("az"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("rows must end in CRLF and only there")
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("not RFC 4180: %v", err)
	}
	var found, sms bool
	for _, row := range rows {
		if row[0] == `'=HYPERLINK("http://x")` {
			found = true
		}
		if strings.HasPrefix(row[0], "=") || strings.HasPrefix(row[0], "+") || strings.HasPrefix(row[0], "@") {
			t.Errorf("unescaped formula cell %q", row[0])
		}
		if row[0] == "sms" {
			sms = true
			if row[11] != "-12" || row[14] != "-4.03" {
				t.Errorf("sms row %q: negative numbers must stay numbers", row)
			}
		}
	}
	if !found || !sms {
		t.Fatalf("rows %q: the escaped campaign or the sms row is missing", rows)
	}
	if rows[0][0] != "Həftəlik hesabat: Şəki, Ağdam — Еженедельный отчёт" {
		t.Fatalf("title %q", rows[0][0])
	}
	for _, c := range []string{"-x", "+1+1", "@SUM(A1)", "\tcmd", "=1"} {
		if got := reports.SafeCell(c); got != "'"+c {
			t.Errorf("SafeCell(%q) = %q", c, got)
		}
	}
}
