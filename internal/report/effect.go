package report

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// EffectTrailingDays is the most days before a start the player record keeps
// (players.TrailingDays, which a test holds equal).
const EffectTrailingDays = 7

// EffectDays is a campaign's N: its goal window in whole days (7 by default), at least 1,
// at most EffectTrailingDays.
func EffectDays(spec *crmv1.CampaignSpec) int {
	w := 7 * 24 * time.Hour
	if e := spec.Experiment; e != nil && e.GoalWindow != nil {
		w = e.GoalWindow.Duration
	} else if g := spec.Goal; g != nil && g.Window != nil {
		w = g.Window.Duration
	}
	return min(max(int(w/(24*time.Hour)), 1), EffectTrailingDays)
}

// EffectRow is one arm's post-campaign effect: per player, deposits (ARPU) and net gaming
// revenue in the N days before the start and after it, the change, and against the
// control group (when there is one) the uplift with Welch's test; without a control, the
// change is tested against zero (paired t-test). Amounts are in major units.
type EffectRow struct {
	Arm     string `json:"arm"`
	Players int64  `json:"players"`
	Days    int    `json:"days"`

	DepositsBefore string `json:"depositsBefore,omitempty"`
	DepositsAfter  string `json:"depositsAfter,omitempty"`
	DepositsChange string `json:"depositsChange,omitempty"`
	DepositsUplift string `json:"depositsUplift,omitempty"`
	DepositsPValue string `json:"depositsPValue,omitempty"`
	NGRBefore      string `json:"ngrBefore,omitempty"`
	NGRAfter       string `json:"ngrAfter,omitempty"`
	NGRChange      string `json:"ngrChange,omitempty"`
	NGRUplift      string `json:"ngrUplift,omitempty"`
	NGRPValue      string `json:"ngrPValue,omitempty"`

	Retention []RetentionRow `json:"retention"`
	// Significant: a p-value of deposits or NGR below 0.05, both samples at the minimum
	// sample size.
	Significant bool `json:"significant,omitempty"`
}

// RetentionRow is the share of an arm's players active on day Day after their start, over
// the players whose day Day is over; PValue is the chi-square test against the control.
type RetentionRow struct {
	Day      int    `json:"day"`
	Eligible int64  `json:"eligible"`
	Active   int64  `json:"active"`
	Rate     string `json:"rate,omitempty"`
	PValue   string `json:"pValue,omitempty"`
}

// sample is one measure's sums over an arm's players: n, sum before, sum after, sum of
// squared differences (after - before).
type sample struct{ n, before, after, diffSq float64 }

func (s sample) mean() float64 { return (s.after - s.before) / s.n }

func (s sample) variance() float64 {
	m := s.mean()
	return math.Max((s.diffSq-s.n*m*m)/(s.n-1), 0)
}

// welch is the two-sided p-value of Welch's t-test of the differences of x and y.
func welch(x, y sample) float64 {
	if x.n < 2 || y.n < 2 {
		return math.NaN()
	}
	se1, se2 := x.variance()/x.n, y.variance()/y.n
	if se1+se2 == 0 {
		return math.NaN()
	}
	t := (x.mean() - y.mean()) / math.Sqrt(se1+se2)
	df := (se1 + se2) * (se1 + se2) / (se1*se1/(x.n-1) + se2*se2/(y.n-1))
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
}

// paired is the two-sided p-value of the t-test of the mean difference against zero.
func paired(x sample) float64 {
	if x.n < 2 {
		return math.NaN()
	}
	v := x.variance()
	if v == 0 {
		return math.NaN()
	}
	t := x.mean() / math.Sqrt(v/x.n)
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: x.n - 1}.Survival(math.Abs(t))
}

// Effect is the campaign's post-campaign effect per arm from its summed counters, its
// retention counted over the cohorts whose day is over at now; nil before any player was
// measured.
func Effect(spec *crmv1.CampaignSpec, sum map[string]int64, now time.Time) []EffectRow {
	arms := map[string]bool{}
	for k := range sum {
		if rest, ok := strings.CutPrefix(k, bus.EffectPrefix); ok {
			if arm, _, ok := strings.Cut(rest, "."); ok {
				arms[arm] = true
			}
		}
	}
	if len(arms) == 0 {
		return nil
	}
	names := make([]string, 0, len(arms))
	for a := range arms {
		names = append(names, a)
	}
	// The control first, then the variants in the spec's order, then the rest by name.
	order := map[string]int{bus.EffectAll: -1, "control": 0}
	if e := spec.Experiment; e != nil {
		for i, v := range e.Variants {
			order[v.Name] = i + 1
		}
	}
	sort.Slice(names, func(i, j int) bool {
		oi, iok := order[names[i]]
		oj, jok := order[names[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	minimum := int64(1000)
	if e := spec.Experiment; e != nil && e.MinSampleSize > 0 {
		minimum = int64(e.MinSampleSize)
	}
	days := EffectDays(spec)
	get := func(arm, before, after, diffSq string) sample {
		return sample{n: float64(sum[bus.EffectStat(arm, bus.EffectPlayers)]), before: float64(sum[bus.EffectStat(arm, before)]),
			after: float64(sum[bus.EffectStat(arm, after)]), diffSq: float64(sum[bus.EffectStat(arm, diffSq)])}
	}
	dep := func(arm string) sample {
		return get(arm, bus.EffectDepBefore, bus.EffectDepAfter, bus.EffectDepDiffSq)
	}
	ngr := func(arm string) sample {
		return get(arm, bus.EffectNGRBefore, bus.EffectNGRAfter, bus.EffectNGRDiffSq)
	}
	_, hasControl := arms["control"]
	retention := retentionOf(sum, now)
	var out []EffectRow
	for _, name := range names {
		d, g := dep(name), ngr(name)
		row := EffectRow{Arm: name, Players: int64(d.n), Days: days}
		if d.n > 0 {
			row.DepositsBefore, row.DepositsAfter, row.DepositsChange = major(d.before/d.n), major(d.after/d.n), major(d.mean())
			row.NGRBefore, row.NGRAfter, row.NGRChange = major(g.before/g.n), major(g.after/g.n), major(g.mean())
		}
		var pd, pg float64
		enough := d.n >= float64(minimum)
		switch {
		case hasControl && name != "control":
			c, cg := dep("control"), ngr("control")
			if c.n > 0 && d.n > 0 {
				row.DepositsUplift, row.NGRUplift = major(d.mean()-c.mean()), major(g.mean()-cg.mean())
			}
			pd, pg = welch(d, c), welch(g, cg)
			enough = enough && c.n >= float64(minimum)
		case !hasControl:
			pd, pg = paired(d), paired(g)
		default:
			pd, pg = math.NaN(), math.NaN()
		}
		row.DepositsPValue, row.NGRPValue = pstr(pd), pstr(pg)
		row.Significant = enough && (pd < significance || pg < significance)
		for _, k := range []int{1, 7, 30} {
			r := retention[name][k]
			rr := RetentionRow{Day: k, Eligible: r[0], Active: r[1]}
			if r[0] > 0 {
				rr.Rate = strconv.FormatFloat(float64(r[1])/float64(r[0]), 'f', 4, 64)
			}
			if hasControl && name != "control" {
				c := retention["control"][k]
				rr.PValue = pstr(chiSquareP(&arm{players: c[0], converted: c[1]}, &arm{players: r[0], converted: r[1]}))
			}
			row.Retention = append(row.Retention, rr)
		}
		out = append(out, row)
	}
	return out
}

// retentionOf is, per arm and day (1, 7, 30), the players whose day is over at now and
// those of them active on it: the done cohorts and every cohort started at least day+2
// UTC days before now's day.
func retentionOf(sum map[string]int64, now time.Time) map[string]map[int][2]int64 {
	out := map[string]map[int][2]int64{}
	add := func(arm string, k int, eligible, active int64) {
		if out[arm] == nil {
			out[arm] = map[int][2]int64{}
		}
		r := out[arm][k]
		out[arm][k] = [2]int64{r[0] + eligible, r[1] + active}
	}
	names := map[int]string{1: bus.EffectD1, 7: bus.EffectD7, 30: bus.EffectD30}
	today := now.UTC().Format(time.DateOnly)
	for key, v := range sum {
		if arm, day, name, ok := bus.ParseEffectCohortStat(key); ok && name == bus.EffectStarted {
			t, err := time.Parse(time.DateOnly, day)
			if err != nil {
				continue
			}
			for k, n := range names {
				if t.AddDate(0, 0, k+2).Format(time.DateOnly) <= today {
					add(arm, k, v, sum[bus.EffectCohortStat(arm, day, n)])
				}
			}
		}
		if rest, ok := strings.CutPrefix(key, bus.EffectPrefix); ok && strings.HasSuffix(rest, ".done."+bus.EffectStarted) {
			arm := strings.TrimSuffix(rest, ".done."+bus.EffectStarted)
			for k, n := range names {
				add(arm, k, v, sum[bus.EffectDoneStat(arm, n)])
			}
		}
	}
	return out
}

// major writes minor units of a two-digit currency as major units with two decimals.
func major(minor float64) string { return strconv.FormatFloat(minor/100, 'f', 2, 64) }

func pstr(p float64) string {
	if math.IsNaN(p) {
		return ""
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}
