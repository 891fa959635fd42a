package reports

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strconv"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// number is a plain decimal: a spreadsheet reads it as a number, never as a formula.
var number = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// SafeCell escapes a cell a spreadsheet would run as a formula: one starting with =, +, -,
// @, a tab or a carriage return gets a leading apostrophe (OWASP's CSV injection advice).
// Plain decimals such as -0.25 stay numbers.
func SafeCell(s string) string {
	if s == "" || number.MatchString(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// CSV writes the report as RFC 4180 CSV (CRLF line ends, quoted where needed): one table
// after another, each headed by its section's name, every cell through SafeCell.
func CSV(d *Doc) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("\ufeff") // a BOM, so spreadsheets read UTF-8 (Azerbaijani, Russian)
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	row := func(cells ...string) {
		for i := range cells {
			cells[i] = SafeCell(cells[i])
		}
		_ = w.Write(cells)
	}
	l := func(k string) string { return t(d.Language, k) }
	row(d.Title)
	row(l("brand"), d.Brand)
	row(l("period"), d.From, d.To, d.Zone)
	row(l("generation"), strconv.FormatInt(d.Generation, 10))
	row(l("made"), d.Made.Format("2006-01-02T15:04:05Z"))
	for _, c := range d.Contents {
		row()
		switch c {
		case crmv1.ReportChannels:
			row(l("channels"))
			row(channelHeader(l)...)
			for _, r := range d.Channels.Total {
				row(channelCells(r)...)
			}
		case crmv1.ReportCampaigns:
			row(l("campaigns"), l("sinceStart"))
			row(campaignHeader(l)...)
			for _, r := range d.Campaigns {
				row(campaignCells(r)...)
			}
		case crmv1.ReportExperiments:
			row(l("experiments"))
			row(armHeader(l)...)
			for _, r := range d.Experiment {
				row(armCells(r, l)...)
			}
		case crmv1.ReportBudget:
			row(l("budget"))
			row(budgetHeader(l)...)
			for _, r := range d.Budget {
				row(budgetCells(r)...)
			}
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func channelHeader(l func(string) string) []string {
	return []string{l("channel"), l("sent"), l("delivered"), l("opened"), l("clicked"), l("bounced"), l("complaints"),
		l("unsubscribes"), l("converted"), l("leads"), l("messageCost"), l("revenue"), l("cpa"), l("cpl"), l("roi")}
}

func channelCells(r crmv1.ChannelReport) []string {
	return []string{string(r.Channel), itoa(r.Sent), itoa(r.Delivered), itoa(r.Opened), itoa(r.Clicked), itoa(r.Bounced),
		itoa(r.Complaints), itoa(r.Unsubscribes), itoa(r.Converted), itoa(r.Leads), r.MessageCost, r.Revenue, r.CPA, r.CPL, r.ROI}
}

func campaignHeader(l func(string) string) []string {
	return []string{l("campaign"), l("targeted"), l("sent"), l("delivered"), l("converted"), l("grants"), l("currency"),
		l("rewardCost"), l("messageCost"), l("revenue"), l("cpa"), l("roi")}
}

func campaignCells(r CampaignRow) []string {
	cells := []string{r.Name, itoa(r.Targeted), itoa(r.Sent), itoa(r.Delivered), itoa(r.Converted), itoa(r.Grants)}
	if rep := r.Report; rep != nil {
		return append(cells, rep.Currency, rep.RewardCost, rep.MessageCost, rep.Revenue, rep.CPA, rep.ROI)
	}
	return append(cells, "", "", "", "", "", "")
}

func armHeader(l func(string) string) []string {
	return []string{l("campaign"), l("arm"), l("players"), l("converted"), l("rate"), l("pValue"), l("significant")}
}

func armCells(r ArmRow, l func(string) string) []string {
	sig := l("no")
	if r.Arm.Significant {
		sig = l("yes")
	}
	return []string{r.Campaign, r.Arm.Name, itoa(r.Arm.Players), itoa(r.Arm.Converted), r.Arm.ConversionRate, r.Arm.PValue, sig}
}

func budgetHeader(l func(string) string) []string {
	return []string{l("campaign"), l("currency"), l("budgetCap"), l("spent"), l("percent")}
}

func budgetCells(r BudgetRow) []string {
	return []string{r.Campaign, r.Currency, r.Budget, r.Spent, strconv.FormatFloat(r.Percent, 'f', 2, 64)}
}
