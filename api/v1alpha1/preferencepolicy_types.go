package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PreferencePolicySpec is a brand's player-facing policy: what players may switch off, when
// messages may arrive, how many, and the gates marketing must pass. One per namespace.
//
// +kubebuilder:validation:XValidation:rule="!has(self.languages) || !has(self.defaultLanguage) || self.defaultLanguage in self.languages",message="defaultLanguage must be one of languages"
type PreferencePolicySpec struct {
	// categories hold the rules per message category.
	// +required
	// +listType=map
	// +listMapKey=category
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	Categories []CategoryPolicy `json:"categories"`
	// defaultTimeZone is used for players without a time zone (IANA name).
	// +optional
	// +kubebuilder:default="Asia/Baku"
	// +kubebuilder:validation:MaxLength=64
	DefaultTimeZone string `json:"defaultTimeZone,omitempty"`
	// dedupWindow: one marketing offer (a content's dedupKey, else the content itself by
	// its hash) reaches a player once, on one channel, within it, whichever campaign, run
	// or flow carries it (default 24h). Keep it below the period of a campaign that
	// repeats its content on a schedule (a daily campaign needs less than 24h). Service
	// and responsible-gaming messages are deduplicated per flow only.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('720h')",message="dedupWindow must be at most 30 days"
	DedupWindow *metav1.Duration `json:"dedupWindow,omitempty"`
	// languages the brand writes content in.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[a-z]{2,3}(-[A-Z]{2})?$`
	Languages []string `json:"languages,omitempty"`
	// defaultLanguage is the fallback when a player's language has no content.
	// +optional
	// +kubebuilder:default="az"
	// +kubebuilder:validation:Pattern=`^[a-z]{2,3}(-[A-Z]{2})?$`
	DefaultLanguage string `json:"defaultLanguage,omitempty"`
	// marketingGates must all pass before a marketing message or bonus reaches a player.
	// +optional
	MarketingGates *MarketingGates `json:"marketingGates,omitempty"`
	// doubleOptIn lists the channels on which marketing consent needs a confirmation.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=7
	DoubleOptIn []Channel `json:"doubleOptIn,omitempty"`
	// globalHoldoutPercent of the brand's players receive no marketing at all, as a baseline.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=50
	GlobalHoldoutPercent int32 `json:"globalHoldoutPercent,omitempty"`
	// attribution says which channel a conversion is credited to (docs/analytics.md).
	// +optional
	Attribution *Attribution `json:"attribution,omitempty"`
	// integration names the Secret with the brand's intake HMAC key ("hmacKey"), intake
	// bearer token ("bearerToken") and the key that verifies players' JWTs ("jwtKey").
	// +optional
	Integration *Integration `json:"integration,omitempty"`
}

// CategoryPolicy is the policy of one message category.
//
// +kubebuilder:validation:XValidation:rule="self.category != 'marketing' || !has(self.mandatory) || !self.mandatory",message="the marketing category cannot be mandatory"
// +kubebuilder:validation:XValidation:rule="!has(self.quietHours) || self.quietHours.action != 'bypass' || (has(self.mandatory) ? self.mandatory : self.category != 'marketing')",message="quietHours.action bypass is only allowed on a mandatory category"
// +kubebuilder:validation:XValidation:rule="!has(self.sla) || self.category != 'marketing'",message="sla applies to service and responsibleGaming categories only"
// +kubebuilder:validation:XValidation:rule="!has(self.retryFor) || self.category != 'marketing'",message="retryFor applies to mandatory categories only: marketing keeps its bounded retries"
// +kubebuilder:validation:XValidation:rule="!has(self.retryFor) || (duration(self.retryFor) >= duration('10s') && duration(self.retryFor) <= duration('72h'))",message="retryFor must be between 10s and 72h"
type CategoryPolicy struct {
	// category this policy applies to.
	// +required
	Category Category `json:"category"`
	// mandatory categories ignore consent and preferences and are never capped; players
	// cannot switch them off. Default: true for service and responsibleGaming.
	// +optional
	Mandatory *bool `json:"mandatory,omitempty"`
	// channels in priority order with their default state for players who chose nothing.
	// +required
	// +listType=map
	// +listMapKey=channel
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=7
	Channels []CategoryChannel `json:"channels"`
	// frequencyCaps limit messages of this category across all campaigns.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	FrequencyCaps []FrequencyCap `json:"frequencyCaps,omitempty"`
	// quietHours is when messages wait, in the player's local time.
	// +optional
	QuietHours *QuietHours `json:"quietHours,omitempty"`
	// sla is how soon a mandatory message must be handed to a provider (default 5m).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	SLA *metav1.Duration `json:"sla,omitempty"`
	// retryFor is how long a mandatory message keeps being tried, measured from its
	// decision: provider retries with backoff, failover across providers, fallback across
	// channels and, when every channel failed, the whole chain again after a backoff. Only
	// then is it recorded undelivered, dead-lettered, counted and alerted on. Default 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RetryFor *metav1.Duration `json:"retryFor,omitempty"`
	// adaptiveFrequency lowers the cap for players who have not engaged recently.
	// +optional
	AdaptiveFrequency bool `json:"adaptiveFrequency,omitempty"`
}

// ChannelDefault is a channel's state for a player who has not chosen.
// +kubebuilder:validation:Enum=optedIn;optedOut
type ChannelDefault string

// Channel defaults.
const (
	OptedIn  ChannelDefault = "optedIn"
	OptedOut ChannelDefault = "optedOut"
)

// CategoryChannel is one channel of a category.
type CategoryChannel struct {
	// channel name.
	// +required
	Channel Channel `json:"channel"`
	// default state for players who chose nothing.
	// +optional
	// +kubebuilder:default=optedOut
	Default ChannelDefault `json:"default,omitempty"`
}

// FrequencyCap limits messages to max per rolling window, or per local calendar day.
// +kubebuilder:validation:XValidation:rule="has(self.window) != (has(self.calendarDay) && self.calendarDay)",message="a frequency cap needs exactly one of window or calendarDay: true"
type FrequencyCap struct {
	// max messages.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Max int32 `json:"max"`
	// window is a rolling window, e.g. 24h or 168h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('2160h')",message="a frequency cap window must be between 1m and 90 days"
	Window *metav1.Duration `json:"window,omitempty"`
	// calendarDay counts per local calendar day in the player's time zone.
	// +optional
	CalendarDay bool `json:"calendarDay,omitempty"`
	// channel limits the cap to one channel; all channels when absent.
	// +optional
	Channel Channel `json:"channel,omitempty"`
}

// QuietHoursAction is what happens to a message in quiet hours.
// +kubebuilder:validation:Enum=defer;bypass
type QuietHoursAction string

// Quiet-hour actions.
const (
	// QuietHoursDefer schedules the message at the window's end.
	QuietHoursDefer QuietHoursAction = "defer"
	// QuietHoursBypass sends it anyway and logs why (mandatory categories only).
	QuietHoursBypass QuietHoursAction = "bypass"
)

// QuietHours is a nightly window in the player's local time; it may wrap midnight.
// +kubebuilder:validation:XValidation:rule="self.start != self.end",message="quietHours start and end must differ"
type QuietHours struct {
	// start is HH:MM local time, e.g. "23:00".
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	Start string `json:"start"`
	// end is HH:MM local time, e.g. "08:00".
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	End string `json:"end"`
	// action is defer (send at the window's end) or bypass (mandatory categories only).
	// +optional
	// +kubebuilder:default=defer
	Action QuietHoursAction `json:"action,omitempty"`
}

// MarketingGates are the checks marketing must pass.
type MarketingGates struct {
	// requireKYC holds marketing until the player passed KYC.
	// +optional
	RequireKYC bool `json:"requireKYC,omitempty"`
	// requireAgeVerified holds marketing until the player's age is verified.
	// +optional
	RequireAgeVerified bool `json:"requireAgeVerified,omitempty"`
	// excludeCoolingOff holds marketing while a player is cooling off (default true).
	// +optional
	// +kubebuilder:default=true
	ExcludeCoolingOff *bool `json:"excludeCoolingOff,omitempty"`
}

// Integration names the brand's integration secrets.
type Integration struct {
	// secretRef names the Secret with keys hmacKey, bearerToken and jwtKey.
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`
}

// PreferencePolicyStatus is the observed state of a PreferencePolicy.
type PreferencePolicyStatus struct {
	CommonStatus `json:",inline"`
}

// PreferencePolicy is a brand's player-facing preference, consent and contact policy.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=prefpol,categories=croupier
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Time Zone",type=string,JSONPath=`.spec.defaultTimeZone`
// +kubebuilder:printcolumn:name="Language",type=string,JSONPath=`.spec.defaultLanguage`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PreferencePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy.
	// +required
	Spec PreferencePolicySpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status PreferencePolicyStatus `json:"status,omitempty"`
}

// PreferencePolicyList is a list of PreferencePolicies.
//
// +kubebuilder:object:root=true
type PreferencePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PreferencePolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PreferencePolicy{}, &PreferencePolicyList{})
}

// AttributionModel is how a conversion is credited to a channel.
// +kubebuilder:validation:Enum=LastTouch
type AttributionModel string

// AttributionLastTouch credits the channel of the campaign's last message to the player
// that a provider accepted.
const AttributionLastTouch AttributionModel = "LastTouch"

// Attribution is the brand's attribution of conversions to channels.
type Attribution struct {
	// model is LastTouch (the default).
	// +optional
	Model AttributionModel `json:"model,omitempty"`
	// windowDays is how many days after that message a conversion is still credited to
	// its channel (default 7); later ones count for the campaign only.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=90
	WindowDays int32 `json:"windowDays,omitempty"`
}
