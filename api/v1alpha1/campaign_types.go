package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CampaignSpec declares a promotion, a drip series or a notification flow.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.goal) && has(self.experiment))",message="goal is for campaigns without an experiment: set the experiment's goalEvent and goalWindow instead"
// +kubebuilder:validation:XValidation:rule="!has(self.trigger.schedule) || has(self.audience)",message="a scheduled campaign needs an audience (audience.segmentRef or audience.rule)"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.next) || self.steps.exists(t, t.name == s.next))",message="every step's next must name a step of this campaign"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.waitFor) || !has(s.waitFor.onTimeout) || self.steps.exists(t, t.name == s.waitFor.onTimeout))",message="every waitFor.onTimeout must name a step of this campaign"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.branch) || (s.branch.cases.all(c, self.steps.exists(t, t.name == c.next)) && (!has(s.branch.otherwise) || self.steps.exists(t, t.name == s.branch.otherwise))))",message="every branch case's next and otherwise must name a step of this campaign"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.send) || (has(self.contents) && self.contents.exists(c, c.name == s.send.content)))",message="every send step's content must name an entry of contents"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.send) || !has(s.send.variantContent) || s.send.variantContent.all(v, has(self.contents) && self.contents.exists(c, c.name == s.send.variantContent[v])))",message="every send step's variantContent must name entries of contents"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.send) || !has(s.send.variantContent) || (has(self.experiment) && s.send.variantContent.all(v, self.experiment.variants.exists(x, x.name == v))))",message="variantContent keys must name variants of the experiment"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.grant) || (has(self.rewards) && self.rewards.exists(r, r.name == s.grant.reward)))",message="every grant step's reward must name an entry of rewards"
// +kubebuilder:validation:XValidation:rule="self.steps.all(s, !has(s.grant) || !has(s.grant.onRefused) || self.steps.exists(t, t.name == s.grant.onRefused))",message="every grant step's onRefused must name a step of this campaign"
// +kubebuilder:validation:XValidation:rule="self.category == 'marketing' || !has(self.rewards) || size(self.rewards) == 0",message="rewards are only granted by marketing campaigns"
type CampaignSpec struct {
	// description says what the campaign is for, for the people who review it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
	// category decides which preferences, caps and quiet hours apply.
	// +required
	Category Category `json:"category"`
	// priority orders campaigns competing for the same frequency cap (higher first).
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Priority int32 `json:"priority,omitempty"`
	// paused stops new runs and sends while true. Under Argo CD change it in Git.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// window is when the campaign is active; outside it nothing is sent.
	// +optional
	Window *TimeWindow `json:"window,omitempty"`
	// audience is who the campaign may reach; every player when absent (event triggers only).
	// +optional
	Audience *Audience `json:"audience,omitempty"`
	// trigger starts the flow: an event, or a schedule. Exactly one.
	// +required
	Trigger Trigger `json:"trigger"`
	// steps is the workflow each player walks through, starting at the first step.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Steps []Step `json:"steps"`
	// contents are the messages the send steps refer to by name, per channel and locale.
	// Every content must have, for each channel it uses, a message in the brand's default
	// language (PreferencePolicy spec.defaultLanguage): a player whose language has no
	// message gets that one. A Campaign without it is InvalidSpec, naming the content,
	// the channel and the language.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Contents []Content `json:"contents,omitempty"`
	// rewards are the bonuses the grant steps refer to by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Rewards []Reward `json:"rewards,omitempty"`
	// experiment splits the audience into variants and a control group.
	// +optional
	Experiment *Experiment `json:"experiment,omitempty"`
	// goal is the conversion of a campaign without an experiment (an experiment's
	// goalEvent and goalWindow take its place): conversions, CPA and the channels'
	// attributed conversions count it (docs/analytics.md).
	// +optional
	Goal *Goal `json:"goal,omitempty"`
	// budget caps what the campaign may spend on rewards and messages.
	// +optional
	Budget *Budget `json:"budget,omitempty"`
	// rollout paces sends so a large run does not flood providers.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Audience is who a Campaign may reach: a Segment or an inline rule.
// +kubebuilder:validation:XValidation:rule="has(self.segmentRef) != has(self.rule)",message="audience needs exactly one of segmentRef or rule"
type Audience struct {
	// segmentRef names a Segment in the same namespace.
	// +optional
	SegmentRef *LocalObjectReference `json:"segmentRef,omitempty"`
	// rule is an inline CEL expression over `player`.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Rule string `json:"rule,omitempty"`
}

// Trigger starts a Campaign's flow for a player.
// +kubebuilder:validation:XValidation:rule="has(self.event) != has(self.schedule)",message="trigger needs exactly one of event or schedule"
type Trigger struct {
	// event starts the flow for the player an event concerns.
	// +optional
	Event *EventTrigger `json:"event,omitempty"`
	// schedule starts the flow for every audience member at cron times.
	// +optional
	Schedule *ScheduleTrigger `json:"schedule,omitempty"`
}

// EventTrigger starts a flow when a player event arrives.
type EventTrigger struct {
	// type is the event type, e.g. deposit.completed.
	// +required
	Type EventType `json:"type"`
	// condition is a CEL expression over `event` and `player` that must be true, e.g.
	// `event.data.first == true && double(event.data.amount) >= 20.0`.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Condition string `json:"condition,omitempty"`
	// maxEntriesPerPlayer is how many times a player may enter the flow over the
	// Campaign's life (1: once per player, e.g. "wagering reached"); unset is no limit.
	// A Campaign deleted and created again starts counting afresh.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxEntriesPerPlayer *int32 `json:"maxEntriesPerPlayer,omitempty"`
}

// MissedRunPolicy says what happens to scheduled runs missed while the manager was down.
// +kubebuilder:validation:Enum=skip;runLatest
type MissedRunPolicy string

const (
	// MissedRunSkip never makes up a missed run: a run found more than a minute late (the
	// manager was down) is dropped, recorded as a RunMissed Event, and the next one awaited.
	MissedRunSkip MissedRunPolicy = "skip"
	// MissedRunLatest publishes the latest missed run once, if it is at most
	// startingDeadline late; older missed runs are dropped.
	MissedRunLatest MissedRunPolicy = "runLatest"
)

// ScheduleTrigger starts a run at cron times in a time zone.
type ScheduleTrigger struct {
	// cron is a five-field cron expression, e.g. "0 10 * * *" (daily at 10:00).
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=128
	Cron string `json:"cron"`
	// timeZone is the IANA zone the cron is read in.
	// +optional
	// +kubebuilder:default="Asia/Baku"
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
	// missedRuns is what happens to runs missed while the manager was down.
	// +optional
	// +kubebuilder:default=runLatest
	MissedRuns MissedRunPolicy `json:"missedRuns,omitempty"`
	// startingDeadline is how late a missed run may still start under runLatest (default 1h).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	StartingDeadline *metav1.Duration `json:"startingDeadline,omitempty"`
}

// DefaultStartingDeadline is startingDeadline when the spec sets none.
const DefaultStartingDeadline = time.Hour

// MissedRunSkipGrace is how late a run may start and still count as on time under skip.
const MissedRunSkipGrace = time.Minute

// Reach is how late after its scheduled time a run may still start under the trigger's
// missed-run policy: startingDeadline under runLatest, a minute under skip. The manager
// publishes no run later than that, and a partition owner that receives one later (the
// dispatcher was down) does not expand it.
func (s *ScheduleTrigger) Reach() time.Duration {
	if s.MissedRuns == MissedRunSkip {
		return MissedRunSkipGrace
	}
	if s.StartingDeadline != nil {
		return s.StartingDeadline.Duration
	}
	return DefaultStartingDeadline
}

// Step is one state of a Campaign's workflow; exactly one action is set.
// +kubebuilder:validation:XValidation:rule="[has(self.send), has(self.delay), has(self.waitFor), has(self.branch), has(self.grant), has(self.exit)].filter(x, x).size() == 1",message="a step needs exactly one of send, delay, waitFor, branch, grant or exit"
// +kubebuilder:validation:XValidation:rule="!has(self.next) || (!has(self.branch) && !has(self.exit))",message="next is not allowed on branch and exit steps"
type Step struct {
	// name identifies the step; it becomes a NATS subject token.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	Name string `json:"name"`
	// send sends a message.
	// +optional
	Send *SendStep `json:"send,omitempty"`
	// delay waits a fixed time (a durable scheduled message; survives restarts).
	// +optional
	Delay *DelayStep `json:"delay,omitempty"`
	// waitFor waits for an event, or for a timeout.
	// +optional
	WaitFor *WaitForStep `json:"waitFor,omitempty"`
	// branch goes to the first case whose condition holds.
	// +optional
	Branch *BranchStep `json:"branch,omitempty"`
	// grant grants a reward.
	// +optional
	Grant *GrantStep `json:"grant,omitempty"`
	// exit ends the player's flow.
	// +optional
	Exit *ExitStep `json:"exit,omitempty"`
	// next is the step after this one; the following step in the list when absent, and the
	// end of the flow after the last step.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Next string `json:"next,omitempty"`
}

// SendStep sends one content through the best channel the player's preferences allow.
type SendStep struct {
	// content names an entry of spec.contents.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Content string `json:"content"`
	// channels restricts the candidate channels (in the policy's priority order); all the
	// content has messages for when absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=7
	Channels []Channel `json:"channels,omitempty"`
	// variantContent maps an experiment variant to the content its players get instead.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	VariantContent map[string]string `json:"variantContent,omitempty"`
}

// DelayStep waits a fixed time.
type DelayStep struct {
	// duration to wait, e.g. 72h.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('8760h')",message="delay.duration must be between 1s and 365 days"
	Duration metav1.Duration `json:"duration"`
}

// WaitForStep waits for a player event.
type WaitForStep struct {
	// event is the event type waited for.
	// +required
	Event EventType `json:"event"`
	// condition is a CEL expression over `event` and `player` the event must meet.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Condition string `json:"condition,omitempty"`
	// timeout is how long to wait.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('8760h')",message="waitFor.timeout must be between 1s and 365 days"
	Timeout metav1.Duration `json:"timeout"`
	// onTimeout is the step taken when the timeout passes; the flow ends when absent.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	OnTimeout string `json:"onTimeout,omitempty"`
}

// BranchStep chooses the next step by CEL conditions over `player`.
type BranchStep struct {
	// cases are tried in order; the first whose condition holds is taken.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Cases []BranchCase `json:"cases"`
	// otherwise is the step taken when no case holds; the flow ends when absent.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Otherwise string `json:"otherwise,omitempty"`
}

// BranchCase is one arm of a branch.
type BranchCase struct {
	// when is a CEL expression over `player`, e.g. `player.betCount > 0`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	When string `json:"when"`
	// next is the step taken when the condition holds.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Next string `json:"next"`
}

// GrantStep grants a reward through the casino's bonus engine.
type GrantStep struct {
	// reward names an entry of spec.rewards.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Reward string `json:"reward"`
	// onRefused is the step that runs when the reward is not granted (the budget cannot
	// cover it, a responsible-gaming block, an empty coupon pool, the player not
	// eligible). Without it a refused grant ends the player's flow at this step, so no
	// later step announces a reward the player did not get. The refusal and its reason
	// are in the player's history either way.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	OnRefused string `json:"onRefused,omitempty"`
}

// ExitStep ends the player's flow.
type ExitStep struct{}

// ContentFormat is how a message body is written.
// +kubebuilder:validation:Enum=text;markdown;html
type ContentFormat string

// Content formats.
const (
	FormatText     ContentFormat = "text"
	FormatMarkdown ContentFormat = "markdown"
	FormatHTML     ContentFormat = "html"
)

// Content is a named message with one variant per channel and locale.
// +kubebuilder:validation:XValidation:rule="self.messages.all(m, self.messages.exists_one(n, n.channel == m.channel && n.locale == m.locale))",message="each channel and locale pair may appear once in messages"
type Content struct {
	// name identifies the content for send steps.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	Name string `json:"name"`
	// dedupKey names the offer this content carries for the brand's dedup window: a
	// marketing message is not sent to a player who got a message with the same key (or,
	// without one, the very same content, by its hash) within the PreferencePolicy's
	// dedupWindow, whichever campaign, run or flow sent it. Give two campaigns that carry
	// one offer in different words the same dedupKey. Service and responsible-gaming
	// messages are never suppressed by it (two receipts are two messages).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	DedupKey string `json:"dedupKey,omitempty"`
	// messages per channel and locale (Go templates over the player's fields).
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=24
	Messages []Message `json:"messages"`
}

// Message is the text of one content for one channel and locale.
// +kubebuilder:validation:XValidation:rule="has(self.body) != has(self.bodyFrom)",message="a message needs exactly one of body or bodyFrom"
// +kubebuilder:validation:XValidation:rule="self.channel != 'email' || has(self.subject)",message="an email message needs a subject"
// +kubebuilder:validation:XValidation:rule="!has(self.format) || self.format == 'text' || self.channel in ['email', 'inApp', 'webhook']",message="markdown and html are only for email, inApp and webhook messages"
type Message struct {
	// channel the message is for.
	// +required
	Channel Channel `json:"channel"`
	// locale is a language tag such as az, ru, en or pt-BR. A player gets the message in
	// the language of the player's preferences for the channel, else the profile's, else
	// the brand's default language, which every content must therefore have.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:Pattern=`^[a-z]{2,3}(-[A-Z]{2})?$`
	Locale string `json:"locale"`
	// subject is the email subject, or the title of a push, web push or in-app message.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Subject string `json:"subject,omitempty"`
	// body is the message text, a Go template over the player's fields.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	Body string `json:"body,omitempty"`
	// bodyFrom reads the body from a ConfigMap key (large HTML).
	// +optional
	BodyFrom *ConfigMapKeyReference `json:"bodyFrom,omitempty"`
	// format of the body.
	// +optional
	// +kubebuilder:default=text
	Format ContentFormat `json:"format,omitempty"`
	// deepLink opens a place in the casino app (push, web push, in-app, Viber button).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	DeepLink string `json:"deepLink,omitempty"`
	// imageURL is shown by channels that show images (push, Viber, in-app).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https://`
	ImageURL string `json:"imageURL,omitempty"`
	// buttonText is the label of the deep-link button (Viber, in-app).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ButtonText string `json:"buttonText,omitempty"`
}

// Reward is a bonus a grant step gives; exactly one kind is set.
// +kubebuilder:validation:XValidation:rule="[has(self.freeSpins), has(self.matchDeposit), has(self.cashback), has(self.coupon), has(self.tournament)].filter(x, x).size() == 1",message="a reward needs exactly one of freeSpins, matchDeposit, cashback, coupon or tournament"
type Reward struct {
	// name identifies the reward for grant steps.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	Name string `json:"name"`
	// freeSpins grants spins on a game.
	// +optional
	FreeSpins *FreeSpinsReward `json:"freeSpins,omitempty"`
	// matchDeposit adds a percentage of the triggering deposit.
	// +optional
	MatchDeposit *MatchDepositReward `json:"matchDeposit,omitempty"`
	// cashback returns a percentage of net loss over a period.
	// +optional
	Cashback *CashbackReward `json:"cashback,omitempty"`
	// coupon issues a promo code.
	// +optional
	Coupon *CouponReward `json:"coupon,omitempty"`
	// tournament enters the player into a leaderboard race.
	// +optional
	Tournament *TournamentReward `json:"tournament,omitempty"`
	// wageringMultiplier is the wagering requirement (x times the bonus); 0 means none.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	WageringMultiplier int32 `json:"wageringMultiplier,omitempty"`
	// expiresAfter is how long the player has to use the bonus.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	ExpiresAfter *metav1.Duration `json:"expiresAfter,omitempty"`
}

// FreeSpinsReward grants spins on one game.
type FreeSpinsReward struct {
	// game is the casino's game id.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Game string `json:"game"`
	// count of spins.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Count int32 `json:"count"`
	// spinValue is the stake of one spin; the reward's value is count x spinValue.
	// +required
	SpinValue Money `json:"spinValue"`
}

// MatchDepositReward adds a percentage of the triggering deposit, up to a cap.
type MatchDepositReward struct {
	// percent of the deposit added as bonus.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=500
	Percent int32 `json:"percent"`
	// cap is the largest bonus granted.
	// +required
	Cap Money `json:"cap"`
	// minDeposit is the smallest deposit that qualifies.
	// +optional
	MinDeposit *Money `json:"minDeposit,omitempty"`
}

// Period is a budget or cashback period.
// +kubebuilder:validation:Enum=day;week;month
type Period string

// Periods.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// CashbackReward returns a percentage of net loss over a period, up to a cap.
type CashbackReward struct {
	// percent of the net loss returned.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// period over which net loss is summed.
	// +required
	Period Period `json:"period"`
	// cap is the largest cashback granted.
	// +required
	Cap Money `json:"cap"`
}

// CouponReward issues a promo code: a generated single-use code bound to the player, or
// one shared multi-use code.
// +kubebuilder:validation:XValidation:rule="has(self.code) == (has(self.multiUse) && self.multiUse)",message="a multi-use coupon needs its shared code; generated codes are single-use"
// +kubebuilder:validation:XValidation:rule="!has(self.maxUses) || (has(self.multiUse) && self.multiUse)",message="maxUses applies to multi-use coupons"
// +kubebuilder:validation:XValidation:rule="!(has(self.imported) && self.imported) || (!(has(self.multiUse) && self.multiUse) && !has(self.prefix))",message="imported codes are single-use and come without a prefix"
type CouponReward struct {
	// pool names the coupon pool codes are drawn from; generated codes use the prefix.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	Pool string `json:"pool"`
	// prefix of generated codes, e.g. WELCOME.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^[A-Z0-9]*$`
	Prefix string `json:"prefix,omitempty"`
	// value of the coupon, counted against the budget.
	// +required
	Value Money `json:"value"`
	// multiUse lets one code be redeemed by many players.
	// +optional
	MultiUse bool `json:"multiUse,omitempty"`
	// imported draws single-use codes, in order, from the pool's codes imported through
	// the admin API (POST /v1/brands/{brand}/coupons/import) instead of generating them.
	// +optional
	Imported bool `json:"imported,omitempty"`
	// code is the shared code of a multi-use coupon, e.g. WELCOME50.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Z0-9]{4,32}$`
	Code string `json:"code,omitempty"`
	// maxUses caps the redemptions of a multi-use code over all players (unset: no cap).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000000
	MaxUses *int32 `json:"maxUses,omitempty"`
	// perPlayer is how many times one player may redeem codes of this pool (default 1).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	PerPlayer *int32 `json:"perPlayer,omitempty"`
	// segmentRef restricts redemption to the members of a Segment at redemption time.
	// +optional
	SegmentRef *LocalObjectReference `json:"segmentRef,omitempty"`
	// validFor is how long an issued code stays valid.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	ValidFor *metav1.Duration `json:"validFor,omitempty"`
	// validUntil ends every code of the coupon at a fixed time.
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`
}

// TournamentMetric is what a tournament ranks by.
// +kubebuilder:validation:Enum=wager;points;wins
type TournamentMetric string

// TournamentReward enters the player into a leaderboard race: a grant step of it joins
// the player; bet.settled events in the window score; at the window's end the prizes go
// to the ranks through REWARDS.
// +kubebuilder:validation:XValidation:rule="has(self.window.end)",message="a tournament's window needs an end: prizes are granted then"
type TournamentReward struct {
	// metric ranks players by bet.settled in the window: wager (total staked), wins (total
	// won) or points (one per qualifying round).
	// +required
	Metric TournamentMetric `json:"metric"`
	// window is when bets count.
	// +required
	Window TimeWindow `json:"window"`
	// minBet is the smallest bet that counts.
	// +optional
	MinBet *Money `json:"minBet,omitempty"`
	// gameCategories restricts counted bets to these categories (slots, live, ...).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	GameCategories []string `json:"gameCategories,omitempty"`
	// prizes by rank.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:XValidation:rule="self.all(p, p.toRank >= p.fromRank)",message="a prize's toRank must not be below its fromRank"
	Prizes []Prize `json:"prizes"`
}

// Prize is what the players ranked fromRank..toRank win each.
type Prize struct {
	// fromRank is the first rank (1 is the top).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	FromRank int32 `json:"fromRank"`
	// toRank is the last rank, inclusive.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	ToRank int32 `json:"toRank"`
	// amount each of those players wins.
	// +required
	Amount Money `json:"amount"`
}

// Experiment splits a Campaign's audience into weighted variants and a control group that
// receives nothing. Weights and the control percent sum to 100.
// +kubebuilder:validation:XValidation:rule="self.variants.map(v, v.weight).sum() + (has(self.controlPercent) ? self.controlPercent : 0) == 100",message="variant weights plus controlPercent must sum to 100"
// +kubebuilder:validation:XValidation:rule="self.variants.all(v, self.variants.exists_one(w, w.name == v.name))",message="variant names must be unique"
type Experiment struct {
	// variants with their weights in percent.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Variants []Variant `json:"variants"`
	// controlPercent of the audience receives nothing and is measured as the baseline.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=50
	ControlPercent int32 `json:"controlPercent,omitempty"`
	// goalEvent is the conversion, e.g. deposit.completed.
	// +required
	GoalEvent EventType `json:"goalEvent"`
	// goalWindow is how long after the first send a goal event counts (default 7 days).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	GoalWindow *metav1.Duration `json:"goalWindow,omitempty"`
	// minSampleSize per variant before a result may be called significant (no peeking).
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=10000000
	MinSampleSize int32 `json:"minSampleSize,omitempty"`
}

// Variant is one arm of an experiment.
type Variant struct {
	// name of the variant.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,32}$`
	Name string `json:"name"`
	// weight in percent of the audience.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`
	// contents replaces contents of the send steps for this variant's players, e.g. a
	// second subject line or offer text; unlisted contents are shared.
	// +optional
	// +listType=map
	// +listMapKey=content
	// +kubebuilder:validation:MaxItems=16
	Contents []ContentOverride `json:"contents,omitempty"`
}

// ContentOverride sends the content named use where a step names content.
type ContentOverride struct {
	// content is the name a send step uses.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Content string `json:"content"`
	// use is the content this variant sends instead.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Use string `json:"use"`
}

// Budget caps what a Campaign spends on rewards and messages; all amounts share one currency.
// +kubebuilder:validation:XValidation:rule="has(self.total) || has(self.perPeriod) || has(self.perPlayer)",message="a budget needs at least one of total, perPeriod or perPlayer"
// +kubebuilder:validation:XValidation:rule="!has(self.total) || !has(self.perPeriod) || self.total.currency == self.perPeriod.amount.currency",message="budget amounts must share one currency"
// +kubebuilder:validation:XValidation:rule="!has(self.total) || !has(self.perPlayer) || self.total.currency == self.perPlayer.currency",message="budget amounts must share one currency"
// +kubebuilder:validation:XValidation:rule="!has(self.perPeriod) || !has(self.perPlayer) || self.perPeriod.amount.currency == self.perPlayer.currency",message="budget amounts must share one currency"
type Budget struct {
	// total is the cap over the campaign's life.
	// +optional
	Total *Money `json:"total,omitempty"`
	// perPeriod is the cap per day, week or month.
	// +optional
	PerPeriod *PeriodBudget `json:"perPeriod,omitempty"`
	// perPlayer is the cap for any one player.
	// +optional
	PerPlayer *Money `json:"perPlayer,omitempty"`
}

// PeriodBudget is a cap per calendar period in the brand's time zone.
type PeriodBudget struct {
	// period is day, week or month.
	// +required
	Period Period `json:"period"`
	// amount per period.
	// +required
	Amount Money `json:"amount"`
}

// Rollout paces a Campaign's sends.
type Rollout struct {
	// maxPerMinute is the most messages the campaign sends in a minute, over all replicas.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxPerMinute int32 `json:"maxPerMinute"`
}

// CampaignPhase is where a Campaign is in its life.
// +kubebuilder:validation:Enum=Scheduled;Running;Paused;Completed;Failed
type CampaignPhase string

// Campaign phases.
const (
	PhaseScheduled CampaignPhase = "Scheduled"
	PhaseRunning   CampaignPhase = "Running"
	PhasePaused    CampaignPhase = "Paused"
	PhaseCompleted CampaignPhase = "Completed"
	PhaseFailed    CampaignPhase = "Failed"
)

// CampaignCounters count what happened to a Campaign's messages, over every partition.
type CampaignCounters struct {
	// launched counts the times the campaign's trigger or run reached a player (once per
	// trigger event or run and player), whether or not the player then entered its flow
	// (already in it, entry limit, control group).
	// +optional
	Launched int64 `json:"launched,omitempty"`
	// targeted players (intents made).
	// +optional
	Targeted int64 `json:"targeted,omitempty"`
	// sent messages (accepted by a provider).
	// +optional
	Sent int64 `json:"sent,omitempty"`
	// delivered messages (confirmed by a delivery report).
	// +optional
	Delivered int64 `json:"delivered,omitempty"`
	// failed messages (every channel exhausted).
	// +optional
	Failed int64 `json:"failed,omitempty"`
	// converted players (goal event within the goal window).
	// +optional
	Converted int64 `json:"converted,omitempty"`
	// leads counts conversions that were a registration or a first deposit (the goal
	// event player.registered, or deposit.completed with data.first true).
	// +optional
	Leads int64 `json:"leads,omitempty"`
	// rewardsGranted counts bonuses granted.
	// +optional
	RewardsGranted int64 `json:"rewardsGranted,omitempty"`
	// rewardsCancelled counts grant steps that granted nothing: the budget, a per-player
	// cap, an empty coupon pool or the bonus engine refused it.
	// +optional
	RewardsCancelled int64 `json:"rewardsCancelled,omitempty"`
	// bonusesActivated counts bonus.activated events naming the campaign (the bonus
	// engine's confirmation that a player took a granted bonus).
	// +optional
	BonusesActivated int64 `json:"bonusesActivated,omitempty"`
	// couponsRedeemed counts the campaign's promo codes redeemed.
	// +optional
	CouponsRedeemed int64 `json:"couponsRedeemed,omitempty"`
	// suppressed counts messages not sent, by routing reason.
	// +optional
	Suppressed map[string]int64 `json:"suppressed,omitempty"`
}

// SpendStatus is what a Campaign has spent against its budget.
type SpendStatus struct {
	// spent so far (rewards plus messages).
	// +optional
	Spent *Money `json:"spent,omitempty"`
	// remaining of the total budget.
	// +optional
	Remaining *Money `json:"remaining,omitempty"`
}

// VariantStatus is one experiment variant's result.
type VariantStatus struct {
	// name of the variant, or "control".
	// +required
	Name string `json:"name"`
	// players assigned.
	// +optional
	Players int64 `json:"players,omitempty"`
	// converted players.
	// +optional
	Converted int64 `json:"converted,omitempty"`
	// conversionRate as a decimal string.
	// +optional
	ConversionRate string `json:"conversionRate,omitempty"`
	// pValue of the difference in conversion to control (chi-square test), as a decimal
	// string.
	// +optional
	PValue string `json:"pValue,omitempty"`
	// revenuePerPlayer is the mean deposit revenue per player within the goal window, as
	// a decimal string in the players' currency.
	// +optional
	RevenuePerPlayer string `json:"revenuePerPlayer,omitempty"`
	// revenuePValue of the difference in revenue per player to control (Welch's t-test).
	// +optional
	RevenuePValue string `json:"revenuePValue,omitempty"`
	// significant is true only after every arm reached the minimum sample size and at
	// p < 0.05 (conversion or revenue).
	// +optional
	Significant bool `json:"significant,omitempty"`
	// grants are the rewards granted to this arm's players.
	// +optional
	Grants int64 `json:"grants,omitempty"`
	// cost is what this arm spent (rewards plus messages), in the report's currency.
	// +optional
	Cost string `json:"cost,omitempty"`
	// cpa is the cost per converted player.
	// +optional
	CPA string `json:"cpa,omitempty"`
}

// Goal is what a campaign counts as a conversion.
type Goal struct {
	// event is the conversion, e.g. deposit.completed.
	// +required
	Event EventType `json:"event"`
	// window is how long after the player's flow started the event counts (default 7
	// days).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Window *metav1.Duration `json:"window,omitempty"`
}

// ChannelReport is what a Campaign did on one channel, summed from every partition.
type ChannelReport struct {
	// channel is the channel these figures are for.
	Channel Channel `json:"channel"`
	// sent is messages a provider of the channel accepted.
	// +optional
	Sent int64 `json:"sent,omitempty"`
	// delivered is messages the provider confirmed delivered (channels with delivery
	// reports only).
	// +optional
	Delivered int64 `json:"delivered,omitempty"`
	// failed is sends the channel failed (each failover from it counts).
	// +optional
	Failed int64 `json:"failed,omitempty"`
	// undelivered is messages accepted but reported undelivered later.
	// +optional
	Undelivered int64 `json:"undelivered,omitempty"`
	// opened is opens reported (email's pixel, push and in-app opens).
	// +optional
	Opened int64 `json:"opened,omitempty"`
	// clicked is clicks on the message's tracked links.
	// +optional
	Clicked int64 `json:"clicked,omitempty"`
	// bounced is hard and soft bounces.
	// +optional
	Bounced int64 `json:"bounced,omitempty"`
	// complaints is spam complaints.
	// +optional
	Complaints int64 `json:"complaints,omitempty"`
	// unsubscribes is one-click unsubscribes from the messages' links.
	// +optional
	Unsubscribes int64 `json:"unsubscribes,omitempty"`
	// converted is conversions attributed to the channel: the last channel of the
	// player's flow a provider took before the goal event (last touch), within the goal
	// window.
	// +optional
	Converted int64 `json:"converted,omitempty"`
	// messageCost is what the channel's messages cost, settled (decimal, the report's
	// currency).
	// +optional
	MessageCost string `json:"messageCost,omitempty"`
	// revenue is deposits attributed to the channel as conversions are.
	// +optional
	Revenue string `json:"revenue,omitempty"`
	// cpa is messageCost per attributed conversion.
	// +optional
	CPA string `json:"cpa,omitempty"`
	// leads counts the conversions attributed to the channel that were a registration
	// or a first deposit.
	// +optional
	Leads int64 `json:"leads,omitempty"`
	// cpl is messageCost / leads on this channel.
	// +optional
	CPL string `json:"cpl,omitempty"`
	// roi is (revenue - messageCost) / messageCost on this channel.
	// +optional
	ROI string `json:"roi,omitempty"`
}

// CampaignReport is what a Campaign cost and brought: the figures a CRM team and a CFO
// read, summed from every partition.
type CampaignReport struct {
	// currency of the amounts: the budget's, else the rewards'.
	// +optional
	Currency string `json:"currency,omitempty"`
	// grants are the rewards granted.
	// +optional
	Grants int64 `json:"grants,omitempty"`
	// rewardCost is the value of the rewards granted.
	// +optional
	RewardCost string `json:"rewardCost,omitempty"`
	// messageCost is the settled cost of the messages sent.
	// +optional
	MessageCost string `json:"messageCost,omitempty"`
	// conversions are the players who reached the experiment's goal in its window.
	// +optional
	Conversions int64 `json:"conversions,omitempty"`
	// revenue is the players' deposits within the goal window (7 days without an
	// experiment) after their flow started.
	// +optional
	Revenue string `json:"revenue,omitempty"`
	// cpa is (rewardCost + messageCost) / conversions.
	// +optional
	CPA string `json:"cpa,omitempty"`
	// leads counts the conversions that were a registration or a first deposit.
	// +optional
	Leads int64 `json:"leads,omitempty"`
	// cpl is the cost per lead: (rewardCost + messageCost) / leads.
	// +optional
	CPL string `json:"cpl,omitempty"`
	// roi is the return on what the campaign cost: (revenue - cost) / cost, as a ratio
	// ("1.50" is 150%).
	// +optional
	ROI string `json:"roi,omitempty"`
}

// CampaignStatus is the observed state of a Campaign.
type CampaignStatus struct {
	CommonStatus `json:",inline"`
	// phase is Scheduled, Running, Paused, Completed or Failed.
	// +optional
	Phase CampaignPhase `json:"phase,omitempty"`
	// nextRunTime is the next scheduled run.
	// +optional
	NextRunTime *metav1.Time `json:"nextRunTime,omitempty"`
	// lastRunTime is the scheduled time of the last run published.
	// +optional
	LastRunTime *metav1.Time `json:"lastRunTime,omitempty"`
	// lastScheduleTime is the last scheduled time dealt with: published, or skipped
	// because the campaign was paused or the run was missed.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// counters over every partition.
	// +optional
	Counters *CampaignCounters `json:"counters,omitempty"`
	// spend against the budget.
	// +optional
	Spend *SpendStatus `json:"spend,omitempty"`
	// variants are the experiment's results.
	// +optional
	// +kubebuilder:validation:MaxItems=9
	Variants []VariantStatus `json:"variants,omitempty"`
	// report is what the campaign cost and brought.
	// +optional
	Report *CampaignReport `json:"report,omitempty"`
	// channels is what the campaign did on each channel it used (docs/analytics.md).
	// +optional
	// +kubebuilder:validation:MaxItems=7
	// +listType=map
	// +listMapKey=channel
	Channels []ChannelReport `json:"channels,omitempty"`
	// tournament is the leaderboard of the campaign's tournament.
	// +optional
	Tournament *TournamentStatus `json:"tournament,omitempty"`
}

// TournamentStatus is a tournament's standing, merged from every partition owner.
type TournamentStatus struct {
	// participants joined.
	// +optional
	Participants int64 `json:"participants,omitempty"`
	// final is true once every partition closed its scores after the window's end.
	// +optional
	Final bool `json:"final,omitempty"`
	// prizesGranted counts the prizes granted.
	// +optional
	PrizesGranted int64 `json:"prizesGranted,omitempty"`
	// leaders are the top ten.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Leaders []LeaderboardEntry `json:"leaders,omitempty"`
}

// LeaderboardEntry is a player's place: the score is minor units staked or won, or
// rounds played for points.
type LeaderboardEntry struct {
	Rank   int32  `json:"rank"`
	Player string `json:"player"`
	Score  int64  `json:"score"`
}

// Campaign is a promotion, drip series or notification flow for a brand's players.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=camp;camps,categories=croupier
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Category",type=string,JSONPath=`.spec.category`
// +kubebuilder:printcolumn:name="Next Run",type=string,format=date-time,JSONPath=`.status.nextRunTime`,description="The next scheduled run (RFC 3339): a date column would print a future time as <invalid>"
// +kubebuilder:printcolumn:name="Last Run",type=date,JSONPath=`.status.lastRunTime`,priority=1
// +kubebuilder:printcolumn:name="Sent",type=integer,JSONPath=`.status.counters.sent`
// +kubebuilder:printcolumn:name="Spent",type=string,JSONPath=`.status.spend.spent.amount`
// +kubebuilder:printcolumn:name="Budget",type=string,JSONPath=`.spec.budget.total.amount`
// +kubebuilder:printcolumn:name="Paused",type=string,JSONPath=`.status.conditions[?(@.type=="Paused")].status`,priority=1
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.contains('.')",message="Campaign names must not contain dots: the name becomes a NATS subject token"
type Campaign struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the campaign.
	// +required
	Spec CampaignSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status CampaignStatus `json:"status,omitempty"`
}

// CampaignList is a list of Campaigns.
//
// +kubebuilder:object:root=true
type CampaignList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Campaign `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Campaign{}, &CampaignList{})
}
