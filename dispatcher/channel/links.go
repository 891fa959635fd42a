package channel

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
)

// Links rewrites a message's links through Croupier's redirect (<baseURL>/l/<id>) with
// UTM parameters, and adds an open pixel (<baseURL>/o/<id>) to HTML email, when the
// channel's LinkPolicy says shorten. Ids are 16 random bytes: they cannot be guessed or
// enumerated, and the destination comes only from croupier-links, so a link cannot be
// forged into an open redirect.
type Links struct {
	JS jetstream.JetStream
}

var (
	hrefRE = regexp.MustCompile(`href="(https?://[^"]+)"`)
	urlRE  = regexp.MustCompile(`https?://[^\s<>"')\]]+`)
)

// Rewrite changes the job's bodies in place; the link records are stored before it returns.
func (l *Links) Rewrite(ctx context.Context, job *bus.DeliveryJob, ch crmv1.Channel, pol *crmv1.LinkPolicy) error {
	if l == nil || pol == nil || !pol.Shorten || pol.BaseURL == "" {
		return nil
	}
	base := strings.TrimSuffix(pol.BaseURL, "/")
	keep := job.Data["unsubscribeURL"] // one-click unsubscribe stays direct (RFC 8058)
	var pending []jetstream.PubAckFuture
	short := map[string]string{}
	shorten := func(raw string) string {
		if raw == keep || strings.HasPrefix(raw, base+"/") {
			return raw
		}
		if s, ok := short[raw]; ok {
			return s
		}
		rec := bus.Link{URL: withUTM(raw, pol.UTM, job.Campaign, ch), Brand: job.Brand, Player: job.Player, Decision: job.DecisionID,
			Campaign: job.Campaign, Channel: ch}
		id, f, err := l.store(rec)
		if err != nil {
			return raw
		}
		pending = append(pending, f)
		short[raw] = base + "/l/" + id
		return short[raw]
	}
	if job.HTML != "" {
		job.HTML = hrefRE.ReplaceAllStringFunc(job.HTML, func(m string) string {
			return `href="` + shorten(hrefRE.FindStringSubmatch(m)[1]) + `"`
		})
		if ch == crmv1.ChannelEmail {
			if id, f, err := l.store(bus.Link{Brand: job.Brand, Player: job.Player, Decision: job.DecisionID, Campaign: job.Campaign, Channel: ch}); err == nil {
				pending = append(pending, f)
				pixel := `<img src="` + base + "/o/" + id + `" width="1" height="1" alt="" style="display:none">`
				if i := strings.LastIndex(strings.ToLower(job.HTML), "</body>"); i >= 0 {
					job.HTML = job.HTML[:i] + pixel + job.HTML[i:]
				} else {
					job.HTML += pixel
				}
			}
		}
	}
	job.Text = urlRE.ReplaceAllStringFunc(job.Text, shorten)
	if v := job.Data["deepLink"]; strings.HasPrefix(v, "http") {
		job.Data["deepLink"] = shorten(v)
	}
	return awaitAll(ctx, pending)
}

func (l *Links) store(rec bus.Link) (string, jetstream.PubAckFuture, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	raw, _ := json.Marshal(rec)
	f, err := l.JS.PublishAsync("$KV."+bus.BucketLinks+"."+id, raw, jetstream.WithStallWait(30*time.Second))
	return id, f, err
}

// withUTM adds the policy's UTM parameters a link does not already have; utm_campaign
// defaults to the campaign and utm_medium to the channel.
func withUTM(raw string, utm *crmv1.UTM, campaign string, ch crmv1.Channel) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	set := func(k, v string) {
		if v != "" && q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	source, medium, name := "croupier", string(ch), campaign
	if utm != nil {
		source = cmp.Or(utm.Source, source)
		medium = cmp.Or(utm.Medium, medium)
		name = cmp.Or(utm.Campaign, name)
	}
	set("utm_source", source)
	set("utm_medium", medium)
	set("utm_campaign", name)
	u.RawQuery = q.Encode()
	return u.String()
}
