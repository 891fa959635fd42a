// Package cli is `kubectl croupier`: Campaign status and pause/resume through the
// Kubernetes API, and the dispatcher's admin API (preview, test send, explain, history)
// called with the user's own kubeconfig identity (client certificate or bearer token).
package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/money"
	campaignreport "github.com/croupier-crm/croupier/internal/report"
)

// Options are the plugin's flags.
type Options struct {
	Kube *genericclioptions.ConfigFlags
	// Dispatcher is the admin API's base URL; DispatcherCA verifies its certificate.
	Dispatcher   string
	DispatcherCA string
	Insecure     bool
	Out, Err     io.Writer
}

// NewCommand is `kubectl croupier`.
func NewCommand(out, errOut io.Writer) *cobra.Command {
	o := &Options{Kube: genericclioptions.NewConfigFlags(true), Out: out, Err: errOut}
	root := &cobra.Command{
		Use:           "kubectl croupier",
		Short:         "Croupier campaigns from kubectl: status, preview, test sends, explain, history, pause",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	o.Kube.AddFlags(root.PersistentFlags())
	dflt := os.Getenv("CROUPIER_DISPATCHER")
	if dflt == "" {
		dflt = "https://127.0.0.1:8443"
	}
	root.PersistentFlags().StringVar(&o.Dispatcher, "dispatcher", dflt, "the dispatcher's admin API URL (env CROUPIER_DISPATCHER)")
	root.PersistentFlags().StringVar(&o.DispatcherCA, "dispatcher-ca", os.Getenv("CROUPIER_DISPATCHER_CA"), "CA file that signs the dispatcher's certificate (env CROUPIER_DISPATCHER_CA; make dev prints its own)")
	root.PersistentFlags().BoolVar(&o.Insecure, "insecure-skip-dispatcher-verify", false, "do not verify the dispatcher's certificate (make dev's is self-signed)")
	root.AddCommand(o.status(), o.report(), o.preview(), o.testSend(), o.explain(), o.history(), o.pause(true), o.pause(false), o.canI())
	return root
}

// canI answers what `kubectl auth can-i` cannot: the admin API's resources are not served
// by the API server (no discovery), so can-i warns and says no. A SelfSubjectAccessReview
// in the admin group asks the authorizer itself, as the dispatcher does.
func (o *Options) canI() *cobra.Command {
	return &cobra.Command{
		Use:   "can-i VERB RESOURCE",
		Short: "Whether you may call an admin API route: e.g. can-i get players/explain, can-i create players/erase",
		Long: "Checks a right on the dispatcher's admin API (group " + crmv1.AdminGroup + ") in the namespace (the brand)\n" +
			"with a SelfSubjectAccessReview. Resources: " + strings.Join(crmv1.AdminResources, ", ") + ".\n" +
			"Prints yes or no and exits 0 or 1, like kubectl auth can-i.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			verb, resource := args[0], args[1]
			if !slices.Contains(crmv1.AdminResources, resource) {
				return fmt.Errorf("%q is not an admin API resource; one of %s", resource, strings.Join(crmv1.AdminResources, ", "))
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			cfg, err := o.Kube.ToRESTConfig()
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			res, sub, _ := strings.Cut(resource, "/")
			review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(cmd.Context(), &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: verb, Group: crmv1.AdminGroup, Resource: res, Subresource: sub}}}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if !review.Status.Allowed {
				fmt.Fprintln(o.Out, "no")
				if review.Status.Reason != "" {
					fmt.Fprintln(o.Err, review.Status.Reason)
				}
				cmd.SilenceErrors = true
				return errNo
			}
			fmt.Fprintln(o.Out, "yes")
			return nil
		},
	}
}

// errNo is can-i's answer "no": exit status 1, nothing more printed.
var errNo = errors.New("no")

func (o *Options) namespace() (string, error) {
	ns, _, err := o.Kube.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// kube is the namespace and a client of the kubeconfig's context.
func (o *Options) kube() (string, client.Client, error) {
	ns, err := o.namespace()
	if err != nil {
		return "", nil, err
	}
	c, err := o.client()
	return ns, c, err
}

func (o *Options) client() (client.Client, error) {
	cfg, err := o.Kube.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	s := scheme.Scheme
	if err := crmv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: s})
}

func (o *Options) status() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Campaigns of the namespace (brand): phase, sends, spend against budget",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, c, err := o.kube()
			if err != nil {
				return err
			}
			var list crmv1.CampaignList
			if err := c.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
				return err
			}
			sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
			// DELIVERED counts delivery reports, which only some providers send (SMS
			// aggregators' DLRs, Viber, SendGrid and Mailgun events): a campaign none of
			// whose channels has such a provider shows "-", not a misleading 0.
			var policies crmv1.ChannelPolicyList
			if err := c.List(cmd.Context(), &policies, client.InNamespace(ns)); err != nil {
				return err
			}
			reports := map[crmv1.Channel]bool{}
			for _, cp := range policies.Items {
				for _, p := range cp.Spec.Providers {
					reports[cp.Spec.Channel] = reports[cp.Spec.Channel] || p.Type.DeliveryReports()
				}
			}
			w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CAMPAIGN\tREADY\tPHASE\tSENT\tDELIVERED\tCONVERTED\tSPENT/BUDGET\tNEXT RUN\tPAUSED")
			for _, cp := range list.Items {
				ready, paused := "Unknown", "-"
				for _, cond := range cp.Status.Conditions {
					switch {
					case cond.Type == crmv1.ConditionReady:
						ready = string(cond.Status)
					case cond.Type == crmv1.ConditionPaused && cond.Status == metav1.ConditionTrue:
						paused = cond.Reason
					}
				}
				var sent, delivered, converted int64
				if ct := cp.Status.Counters; ct != nil {
					sent, delivered, converted = ct.Sent, ct.Delivered, ct.Converted
				}
				deliveredCol := "-"
				for _, content := range cp.Spec.Contents {
					for _, m := range content.Messages {
						if reports[m.Channel] {
							deliveredCol = strconv.FormatInt(delivered, 10)
						}
					}
				}
				spend := "-"
				if sp := cp.Status.Spend; sp != nil && sp.Spent != nil {
					spend = showMoney(sp.Spent.Amount, sp.Spent.Currency)
				}
				if b := cp.Spec.Budget; b != nil && b.Total != nil {
					if spend == "-" {
						spend = showMoney("0", b.Total.Currency)
					}
					spend += " / " + showMoney(b.Total.Amount, b.Total.Currency)
				}
				next := "-"
				if cp.Status.NextRunTime != nil {
					next = cp.Status.NextRunTime.UTC().Format(time.RFC3339)
				}
				phase := string(cp.Status.Phase)
				if phase == "" {
					phase = "-" // not reconciled yet
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", cp.Name, ready, phase, sent, deliveredCol, converted, spend, next, paused)
			}
			return w.Flush()
		},
	}
}

// report prints what a campaign did, in all and per channel (status.report and
// status.channels as the manager sums them; docs/analytics.md defines each figure).
func (o *Options) report() *cobra.Command {
	return &cobra.Command{
		Use:   "report CAMPAIGN",
		Short: "What a campaign did: sends, conversions, cost, revenue, CPA, in all and per channel",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := o.kube()
			if err != nil {
				return err
			}
			var cp crmv1.Campaign
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, &cp); err != nil {
				return err
			}
			ct := cp.Status.Counters
			if ct == nil {
				ct = &crmv1.CampaignCounters{}
			}
			w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "campaign\t%s/%s\n", ns, cp.Name)
			fmt.Fprintf(w, "launched\t%d\ntargeted\t%d\nsent\t%d\ndelivered\t%d\nfailed\t%d\nconverted\t%d\nleads\t%d\nrewards granted\t%d\nrewards cancelled\t%d\nbonuses activated\t%d\n",
				ct.Launched, ct.Targeted, ct.Sent, ct.Delivered, ct.Failed, ct.Converted, ct.Leads, ct.RewardsGranted, ct.RewardsCancelled, ct.BonusesActivated)
			if r := cp.Status.Report; r != nil {
				fmt.Fprintf(w, "message cost\t%s\nreward cost\t%s\nrevenue\t%s\ncpa\t%s\ncpl\t%s\nroi\t%s\n", showMoney(r.MessageCost, r.Currency),
					showMoney(r.RewardCost, r.Currency), showMoney(r.Revenue, r.Currency), dash(r.CPA, r.Currency), dash(r.CPL, r.Currency), ratio(r.ROI))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if err := o.printChannels(&cp); err != nil {
				return err
			}
			// The post-campaign effect is the dispatcher's (its admin API's campaign report);
			// the status's figures stand on their own when it does not answer.
			var body struct {
				Effect []campaignreport.EffectRow `json:"effect"`
			}
			if err := o.call(cmd.Context(), http.MethodGet, "campaigns/"+url.PathEscape(cp.Name)+"/report", nil, &body); err != nil {
				fmt.Fprintf(o.Out, "\neffect: not read (%v)\n", err)
				return nil
			}
			return o.printEffect(body.Effect)
		},
	}
}

// printEffect prints the post-campaign effect per arm (docs/analytics.md).
func (o *Options) printEffect(rows []campaignreport.EffectRow) error {
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintf(o.Out, "\neffect over %d days before and after each player's start (per player; uplift against the control group; p: Welch, or paired without a control)\n", rows[0].Days)
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ARM\tPLAYERS\tDEPOSITS BEFORE\tAFTER\tCHANGE\tUPLIFT\tP\tNGR BEFORE\tAFTER\tCHANGE\tUPLIFT\tP\tDAY 1\tDAY 7\tDAY 30\tSIGNIFICANT")
	for _, r := range rows {
		ret := make([]string, 3)
		for i, x := range r.Retention {
			if i < 3 {
				ret[i] = "-"
				if x.Rate != "" {
					ret[i] = fmt.Sprintf("%s of %d", x.Rate, x.Eligible)
				}
			}
		}
		sig := "no"
		if r.Significant {
			sig = "yes"
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Arm, r.Players,
			or(r.DepositsBefore), or(r.DepositsAfter), or(r.DepositsChange), or(r.DepositsUplift), or(r.DepositsPValue),
			or(r.NGRBefore), or(r.NGRAfter), or(r.NGRChange), or(r.NGRUplift), or(r.NGRPValue), ret[0], ret[1], ret[2], sig)
	}
	return w.Flush()
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printChannels prints the campaign's figures per channel (status.channels).
func (o *Options) printChannels(cp *crmv1.Campaign) error {
	if len(cp.Status.Channels) == 0 {
		return nil
	}
	currency := ""
	if r := cp.Status.Report; r != nil {
		currency = r.Currency
	}
	fmt.Fprintln(o.Out)
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHANNEL\tSENT\tDELIVERED\tOPENED\tCLICKED\tBOUNCED\tCOMPLAINTS\tUNSUBSCRIBES\tFAILED\tUNDELIVERED\tCONVERTED\tMESSAGE COST\tREVENUE\tCPA\tLEADS\tCPL\tROI")
	for _, ch := range cp.Status.Channels {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", ch.Channel, ch.Sent, ch.Delivered, ch.Opened, ch.Clicked,
			ch.Bounced, ch.Complaints, ch.Unsubscribes, ch.Failed, ch.Undelivered, ch.Converted, dash(ch.MessageCost, currency), dash(ch.Revenue, currency), dash(ch.CPA, currency),
			ch.Leads, dash(ch.CPL, currency), ratio(ch.ROI))
	}
	return w.Flush()
}

// dash is an amount in Croupier's money form, or "-" when there is none.
func dash(amount, currency string) string {
	if amount == "" {
		return "-"
	}
	return showMoney(amount, currency)
}

// showMoney writes an amount in the one form Croupier shows money in: the currency's
// digits at least ("0.00 AZN", "120.50 AZN", "0.002 AZN"); an amount it cannot read is
// shown as it is.
func showMoney(amount, currency string) string {
	micros, err := money.ParseMicros(amount, currency)
	if err != nil {
		return amount + " " + currency
	}
	return money.FormatMicrosIn(micros, currency) + " " + currency
}

func (o *Options) pause(on bool) *cobra.Command {
	use, short := "pause CAMPAIGN", "Set spec.paused: the campaign sends nothing until resumed"
	if !on {
		use, short = "resume CAMPAIGN", "Clear spec.paused"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + ".\n\nUnder Argo CD (or any GitOps sync) change spec.paused in Git instead: " +
			"a sync reverts an edit made here. A campaign paused by its budget (BudgetExhausted) resumes when its budget is raised in the spec.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, c, err := o.kube()
			if err != nil {
				return err
			}
			patch := []byte(fmt.Sprintf(`{"spec":{"paused":%t}}`, on))
			cp := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: args[0]}}
			if err := c.Patch(cmd.Context(), cp, client.RawPatch(types.MergePatchType, patch)); err != nil {
				return err
			}
			verb := "paused"
			if !on {
				verb = "resumed"
			}
			fmt.Fprintf(o.Out, "campaign %s/%s %s\n", ns, args[0], verb)
			return nil
		},
	}
}

func (o *Options) preview() *cobra.Command {
	return &cobra.Command{
		Use:   "preview CAMPAIGN",
		Short: "Dry run: the audience and what routing would decide, by channel and reason; nothing is sent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p bus.Preview
			if err := o.call(cmd.Context(), http.MethodGet, "campaigns/"+url.PathEscape(args[0])+"/preview", nil, &p); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "audience %d, would send %d (step %s)\n", p.Audience, p.WouldSend, p.Step)
			for _, sec := range []struct {
				name string
				m    map[string]int64
			}{{"by channel", p.ByChannel}, {"by locale", p.ByLocale}, {"deferred", p.Deferred}, {"suppressed", p.Suppressed}} {
				keys := make([]string, 0, len(sec.m))
				for k := range sec.m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(o.Out, "  %-10s %-28s %d\n", sec.name, k, sec.m[k])
				}
			}
			if len(p.Missing) > 0 {
				fmt.Fprintf(o.Out, "partitions without an answer (not counted): %v\n", p.Missing)
			}
			return nil
		},
	}
}

func (o *Options) testSend() *cobra.Command {
	var to, step string
	cmd := &cobra.Command{
		Use:   "test-send CAMPAIGN --to PLAYER",
		Short: "Send the campaign's message to a seed player, marked as a test",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]string{"player": to, "step": step})
			var r struct {
				IntentID string `json:"intentId"`
				Step     string `json:"step"`
			}
			if err := o.call(cmd.Context(), http.MethodPost, "campaigns/"+url.PathEscape(args[0])+"/testsend", body, &r); err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "test send %s of step %s queued for %s; `kubectl croupier history %s` shows its outcome\n", r.IntentID, r.Step, to, to)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the seed player's id")
	cmd.Flags().StringVar(&step, "step", "", "the send step (default: the first)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *Options) explain() *cobra.Command {
	var campaign string
	cmd := &cobra.Command{
		Use:   "explain PLAYER",
		Short: "Why a player would or would not get a campaign's message now, step by step",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "players/" + url.PathEscape(args[0]) + "/explain"
			if campaign != "" {
				path += "?campaign=" + url.QueryEscape(campaign)
			}
			return o.callPrint(cmd.Context(), path)
		},
	}
	cmd.Flags().StringVar(&campaign, "campaign", "", "the campaign to explain")
	return cmd
}

func (o *Options) history() *cobra.Command {
	return &cobra.Command{
		Use:   "history PLAYER",
		Short: "Every decision and delivery attempt for a player, with its reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.callPrint(cmd.Context(), "players/"+url.PathEscape(args[0])+"/history")
		},
	}
}

func (o *Options) callPrint(ctx context.Context, path string) error {
	var v any
	if err := o.call(ctx, http.MethodGet, path, nil, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(o.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// call sends a request to the dispatcher's admin API for the namespace's brand, with the
// kubeconfig user's client certificate or bearer token.
func (o *Options) call(ctx context.Context, method, path string, body []byte, out any) error {
	ns, err := o.namespace()
	if err != nil {
		return err
	}
	hc, token, err := o.httpClient()
	if err != nil {
		return err
	}
	target := strings.TrimSuffix(o.Dispatcher, "/") + "/v1/brands/" + url.PathEscape(ns) + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the dispatcher at %s: %w", o.Dispatcher, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		var p struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, p.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

// httpClient presents the kubeconfig user's client certificate; a token goes in a header.
func (o *Options) httpClient() (*http.Client, string, error) {
	cfg, err := o.Kube.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // an explicit flag for make dev
	if o.DispatcherCA != "" {
		pem, err := os.ReadFile(o.DispatcherCA)
		if err != nil {
			return nil, "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", errors.New("--dispatcher-ca holds no certificate")
		}
		tc.RootCAs = pool
	}
	if cert, err := clientCert(cfg); err != nil {
		return nil, "", err
	} else if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	token := cfg.BearerToken
	if token == "" && cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, "", err
		}
		token = strings.TrimSpace(string(b))
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, token, nil
}

func clientCert(cfg *rest.Config) (*tls.Certificate, error) {
	certPEM, keyPEM := cfg.CertData, cfg.KeyData
	var err error
	if len(certPEM) == 0 && cfg.CertFile != "" {
		if certPEM, err = os.ReadFile(cfg.CertFile); err != nil {
			return nil, err
		}
	}
	if len(keyPEM) == 0 && cfg.KeyFile != "" {
		if keyPEM, err = os.ReadFile(cfg.KeyFile); err != nil {
			return nil, err
		}
	}
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig's client certificate: %w", err)
	}
	return &c, nil
}

// ratio writes an ROI ratio with its percentage ("1.50 (150%)"), or "-".
func ratio(r string) string {
	f, err := strconv.ParseFloat(r, 64)
	if r == "" || err != nil {
		return "-"
	}
	return fmt.Sprintf("%s (%.0f%%)", r, f*100)
}
