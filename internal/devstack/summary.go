package devstack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/money"
)

// summaryLine is make dev's live line: events per second, decisions by result and the
// top suppression reasons, sends by channel, what the sinks received, and the spend.
type summaryLine struct {
	sim      *simulator
	sinks    *sinks
	c        client.Client
	metrics  string
	lastSent int64
	lastAt   time.Time
}

var sample = regexp.MustCompile(`^(croupier_[a-z_]+)\{([^}]*)\} ([0-9.e+]+)$`)

func labels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

func (l *summaryLine) next(ctx context.Context) string {
	now := time.Now()
	sent := l.sim.sent.Load()
	rate := 0.0
	if !l.lastAt.IsZero() {
		rate = float64(sent-l.lastSent) / now.Sub(l.lastAt).Seconds()
	}
	l.lastSent, l.lastAt = sent, now
	results := map[string]float64{}
	reasons := map[string]float64{}
	channels := map[string]float64{}
	if resp, err := http.Get(l.metrics); err == nil {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m := sample.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			v, _ := strconv.ParseFloat(m[3], 64)
			lb := labels(m[2])
			switch m[1] {
			case "croupier_decisions_total":
				results[lb["result"]] += v
				if lb["result"] == "suppress" || lb["result"] == "drop" {
					reasons[lb["reason"]] += v
				}
			case "croupier_delivery_attempts_total":
				if lb["result"] == "sent" {
					channels[lb["channel"]] += v
				}
			}
		}
		resp.Body.Close()
	}
	top := make([]string, 0, len(reasons))
	for r := range reasons {
		top = append(top, r)
	}
	sort.Slice(top, func(i, j int) bool { return reasons[top[i]] > reasons[top[j]] })
	if len(top) > 3 {
		top = top[:3]
	}
	var why []string
	for _, r := range top {
		why = append(why, fmt.Sprintf("%s %.0f", r, reasons[r]))
	}
	var by []string
	for _, ch := range []string{"email", "sms", "push", "webPush", "inApp", "webhook", "viber"} {
		if channels[ch] > 0 {
			by = append(by, fmt.Sprintf("%s %.0f", ch, channels[ch]))
		}
	}
	var camps crmv1.CampaignList
	_ = l.c.List(ctx, &camps, client.InNamespace(brand))
	var spent int64
	for _, cp := range camps.Items {
		if sp := cp.Status.Spend; sp != nil && sp.Spent != nil {
			if v, err := money.ParseMicros(sp.Spent.Amount, sp.Spent.Currency); err == nil {
				spent += v
			}
		}
	}
	return fmt.Sprintf("%s  %5.0f ev/s  decided: send %.0f, deferred %.0f, suppressed %.0f (%s)  sent: %s  sinks: mail %d, sms %d, push %d, webhook %d  spend %s AZN   ",
		now.Format("15:04:05"), rate, results["send"], results["defer"], results["suppress"]+results["drop"], strings.Join(why, ", "),
		strings.Join(by, ", "), l.sinks.mails.Load(), l.sinks.sms.Load(), l.sinks.pushes.Load(), l.sinks.webhooks.Load(), money.FormatMicros(spent))
}
