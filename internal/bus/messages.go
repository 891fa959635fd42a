package bus

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// HeaderMsgID is the JetStream de-duplication header.
const HeaderMsgID = nats.MsgIdHdr

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode (EVENTS.md).
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time,omitzero"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// IdempotencyKey is source + id, the event's de-duplication key.
func (e *CloudEvent) IdempotencyKey() string { return e.Source + "/" + e.ID }

// ConfigRecord is a compiled spec in croupier-config, written by the manager and read by
// dispatchers. Exactly one of the kind fields is set.
type ConfigRecord struct {
	Kind       string    `json:"kind"`
	Brand      string    `json:"brand"`
	Name       string    `json:"name"`
	UID        string    `json:"uid"`
	Generation int64     `json:"generation"`
	SpecHash   string    `json:"specHash"`
	Published  time.Time `json:"published"`

	Campaign         *CampaignConfig         `json:"campaign,omitempty"`
	Segment          *SegmentConfig          `json:"segment,omitempty"`
	ChannelPolicy    *ChannelPolicyConfig    `json:"channelPolicy,omitempty"`
	PreferencePolicy *PreferencePolicyConfig `json:"preferencePolicy,omitempty"`
	Report           *ReportConfig           `json:"report,omitempty"`
}

// ReportConfig is a compiled Report: its spec with the defaults filled in.
type ReportConfig struct {
	Spec crmv1.ReportSpec `json:"spec"`
}

// ReportRun asks one dispatcher to make a Report's run for a scheduled time and mail it.
// RunID (Report UID + scheduled time) is the message id; the spec travels with the run, so
// the run is made from the generation that was live at its slot.
type ReportRun struct {
	RunID         string           `json:"runID"`
	Brand         string           `json:"brand"`
	Report        string           `json:"report"`
	UID           string           `json:"uid"`
	Generation    int64            `json:"generation"`
	ScheduledTime time.Time        `json:"scheduledTime"`
	Spec          crmv1.ReportSpec `json:"spec"`
}

// ReportResult is a report run's result in croupier-report-runs.
type ReportResult struct {
	RunID string `json:"runID"`
	// Generated is when the attachments were stored (once per run: a redelivered run
	// mails the stored files again and does not make new ones).
	Generated time.Time `json:"generated"`
	// Files are the attachments' names in the croupier-reports object store.
	Files []string `json:"files,omitempty"`
	// Sent is when every recipient's mail was accepted by a provider (zero until then).
	Sent time.Time `json:"sent,omitzero"`
	// Error is why the run failed ("" when it did not); it names no recipient.
	Error string `json:"error,omitempty"`
}

// MinorAmount is money in minor units.
type MinorAmount struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// CampaignConfig is a compiled Campaign: the spec with ConfigMap bodies inlined, money in
// minor units and the effective schedule.
type CampaignConfig struct {
	Spec crmv1.CampaignSpec `json:"spec"`
	// BudgetTotal, BudgetPerPeriod and BudgetPerPlayer in minor units (absent: no cap).
	BudgetTotal     *MinorAmount `json:"budgetTotal,omitempty"`
	BudgetPerPeriod *MinorAmount `json:"budgetPerPeriod,omitempty"`
	BudgetPerPlayer *MinorAmount `json:"budgetPerPlayer,omitempty"`
	// RewardValues is the upper-bound value of each named reward in minor units.
	RewardValues map[string]MinorAmount `json:"rewardValues,omitempty"`
	// ContentHashes is a hash per content name, recorded in OUTCOMES instead of bodies.
	ContentHashes map[string]string `json:"contentHashes,omitempty"`
	// ConfigMapHashes is the sha256 of each inlined ConfigMap key ("name/key").
	ConfigMapHashes map[string]string `json:"configMapHashes,omitempty"`
}

// SegmentConfig is a compiled Segment.
type SegmentConfig struct {
	Spec crmv1.SegmentSpec `json:"spec"`
}

// MicroAmount is a per-message cost in millionths of the currency's unit.
type MicroAmount struct {
	Micros   int64  `json:"micros"`
	Currency string `json:"currency"`
}

// ChannelPolicyConfig is a compiled ChannelPolicy; provider costs in micros.
type ChannelPolicyConfig struct {
	Spec          crmv1.ChannelPolicySpec `json:"spec"`
	ProviderCosts map[string]MicroAmount  `json:"providerCosts,omitempty"`
}

// PreferencePolicyConfig is a compiled PreferencePolicy with mandatory flags resolved.
type PreferencePolicyConfig struct {
	Spec      crmv1.PreferencePolicySpec `json:"spec"`
	Mandatory map[crmv1.Category]bool    `json:"mandatory"`
}

// AuditEntry is one AUDIT record: who changed what, with the diff. Players appear by id
// only; no contact data.
type AuditEntry struct {
	Time         time.Time       `json:"time"`
	Brand        string          `json:"brand"`
	Kind         string          `json:"kind"`
	Name         string          `json:"name"`
	UID          string          `json:"uid,omitempty"`
	Generation   int64           `json:"generation,omitempty"`
	Action       string          `json:"action"`
	FieldManager string          `json:"fieldManager,omitempty"`
	Actor        string          `json:"actor,omitempty"`
	Changes      []FieldChange   `json:"changes,omitempty"`
	Spec         json.RawMessage `json:"spec,omitempty"`
	Note         string          `json:"note,omitempty"`
}

// Audit actions.
const (
	AuditCreated = "created"
	AuditUpdated = "updated"
	AuditDeleted = "deleted"
)

// FieldChange is one changed path of a spec; Before or After is absent when the field
// was added or removed.
type FieldChange struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// DeadLetter is a message that could not be processed, with the reason.
type DeadLetter struct {
	Time    time.Time           `json:"time"`
	Stream  string              `json:"stream"`
	Subject string              `json:"subject"`
	Reason  string              `json:"reason"`
	Header  map[string][]string `json:"header,omitempty"`
	Data    []byte              `json:"data"`
}

// RunRequest asks every partition owner to expand a scheduled run of a campaign.
type RunRequest struct {
	RunID         string    `json:"runID"`
	Brand         string    `json:"brand"`
	Campaign      string    `json:"campaign"`
	CampaignUID   string    `json:"campaignUID"`
	Generation    int64     `json:"generation"`
	ScheduledTime time.Time `json:"scheduledTime"`
}

// RunID is the id of a scheduled run: campaign UID + scheduled time (UTC, seconds).
func RunID(campaignUID string, scheduled time.Time) string {
	return campaignUID + "@" + scheduled.UTC().Format("20060102T150405Z")
}

// Intent is a wish to send a campaign step's content to a player, before routing.
type Intent struct {
	ID           string         `json:"id"`
	Brand        string         `json:"brand"`
	Player       string         `json:"player"`
	Campaign     string         `json:"campaign"`
	Step         string         `json:"step"`
	FlowInstance string         `json:"flowInstance"`
	Category     crmv1.Category `json:"category"`
	Content      string         `json:"content"`
	// Reward names the campaign reward the message carries or the grant is for, if any:
	// a responsible-gaming block refuses it even on a mandatory category.
	Reward  string    `json:"reward,omitempty"`
	Created time.Time `json:"created"`
	Due     time.Time `json:"due,omitzero"`
	Test    bool      `json:"test,omitempty"`
	// Event is the data of the event that started the flow, for templates (.Event).
	Event json.RawMessage `json:"event,omitempty"`
	// Links are extra links for templates (.Links), e.g. a double opt-in confirmation.
	Links map[string]string `json:"links,omitempty"`
	// Coupon is the promo code the flow issued last, for templates (.Coupon).
	Coupon string `json:"coupon,omitempty"`
	// Variant is the experiment arm of the flow, for its costs.
	Variant string `json:"variant,omitempty"`
	// Flow is empty for a message to route, FlowStart for a run's member whose flow
	// starts at Step, and FlowResume for a parked flow whose delay or wait timeout is due:
	// it resumes only if the flow is still parked at Step after Seq steps.
	Flow string `json:"flow,omitempty"`
	Seq  int    `json:"seq,omitempty"`
	// Run is the scheduled run that made a FlowStart intent.
	Run string `json:"run,omitempty"`
}

// Intent flows.
const (
	FlowStart  = "start"
	FlowResume = "resume"
	// FlowRetry is the next round (Seq) of a mandatory message's chain, due after a
	// backoff once every channel failed: the owner finds the decision still pending and
	// issues its first channel's job again, or records it undelivered at its deadline.
	FlowRetry = "retry"
)

// DeliveryJob is a rendered message for one channel worker. It holds the contact address
// and body only transiently (DELIVERIES is a work queue).
type DeliveryJob struct {
	DecisionID  string            `json:"decisionID"`
	Brand       string            `json:"brand"`
	Player      string            `json:"player"`
	Campaign    string            `json:"campaign"`
	Step        string            `json:"step"`
	Channel     crmv1.Channel     `json:"channel"`
	Fallbacks   []crmv1.Channel   `json:"fallbacks,omitempty"`
	Locale      string            `json:"locale"`
	TemplateID  string            `json:"templateID"`
	ContentHash string            `json:"contentHash"`
	To          string            `json:"to"`
	Subject     string            `json:"subject,omitempty"`
	Text        string            `json:"text,omitempty"`
	HTML        string            `json:"html,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
	MaxCost     *MinorAmount      `json:"maxCost,omitempty"`
	Test        bool              `json:"test,omitempty"`
	// Round is the round of a mandatory message's chain (0 the first): the worker's
	// outcomes and reports of a later round are records of their own, not repeats that
	// JetStream's dedup would drop.
	Round int `json:"round,omitempty"`
	// Sealed holds To, Subject, Text, HTML and Data sealed with the player's data key
	// (internal/datakey) as the owner publishes a job: an acknowledged job's bytes stay in
	// the store until compaction, and erasure must leave them unreadable.
	Sealed []byte `json:"sealed,omitempty"`
}

// jobSealed is the part of a DeliveryJob that Sealed holds.
type jobSealed struct {
	To      string            `json:"to"`
	Subject string            `json:"subject,omitempty"`
	Text    string            `json:"text,omitempty"`
	HTML    string            `json:"html,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// Seal moves the job's address, bodies and data into Sealed with seal.
func (j *DeliveryJob) Seal(seal func(brand, player string, plain []byte) ([]byte, error)) error {
	plain, err := json.Marshal(jobSealed{j.To, j.Subject, j.Text, j.HTML, j.Data})
	if err != nil {
		return err
	}
	box, err := seal(j.Brand, j.Player, plain)
	if err != nil {
		return err
	}
	j.Sealed, j.To, j.Subject, j.Text, j.HTML, j.Data = box, "", "", "", "", nil
	return nil
}

// Unseal restores what Seal moved, with open; a job without Sealed is left as it is.
func (j *DeliveryJob) Unseal(open func(brand, player string, sealed []byte) ([]byte, error)) error {
	if len(j.Sealed) == 0 {
		return nil
	}
	plain, err := open(j.Brand, j.Player, j.Sealed)
	if err != nil {
		return err
	}
	var js jobSealed
	if err := json.Unmarshal(plain, &js); err != nil {
		return fmt.Errorf("sealed part of the job: %w", err)
	}
	j.To, j.Subject, j.Text, j.HTML, j.Data, j.Sealed = js.To, js.Subject, js.Text, js.HTML, js.Data, nil
	return nil
}

// Outcome kinds.
const (
	OutcomeDecision = "decision"
	OutcomeFailover = "failover"
	OutcomeAttempt  = "attempt"
	// OutcomeReport is what a provider or the player's click reported later: its Result
	// is one of the Report kinds.
	OutcomeReport = "report"
	// OutcomeConversion is a player's conversion in a campaign (Result "converted", or
	// "lead" for a registration or first deposit; Reason the goal event; Channel the one
	// credited; Detail the experiment arm).
	OutcomeConversion = "conversion"
)

// Report kinds: the Result of an OutcomeReport.
const (
	ReportDelivered = "delivered"
	ReportHard      = "hard"
	ReportSoft      = "soft"
	ReportComplaint = "complaint"
	ReportClicked   = "clicked"
	ReportOpened    = "opened"
	// ReportUndelivered is a message the provider accepted but could not deliver (an SMS
	// delivery report): the channel failed late.
	ReportUndelivered = "undelivered"
	// ReportUnsubscribed is the player's one-click unsubscribe from the message's link.
	ReportUnsubscribed = "unsubscribed"
)

// Link is a croupier-links record: where a short link goes and which message it was in.
// An empty URL is an email's open-tracking pixel.
type Link struct {
	URL      string        `json:"url,omitempty"`
	Brand    string        `json:"brand"`
	Player   string        `json:"player"`
	Decision string        `json:"decision"`
	Campaign string        `json:"campaign"`
	Channel  crmv1.Channel `json:"channel"`
}

// Outcome is one routing decision or delivery attempt, with its reason. No bodies and no
// contact data: template id, locale and content hash instead.
type Outcome struct {
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decisionID"`
	Brand      string    `json:"brand"`
	Player     string    `json:"player"`
	Campaign   string    `json:"campaign,omitempty"`
	Step       string    `json:"step,omitempty"`
	Kind       string    `json:"kind"`
	Category   string    `json:"category,omitempty"`
	Result     string    `json:"result"`
	Reason     string    `json:"reason"`
	// Detail says more for people: which cap, which quiet window, why at night.
	Detail string `json:"detail,omitempty"`
	// RouteStep is the routing precedence step (1-10) that decided.
	RouteStep   int             `json:"routeStep,omitempty"`
	Fallbacks   []crmv1.Channel `json:"fallbacks,omitempty"`
	IntentID    string          `json:"intentID,omitempty"`
	Channel     crmv1.Channel   `json:"channel,omitempty"`
	Provider    string          `json:"provider,omitempty"`
	TemplateID  string          `json:"templateID,omitempty"`
	Locale      string          `json:"locale,omitempty"`
	ContentHash string          `json:"contentHash,omitempty"`
	Cost        *MinorAmount    `json:"cost,omitempty"`
	SendAt      time.Time       `json:"sendAt,omitzero"`
	// Attempt numbers a delivery attempt at its provider (1, 2, ...); ProviderCost is what
	// a sent message cost there, in micros.
	Attempt      int          `json:"attempt,omitempty"`
	ProviderCost *MicroAmount `json:"providerCost,omitempty"`
	// ProviderID is the provider's id of an accepted message (for its webhooks).
	ProviderID string `json:"providerID,omitempty"`
	// Test marks the records of a test send (kubectl croupier test-send): they count in
	// no campaign figure.
	Test bool `json:"test,omitempty"`
}

// ConsentEntry is one line of the consent ledger.
type ConsentEntry struct {
	Time   time.Time `json:"time"`
	Brand  string    `json:"brand"`
	Player string    `json:"player,omitempty"`
	// AddressHash is set for an address-level opt-out (SMS STOP from a number, a
	// suppression import) instead of or as well as the player.
	AddressHash string         `json:"addressHash,omitempty"`
	Category    crmv1.Category `json:"category"`
	Channel     crmv1.Channel  `json:"channel,omitempty"`
	Granted     bool           `json:"granted"`
	Source      string         `json:"source"`
	Actor       string         `json:"actor,omitempty"`
}

// RewardGrant is a bonus for the casino's bonus engine, published on REWARDS with its ID
// as the message id; the engine takes the ID as its idempotency key.
type RewardGrant struct {
	ID       string       `json:"id"`
	Brand    string       `json:"brand"`
	Player   string       `json:"player"`
	Campaign string       `json:"campaign"`
	Step     string       `json:"step"`
	Reward   crmv1.Reward `json:"reward"`
	// Value is what the bonus is worth: spins x spin value, the match on the triggering
	// deposit, the cashback on the period's net loss (minor units).
	Value MinorAmount `json:"value"`
	// Basis says what the value was computed from (a deposit, a period's net loss).
	Basis   string    `json:"basis,omitempty"`
	Granted time.Time `json:"granted"`
	// Expires is when the player's chance to use it ends (reward.expiresAfter).
	Expires time.Time `json:"expires,omitzero"`
	// Variant is the experiment variant the player is in, if any.
	Variant string `json:"variant,omitempty"`
	// Coupon is the promo code a coupon reward issued.
	Coupon string `json:"coupon,omitempty"`
}

// RewardGrantID is the idempotency key of a grant: campaign + step + player, and the
// flow instance, so a recurring campaign (weekly cashback) grants each week's bonus once.
func RewardGrantID(campaign, step, player, instance string) string {
	return campaign + "." + step + "." + player + "." + instance
}

// Lease is a partition's ownership record in croupier-leases.
type Lease struct {
	Partition int       `json:"partition"`
	Owner     string    `json:"owner"`
	Epoch     uint64    `json:"epoch"`
	Renewed   time.Time `json:"renewed"`
	Expires   time.Time `json:"expires"`
}

// PartitionStats are one partition's counters of one object, summed by the manager.
type PartitionStats struct {
	Brand     string           `json:"brand"`
	Kind      string           `json:"kind"`
	Name      string           `json:"name"`
	Partition int              `json:"partition"`
	Counters  map[string]int64 `json:"counters"`
	Updated   time.Time        `json:"updated"`
}

// Counter names in PartitionStats. A Campaign's suppressed messages are counted as
// StatSuppressedPrefix + the routing reason.
const (
	StatTargeted         = "targeted"
	StatLaunched         = "launched"
	StatLeads            = "leads"
	StatRewardsCancelled = "rewardsCancelled"
	StatBonusesActivated = "bonusesActivated"
	StatCouponsRedeemed  = "couponsRedeemed"
	StatSent             = "sent"
	StatDelivered        = "delivered"
	StatFailed           = "failed"
	StatConverted        = "converted"
	StatRewardsGranted   = "rewardsGranted"
	StatSuppressedPrefix = "suppressed."
	StatLastRun          = "lastRun"
	// StatMembers and StatEvaluated (Unix seconds of the last full evaluation) are a
	// Segment's.
	StatMembers   = "members"
	StatEvaluated = "evaluated"
)

// Encode is the codec of every message type: JSON.
func Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode reads a message of type T, naming the type in the error.
func Decode[T any](data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decoding %T: %w", v, err)
	}
	return v, nil
}

// BudgetLedger is a campaign's croupier-budget value: what the partition owners took from
// its caps in blocks (compare-and-set), in micros of the budget's currency. Owners spend
// their blocks locally and give back what they did not spend, so Granted - returns never
// exceeds the cap and the spend (summed from croupier-stats) never exceeds Granted.
type BudgetLedger struct {
	// UID is the campaign's; a Campaign created again starts a new ledger.
	UID string `json:"uid"`
	// Granted is the total held or spent over the campaign's life.
	Granted int64 `json:"granted"`
	// Period is the current budget period's start; PeriodGranted what it holds or spent.
	Period        time.Time `json:"period,omitzero"`
	PeriodGranted int64     `json:"periodGranted,omitempty"`
	// Exhausted is set when an owner found the cap reached.
	Exhausted *BudgetExhaustion `json:"exhausted,omitempty"`
}

// BudgetExhaustion is a cap found reached: which, at what amount, and until when (the
// end of the period for a per-period cap; zero for the total, which holds until raised).
type BudgetExhaustion struct {
	Scope string    `json:"scope"`
	Cap   int64     `json:"cap"`
	Until time.Time `json:"until,omitzero"`
	At    time.Time `json:"at"`
	// Asked is the reservation that did not fit (a reward's value plus its message's
	// upper-bound cost); Granted what the scope had spent or held in blocks then, so
	// Cap-Granted was left.
	Asked   int64 `json:"asked,omitempty"`
	Granted int64 `json:"granted,omitempty"`
}

// Budget scopes.
const (
	BudgetTotal     = "total"
	BudgetPerPeriod = "perPeriod"
	BudgetPerPlayer = "perPlayer"
)

// Holds reports whether the exhaustion still applies to caps total and perPeriod (micros,
// 0 when absent) at now: a raised cap or a new period lifts it.
func (e *BudgetExhaustion) Holds(total, perPeriod int64, now time.Time) bool {
	if e == nil {
		return false
	}
	switch e.Scope {
	case BudgetTotal:
		return total > 0 && total <= e.Cap
	case BudgetPerPeriod:
		return perPeriod > 0 && perPeriod <= e.Cap && now.Before(e.Until)
	}
	return false
}

// Experiment counters of a Campaign in PartitionStats, per arm: VariantStat(arm, name).
const (
	StatVariantPlayers   = "players"
	StatVariantConverted = "converted"
	StatVariantRevenue   = "revenue"
	StatVariantRevenueSq = "revenueSq"
	// StatRevenue is the deposits of a Campaign's players within the goal window after
	// their flow started (minor units).
	StatRevenue = "revenue"
	// VariantStatPrefix starts every per-arm counter.
	VariantStatPrefix = "variant."
)

// VariantStat is the counter name of an experiment arm's figure.
func VariantStat(variant, name string) string { return VariantStatPrefix + variant + "." + name }

// Per-channel counters of a Campaign in PartitionStats: ChannelStat(channel, name), with
// the names below, StatSent, StatDelivered, StatFailed, StatConverted, StatRevenue and
// StatCostMessages (docs/analytics.md defines each).
const (
	StatOpened       = "opened"
	StatClicked      = "clicked"
	StatBounced      = "bounced"
	StatComplaints   = "complaints"
	StatUndelivered  = "undelivered"
	StatUnsubscribes = "unsubscribes"
	// ChannelStatPrefix starts every per-channel counter.
	ChannelStatPrefix = "channel."
)

// Segment dimensions a campaign's targeted, sent and converted players are also counted by
// (SegmentStat): the player's VIP level, country and RFM segment at that moment.
const (
	DimVIP     = "vip"
	DimCountry = "country"
	DimRFM     = "rfm"
	// SegmentStatPrefix starts every per-dimension counter.
	SegmentStatPrefix = "by."
	// NoValue is the value of a dimension the player has none of.
	NoValue = "none"
)

// Dims are the dimensions in the order reports list them.
var Dims = []string{DimVIP, DimCountry, DimRFM}

// SegmentStat is the counter name of a campaign's figure for the players with value in
// dimension dim: by.<dim>.<value>.<name>.
func SegmentStat(dim, value, name string) string {
	return SegmentStatPrefix + dim + "." + value + "." + name
}

// ParseSegmentStat splits a SegmentStat name (ok false for other counters).
func ParseSegmentStat(k string) (dim, value, name string, ok bool) {
	rest, found := strings.CutPrefix(k, SegmentStatPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ChannelStat is the counter name of a campaign's figure on one channel.
func ChannelStat(ch crmv1.Channel, name string) string {
	return ChannelStatPrefix + string(ch) + "." + name
}

// DayStatPrefix starts a campaign's per-channel counters of one day (the brand's day, in
// its PreferencePolicy's defaultTimeZone): DayStat(day, channel, name). The owner keeps
// DayStatDays of them; reports over a period sum them.
const (
	DayStatPrefix = "day."
	DayStatDays   = 35
)

// DayStat is the counter name of a campaign's figure on one channel on one day
// (YYYY-MM-DD).
func DayStat(day string, ch crmv1.Channel, name string) string {
	return DayStatPrefix + day + "." + string(ch) + "." + name
}

// ParseDayStat splits a DayStat name (ok false for other counters).
func ParseDayStat(k string) (day string, ch crmv1.Channel, name string, ok bool) {
	rest, found := strings.CutPrefix(k, DayStatPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], crmv1.Channel(parts[1]), parts[2], true
}

// Budget counters of a Campaign in PartitionStats, in micros of the budget's currency.
const (
	StatCostRewards  = "costRewardsMicros"
	StatCostMessages = "costMessagesMicros"
)

// Coupon is a promo code in croupier-coupons under CouponKey(brand, code).
type Coupon struct {
	Code     string `json:"code"`
	Brand    string `json:"brand"`
	Pool     string `json:"pool"`
	Campaign string `json:"campaign"`
	Reward   string `json:"reward"`
	// Player is the one player a generated code was issued to ("" for a shared code).
	Player string      `json:"player,omitempty"`
	Value  MinorAmount `json:"value"`
	// MaxUses caps redemptions (1 for a generated code, 0 for no cap); Uses counts them.
	MaxUses   int    `json:"maxUses"`
	Uses      int    `json:"uses"`
	PerPlayer int    `json:"perPlayer"`
	Segment   string `json:"segment,omitempty"`
	// ValidUntil ends the code (zero: no end).
	ValidUntil time.Time `json:"validUntil,omitzero"`
	Issued     time.Time `json:"issued"`
	// Recent are the last redemptions, so a retried request gets its first answer.
	Recent []Redemption `json:"recent,omitempty"`
}

// Redemption is one use of a code.
type Redemption struct {
	Player  string    `json:"player"`
	Request string    `json:"request,omitempty"`
	At      time.Time `json:"at"`
}

// KeepRecentRedemptions bounds Coupon.Recent.
const KeepRecentRedemptions = 16

// CouponKey is the croupier-coupons key of a code: codes are unique in a brand, so the
// casino redeems with the code alone.
func CouponKey(brand, code string) string { return brand + "." + code }

// PlayerUsesKey is the croupier-coupons key counting a player's redemptions in a pool
// ("=" never starts a code).
func PlayerUsesKey(brand, pool, player string) string { return brand + ".=uses." + pool + "." + player }

// KindLeaderboard is the croupier-stats kind of a partition's tournament scores:
// StatsKey(brand, KindLeaderboard, campaign, part).
const KindLeaderboard = "Leaderboard"

// Leaderboard is one partition's scores of a campaign's tournament, highest first (ties
// by player id), written by the partition's owner.
type Leaderboard struct {
	Brand     string       `json:"brand"`
	Campaign  string       `json:"campaign"`
	UID       string       `json:"uid"`
	Partition int          `json:"partition"`
	Scores    []ScoreEntry `json:"scores"`
	// Final is set once the window ended and the partition stopped scoring.
	Final bool `json:"final,omitempty"`
	// Awarded is set once the partition granted its players' prizes.
	Awarded bool      `json:"awarded,omitempty"`
	Updated time.Time `json:"updated"`
}

// ScoreEntry is a player's score.
type ScoreEntry struct {
	Player string `json:"p"`
	Score  int64  `json:"s"`
}

// Ranked merges partitions' scores into one ranking: score descending, ties by player id.
func Ranked(parts []Leaderboard) []ScoreEntry {
	var all []ScoreEntry
	for _, p := range parts {
		all = append(all, p.Scores...)
	}
	SortScores(all)
	return all
}

// SortScores orders scores highest first, ties by player id.
func SortScores(s []ScoreEntry) {
	slices.SortFunc(s, func(a, b ScoreEntry) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		return strings.Compare(a.Player, b.Player)
	})
}

// StatPrizesGranted counts a tournament's prizes granted.
const StatPrizesGranted = "prizesGranted"

// CouponPool is an imported pool's counter in croupier-coupons (CouponPoolKey): positions
// 0..Size-1 are reserved by imports, 0..Ready-1 written (CouponPoolCodeKey), 0..Next-1
// handed out.
type CouponPool struct {
	Size  int `json:"size"`
	Ready int `json:"ready"`
	Next  int `json:"next"`
}

// CouponPoolKey is the croupier-coupons key of an imported pool's counter.
func CouponPoolKey(brand, pool string) string { return brand + ".=pool." + pool }

// CouponPoolCodeKey is the croupier-coupons key of an imported pool's n-th code.
func CouponPoolCodeKey(brand, pool string, n int) string {
	return brand + ".=pool." + pool + "." + strconv.Itoa(n)
}

// Preview is the answer to a preview request (PreviewSubject), from one replica's
// partitions or summed over all: a dry run of a campaign's first send step over its audience: how many
// players it reaches and what routing would decide for each, by channel and by reason.
// Nothing is sent, reserved or recorded.
type Preview struct {
	Brand     string           `json:"brand"`
	Campaign  string           `json:"campaign"`
	Step      string           `json:"step,omitempty"`
	Audience  int64            `json:"audience"`
	WouldSend int64            `json:"wouldSend"`
	ByChannel map[string]int64 `json:"byChannel"`
	// ByLocale counts the would-be sends by channel and the locale each player would get
	// ("sms/ru"): the player's language for the channel, else the profile's, else the
	// brand's default language.
	ByLocale   map[string]int64 `json:"byLocale"`
	Deferred   map[string]int64 `json:"deferred"`
	Suppressed map[string]int64 `json:"suppressed"`
	// Partitions are the partitions counted; Missing those no owner answered for in time.
	Partitions []int     `json:"partitions"`
	Missing    []int     `json:"missing,omitempty"`
	Generated  time.Time `json:"generated"`
	// MessageCost is what the would-be sends cost at each channel's first provider (an SMS
	// at one segment), in Currency; set by the admin API, not by the owners.
	MessageCost string `json:"messageCost,omitempty"`
	Currency    string `json:"currency,omitempty"`
}

// NewPreview is an empty preview of a campaign.
func NewPreview(brand, campaign string) *Preview {
	return &Preview{Brand: brand, Campaign: campaign, ByChannel: map[string]int64{}, ByLocale: map[string]int64{}, Deferred: map[string]int64{}, Suppressed: map[string]int64{}}
}

// Add sums another partition's preview into p.
func (p *Preview) Add(q *Preview) {
	p.Audience += q.Audience
	p.WouldSend += q.WouldSend
	for k, v := range q.ByChannel {
		p.ByChannel[k] += v
	}
	for k, v := range q.ByLocale {
		if p.ByLocale == nil {
			p.ByLocale = map[string]int64{}
		}
		p.ByLocale[k] += v
	}
	for k, v := range q.Deferred {
		p.Deferred[k] += v
	}
	for k, v := range q.Suppressed {
		p.Suppressed[k] += v
	}
	if p.Step == "" {
		p.Step = q.Step
	}
	p.Partitions = append(p.Partitions, q.Partitions...)
}

// A campaign's effect on its players (docs/analytics.md, "Post-campaign effect"): per arm
// (a variant, "control", or EffectAll without an experiment) the players measured, their
// deposits and gaming result (NGR) in the N days before their start and after it, and the
// sums of squared per-player differences (after - before) Welch's test needs; retention by
// the UTC day the players started (EffectCohortStat), folded into EffectDoneStat once a
// cohort is older than DayStatDays.
const (
	EffectPrefix    = "effect."
	EffectAll       = "all"
	EffectPlayers   = "n"
	EffectDepBefore = "depBefore"
	EffectDepAfter  = "depAfter"
	EffectDepDiffSq = "depDiffSq"
	EffectNGRBefore = "ngrBefore"
	EffectNGRAfter  = "ngrAfter"
	EffectNGRDiffSq = "ngrDiffSq"
	// Retention counters of a cohort: players started, and active on day 1, 7 and 30 after.
	EffectStarted = "started"
	EffectD1      = "d1"
	EffectD7      = "d7"
	EffectD30     = "d30"
)

// EffectStat is effect.<arm>.<name>.
func EffectStat(arm, name string) string { return EffectPrefix + arm + "." + name }

// EffectCohortStat is effect.<arm>.cohort.<YYYY-MM-DD>.<name>.
func EffectCohortStat(arm, day, name string) string {
	return EffectPrefix + arm + ".cohort." + day + "." + name
}

// EffectDoneStat is effect.<arm>.done.<name>: the cohorts older than DayStatDays.
func EffectDoneStat(arm, name string) string { return EffectPrefix + arm + ".done." + name }

// ParseEffectCohortStat splits an EffectCohortStat name.
func ParseEffectCohortStat(k string) (arm, day, name string, ok bool) {
	rest, found := strings.CutPrefix(k, EffectPrefix)
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || parts[1] != "cohort" {
		return "", "", "", false
	}
	return parts[0], parts[2], parts[3], true
}
