package report_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/report"
)

// effectCounters are an arm's effect counters from each player's before and after
// (deposits and NGR, minor units), summed as the owners sum them.
func effectCounters(sum map[string]int64, arm string, depBefore, depAfter, ngrBefore, ngrAfter []int64) {
	for i := range depBefore {
		sum[bus.EffectStat(arm, bus.EffectPlayers)]++
		sum[bus.EffectStat(arm, bus.EffectDepBefore)] += depBefore[i]
		sum[bus.EffectStat(arm, bus.EffectDepAfter)] += depAfter[i]
		d := depAfter[i] - depBefore[i]
		sum[bus.EffectStat(arm, bus.EffectDepDiffSq)] += d * d
		sum[bus.EffectStat(arm, bus.EffectNGRBefore)] += ngrBefore[i]
		sum[bus.EffectStat(arm, bus.EffectNGRAfter)] += ngrAfter[i]
		g := ngrAfter[i] - ngrBefore[i]
		sum[bus.EffectStat(arm, bus.EffectNGRDiffSq)] += g * g
	}
}

// TestEffectAgainstControl: hand-made players in a control group and an arm; the p-values
// are scipy's (Debian python3-scipy 1.10.1):
//
//	stats.ttest_ind(a_diffs, control_diffs, equal_var=False).pvalue  deposits 0.0518559843, NGR 0.1352534664
//	stats.chi2_contingency([[10,30],[28,29]], correction=False)[1]   day 1: 0.0165809501
//	stats.chi2_contingency([[4,36],[12,38]], correction=False)[1]    day 7: 0.0843133504
func TestEffectAgainstControl(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sum := map[string]int64{}
	effectCounters(sum, "control", []int64{100, 0, 50, 30}, []int64{120, 10, 40, 30}, []int64{500, -200, 0, 80}, []int64{300, 100, -50, 80})
	effectCounters(sum, "a", []int64{0, 200, 10, 40, 60}, []int64{50, 260, 30, 100, 60}, []int64{0, 1000, -300, 40, 70}, []int64{400, 1500, 100, 40, 90})
	// Retention: complete cohorts (done), one whose day 1 is over (started 2026-12-04), one
	// whose day 1 is not (2026-12-06: a start late that day ends day 1 on the 8th).
	for arm, v := range map[string][4]int64{"control": {40, 10, 4, 1}, "a": {50, 25, 12, 2}} {
		for i, n := range []string{bus.EffectStarted, bus.EffectD1, bus.EffectD7, bus.EffectD30} {
			sum[bus.EffectDoneStat(arm, n)] = v[i]
		}
	}
	sum[bus.EffectCohortStat("a", "2026-12-04", bus.EffectStarted)] = 7
	sum[bus.EffectCohortStat("a", "2026-12-04", bus.EffectD1)] = 3
	sum[bus.EffectCohortStat("a", "2026-12-06", bus.EffectStarted)] = 5
	sum[bus.EffectCohortStat("a", "2026-12-06", bus.EffectD1)] = 5
	spec := &crmv1.CampaignSpec{Experiment: &crmv1.Experiment{ControlPercent: 10, MinSampleSize: 4,
		Variants: []crmv1.Variant{{Name: "a", Weight: 100}}}}
	rows := report.Effect(spec, sum, now)
	if len(rows) != 2 || rows[0].Arm != "control" || rows[1].Arm != "a" {
		t.Fatalf("rows %+v", rows)
	}
	c, a := rows[0], rows[1]
	if c.Players != 4 || c.DepositsBefore != "0.45" || c.DepositsAfter != "0.50" || c.DepositsChange != "0.05" || c.DepositsUplift != "" || c.Days != 7 {
		t.Errorf("control %+v", c)
	}
	if a.Players != 5 || a.DepositsBefore != "0.62" || a.DepositsAfter != "1.00" || a.DepositsChange != "0.38" || a.DepositsUplift != "0.33" {
		t.Errorf("arm a deposits %+v", a)
	}
	// NGR per player: control before 95, after 107.5 (change 12.5); a before 162, after 426 (264).
	if a.NGRBefore != "1.62" || a.NGRAfter != "4.26" || a.NGRUplift != "2.52" {
		t.Errorf("arm a NGR %+v", a)
	}
	if a.DepositsPValue != "0.0519" || a.NGRPValue != "0.1353" {
		t.Errorf("Welch p-values %s %s, scipy 0.0519 0.1353", a.DepositsPValue, a.NGRPValue)
	}
	if a.Significant {
		t.Error("significant at p 0.0519 and 0.1353")
	}
	want := []report.RetentionRow{{Day: 1, Eligible: 57, Active: 28, Rate: "0.4912", PValue: "0.0166"}, {Day: 7, Eligible: 50, Active: 12, Rate: "0.2400", PValue: "0.0843"},
		{Day: 30, Eligible: 50, Active: 2, Rate: "0.0400"}}
	for i, w := range want {
		g := a.Retention[i]
		if g.Day != w.Day || g.Eligible != w.Eligible || g.Active != w.Active || g.Rate != w.Rate || (w.PValue != "" && g.PValue != w.PValue) {
			t.Errorf("retention day %d: %+v, want %+v", w.Day, g, w)
		}
	}
}

// TestEffectWithoutControl: without a control group the change is tested against zero;
// scipy's stats.ttest_rel(after, before).pvalue is 0.0339661445 for deposits and
// 0.0663238011 for NGR.
func TestEffectWithoutControl(t *testing.T) {
	sum := map[string]int64{}
	effectCounters(sum, bus.EffectAll, []int64{0, 200, 10, 40, 60}, []int64{50, 260, 30, 100, 60}, []int64{0, 1000, -300, 40, 70}, []int64{400, 1500, 100, 40, 90})
	spec := &crmv1.CampaignSpec{Goal: &crmv1.Goal{Window: &metav1.Duration{Duration: 72 * time.Hour}}}
	rows := report.Effect(spec, sum, time.Now())
	if len(rows) != 1 || rows[0].Arm != bus.EffectAll || rows[0].Days != 3 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.DepositsPValue != "0.0340" || r.NGRPValue != "0.0663" || r.DepositsUplift != "" {
		t.Errorf("paired p-values %s %s, scipy 0.0340 0.0663 (%+v)", r.DepositsPValue, r.NGRPValue, r)
	}
	if r.Significant {
		t.Error("5 players are below the default minimum sample size (1000)")
	}
	if report.Effect(spec, map[string]int64{bus.StatSent: 3}, time.Now()) != nil {
		t.Error("an effect without measured players")
	}
}
