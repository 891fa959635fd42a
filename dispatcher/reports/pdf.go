package reports

import (
	"bytes"
	"fmt"

	"codeberg.org/go-pdf/fpdf"
	"github.com/go-fonts/dejavu/dejavusans"
	"github.com/go-fonts/dejavu/dejavusansbold"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

const (
	font     = "DejaVuSans"
	pageW    = 297.0 // A4 landscape, mm
	margin   = 10.0
	usable   = pageW - 2*margin
	rowH     = 5.0
	fontSize = 7.5
)

// PDF draws the report: a header with the brand, the period, the Report's generation and
// when it was made, then each section as a table, the channels and the budget also as bar
// charts. DejaVu Sans is embedded (subset), so ə, ş, ğ and Cyrillic render anywhere.
func PDF(d *Doc) ([]byte, error) {
	p := fpdf.New("L", "mm", "A4", "")
	p.AddUTF8FontFromBytes(font, "", dejavusans.TTF)
	p.AddUTF8FontFromBytes(font, "B", dejavusansbold.TTF)
	p.SetTitle(d.Title, true)
	p.SetAuthor("Croupier", true)
	p.SetCreator("Croupier "+d.Brand+"/"+d.Report, true)
	p.SetCreationDate(d.Made)
	p.SetModificationDate(d.Made)
	p.SetMargins(margin, margin, margin)
	p.SetAutoPageBreak(true, margin)
	l := func(k string) string { return t(d.Language, k) }
	p.AliasNbPages("")
	p.SetFooterFunc(func() {
		p.SetY(-8)
		p.SetFont(font, "", 6.5)
		p.SetTextColor(110, 110, 110)
		p.CellFormat(0, 4, fmt.Sprintf("%s · %s/%s · %d/{nb}", d.Title, d.Brand, d.Report, p.PageNo()), "", 0, "R", false, 0, "")
	})
	p.AddPage()

	p.SetFont(font, "B", 16)
	p.SetTextColor(20, 20, 20)
	p.MultiCell(0, 8, d.Title, "", "L", false)
	p.SetFont(font, "", 9)
	p.SetTextColor(60, 60, 60)
	for _, line := range []string{
		l("brand") + ": " + d.Brand,
		fmt.Sprintf("%s: %s – %s (%s)", l("period"), d.From, d.To, d.Zone),
		fmt.Sprintf("%s: %d", l("generation"), d.Generation),
		l("made") + ": " + d.Made.Format("2006-01-02 15:04 UTC"),
	} {
		p.CellFormat(0, 5, line, "", 1, "L", false, 0, "")
	}
	for _, c := range d.Contents {
		p.Ln(3)
		switch c {
		case crmv1.ReportChannels:
			heading(p, l("channels"))
			rows := make([][]string, 0, len(d.Channels.Total))
			for _, r := range d.Channels.Total {
				rows = append(rows, channelCells(r))
			}
			table(p, channelHeader(l), rows, l("nothing"))
			if len(d.Channels.Total) > 0 {
				channelChart(p, d, l("chartSent"), l("sent"), l("converted"))
			}
		case crmv1.ReportCampaigns:
			heading(p, l("campaigns")+" — "+l("sinceStart"))
			rows := make([][]string, 0, len(d.Campaigns))
			for _, r := range d.Campaigns {
				rows = append(rows, campaignCells(r))
			}
			table(p, campaignHeader(l), rows, l("nothing"))
		case crmv1.ReportExperiments:
			heading(p, l("experiments"))
			rows := make([][]string, 0, len(d.Experiment))
			for _, r := range d.Experiment {
				rows = append(rows, armCells(r, l))
			}
			table(p, armHeader(l), rows, l("nothing"))
		case crmv1.ReportBudget:
			heading(p, l("budget"))
			rows := make([][]string, 0, len(d.Budget))
			for _, r := range d.Budget {
				rows = append(rows, budgetCells(r))
			}
			table(p, budgetHeader(l), rows, l("nothing"))
			budgetChart(p, d)
		}
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func heading(p *fpdf.Fpdf, s string) {
	p.SetFont(font, "B", 11)
	p.SetTextColor(20, 20, 20)
	p.CellFormat(0, 7, s, "", 1, "L", false, 0, "")
}

// table draws a header row and the rows, the first column wider, numbers right-aligned.
func table(p *fpdf.Fpdf, header []string, rows [][]string, empty string) {
	if len(rows) == 0 {
		p.SetFont(font, "", fontSize)
		p.SetTextColor(90, 90, 90)
		p.CellFormat(0, rowH, empty, "", 1, "L", false, 0, "")
		return
	}
	first := 38.0
	rest := (usable - first) / float64(len(header)-1)
	width := func(i int) float64 {
		if i == 0 {
			return first
		}
		return rest
	}
	p.SetFont(font, "B", fontSize)
	p.SetFillColor(232, 236, 242)
	p.SetTextColor(20, 20, 20)
	for i, h := range header {
		p.CellFormat(width(i), rowH+1, fit(p, h, width(i)), "1", 0, "C", true, 0, "")
	}
	p.Ln(-1)
	p.SetFont(font, "", fontSize)
	for n, r := range rows {
		p.SetFillColor(248, 249, 251)
		for i, c := range r {
			align := "R"
			if i == 0 {
				align = "L"
			}
			p.CellFormat(width(i), rowH, fit(p, c, width(i)), "1", 0, align, n%2 == 1, 0, "")
		}
		p.Ln(-1)
	}
}

// fit shortens s with "…" until it fits in w (less the cell's padding).
func fit(p *fpdf.Fpdf, s string, w float64) string {
	r := []rune(s)
	for len(r) > 1 && p.GetStringWidth(string(r)) > w-2 {
		r = append(r[:len(r)-2], '…')
	}
	return string(r)
}

// channelChart draws horizontal bars of sent and converted per channel, to one scale.
func channelChart(p *fpdf.Fpdf, d *Doc, title, sent, converted string) {
	var most int64
	for _, r := range d.Channels.Total {
		most = max(most, r.Sent, r.Converted)
	}
	if most == 0 {
		return
	}
	p.Ln(2)
	p.SetFont(font, "B", 8.5)
	p.CellFormat(0, 5, title, "", 1, "L", false, 0, "")
	p.SetFont(font, "", fontSize)
	labelW, barW := 38.0, usable-38-30
	for _, r := range d.Channels.Total {
		x, y := p.GetX(), p.GetY()
		p.CellFormat(labelW, 4, string(r.Channel), "", 0, "L", false, 0, "")
		for i, v := range []int64{r.Sent, r.Converted} {
			w := barW * float64(v) / float64(most)
			if i == 0 {
				p.SetFillColor(70, 110, 180)
			} else {
				p.SetFillColor(230, 140, 40)
			}
			if w > 0 {
				p.Rect(x+labelW, y+float64(i)*2, w, 1.8, "F")
			}
		}
		p.SetXY(x+labelW+barW+2, y)
		p.CellFormat(28, 4, fmt.Sprintf("%d / %d", r.Sent, r.Converted), "", 1, "L", false, 0, "")
	}
	x, y := p.GetX(), p.GetY()+1
	p.SetFillColor(70, 110, 180)
	p.Rect(x+labelW, y+1, 4, 2, "F")
	p.SetXY(x+labelW+5, y)
	p.CellFormat(30, 4, sent, "", 0, "L", false, 0, "")
	p.SetFillColor(230, 140, 40)
	p.Rect(x+labelW+36, y+1, 4, 2, "F")
	p.SetXY(x+labelW+41, y)
	p.CellFormat(40, 4, converted, "", 1, "L", false, 0, "")
}

// budgetChart draws each capped campaign's spend as a bar against its budget.
func budgetChart(p *fpdf.Fpdf, d *Doc) {
	if len(d.Budget) == 0 {
		return
	}
	p.Ln(2)
	p.SetFont(font, "", fontSize)
	labelW, barW := 38.0, usable-38-30
	for _, r := range d.Budget {
		x, y := p.GetX(), p.GetY()
		p.CellFormat(labelW, 4, fit(p, r.Campaign, labelW), "", 0, "L", false, 0, "")
		p.SetDrawColor(170, 170, 170)
		p.Rect(x+labelW, y+0.8, barW, 2.4, "D")
		frac := min(r.Percent/100, 1)
		if frac > 0 {
			if r.Percent >= 90 {
				p.SetFillColor(200, 60, 50)
			} else {
				p.SetFillColor(60, 150, 90)
			}
			p.Rect(x+labelW, y+0.8, barW*frac, 2.4, "F")
		}
		p.SetXY(x+labelW+barW+2, y)
		p.CellFormat(28, 4, fmt.Sprintf("%.1f%%", r.Percent), "", 1, "L", false, 0, "")
	}
}
