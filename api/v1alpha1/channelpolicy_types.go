package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType is the wire protocol a provider speaks.
// +kubebuilder:validation:Enum=smtp;sendgrid;mailgun;smsRest;twilio;viber;fcm;apns;webPush;inApp;webhook
type ProviderType string

// Provider types.
const (
	ProviderSMTP     ProviderType = "smtp"
	ProviderSendGrid ProviderType = "sendgrid"
	ProviderMailgun  ProviderType = "mailgun"
	ProviderSMSRest  ProviderType = "smsRest"
	ProviderTwilio   ProviderType = "twilio"
	ProviderViber    ProviderType = "viber"
	ProviderFCM      ProviderType = "fcm"
	ProviderAPNs     ProviderType = "apns"
	ProviderWebPush  ProviderType = "webPush"
	ProviderInApp    ProviderType = "inApp"
	ProviderWebhook  ProviderType = "webhook"
)

// DeliveryReports reports whether the provider tells Croupier a message reached the
// player (an SMS aggregator's DLR, Viber's delivered callback, SendGrid's and Mailgun's
// delivered events). SMTP, push, web push, in-app and webhook providers report nothing
// after taking a message: "delivered" has no figure there.
func (t ProviderType) DeliveryReports() bool {
	switch t {
	case ProviderSendGrid, ProviderMailgun, ProviderSMSRest, ProviderTwilio, ProviderViber:
		return true
	}
	return false
}

// ProviderTypesByChannel lists the provider types each channel accepts. The CEL rule on
// ChannelPolicySpec spells out the same table.
var ProviderTypesByChannel = map[Channel][]ProviderType{
	ChannelEmail:   {ProviderSMTP, ProviderSendGrid, ProviderMailgun},
	ChannelSMS:     {ProviderSMSRest, ProviderTwilio},
	ChannelViber:   {ProviderViber},
	ChannelPush:    {ProviderFCM, ProviderAPNs},
	ChannelWebPush: {ProviderWebPush},
	ChannelInApp:   {ProviderInApp},
	ChannelWebhook: {ProviderWebhook},
}

// ChannelPolicySpec configures one channel of a brand: its providers in failover order,
// retries, sender defaults and links. One ChannelPolicy per channel and namespace.
//
// +kubebuilder:validation:XValidation:rule="self.providers.all(p, p.type in {'email': ['smtp', 'sendgrid', 'mailgun'], 'sms': ['smsRest', 'twilio'], 'viber': ['viber'], 'push': ['fcm', 'apns'], 'webPush': ['webPush'], 'inApp': ['inApp'], 'webhook': ['webhook']}[self.channel])",message="every provider's type must suit the channel (email: smtp, sendgrid, mailgun; sms: smsRest, twilio; viber: viber; push: fcm, apns; webPush: webPush; inApp: inApp; webhook: webhook)"
// +kubebuilder:validation:XValidation:rule="!has(self.callbacks) || self.channel == 'webhook'",message="callbacks belong on the webhook channel's policy"
// +kubebuilder:validation:XValidation:rule="self.providers.all(p, p.type == 'inApp' || has(p.endpoint))",message="every provider except inApp needs an endpoint"
type ChannelPolicySpec struct {
	// channel this policy configures.
	// +required
	Channel Channel `json:"channel"`
	// providers in failover order: the first is used until it fails.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Providers []Provider `json:"providers"`
	// retry says how transient provider errors are retried before failing over.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
	// sender holds the defaults messages are sent as.
	// +optional
	Sender *SenderDefaults `json:"sender,omitempty"`
	// links configures link shortening and UTM parameters.
	// +optional
	Links *LinkPolicy `json:"links,omitempty"`
	// callbacks are the brand's URLs told about message events (webhook channel only).
	// +optional
	Callbacks *Callbacks `json:"callbacks,omitempty"`
}

// Provider is one delivery provider of a channel.
type Provider struct {
	// name identifies the provider within the policy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]{1,63}$`
	Name string `json:"name"`
	// type is the protocol the provider speaks.
	// +required
	Type ProviderType `json:"type"`
	// endpoint is the provider's URL (https://...) or, for smtp, host:port.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(https?://[^ ]+|[A-Za-z0-9.-]+:[0-9]{1,5})$')",message="endpoint must be an http(s) URL or host:port"
	Endpoint string `json:"endpoint,omitempty"`
	// secretRef names the Secret with the provider's credentials (never logged).
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
	// rateLimit caps the requests per second sent to this provider.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// cost of one message (for SMS: one segment), counted against campaign budgets.
	// +optional
	Cost *Money `json:"cost,omitempty"`
	// timeout of one request (default 10s).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// options are provider-specific settings (field mappings of a REST aggregator, the APNs
	// topic, the Viber sender id, ...), documented per provider.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Options map[string]string `json:"options,omitempty"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// perSecond is the sustained rate.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	PerSecond int32 `json:"perSecond"`
	// burst is the bucket size (default perSecond).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Burst int32 `json:"burst,omitempty"`
}

// RetryPolicy retries transient errors with exponential backoff and jitter.
// +kubebuilder:validation:XValidation:rule="!has(self.initialBackoff) || !has(self.maxBackoff) || duration(self.maxBackoff) >= duration(self.initialBackoff)",message="maxBackoff must not be below initialBackoff"
type RetryPolicy struct {
	// maxAttempts per provider before failing over (default 3).
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	MaxAttempts int32 `json:"maxAttempts,omitempty"`
	// initialBackoff before the first retry (default 1s).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	InitialBackoff *metav1.Duration `json:"initialBackoff,omitempty"`
	// maxBackoff caps the wait between retries (default 1m).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	MaxBackoff *metav1.Duration `json:"maxBackoff,omitempty"`
}

// SenderDefaults are who messages come from.
type SenderDefaults struct {
	// from is the email sender address.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+\.[^@\s]+$`
	From string `json:"from,omitempty"`
	// fromName is the display name of the email sender.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	FromName string `json:"fromName,omitempty"`
	// replyTo is the email reply address.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+\.[^@\s]+$`
	ReplyTo string `json:"replyTo,omitempty"`
	// senderID is the SMS alphanumeric sender or the Viber sender name.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	SenderID string `json:"senderID,omitempty"`
}

// LinkPolicy configures tracked links.
type LinkPolicy struct {
	// shorten rewrites links through Croupier's signed redirect, recording clicks.
	// +optional
	Shorten bool `json:"shorten,omitempty"`
	// baseURL of the redirect endpoint, e.g. https://go.example-casino.az.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^https?://`
	BaseURL string `json:"baseURL,omitempty"`
	// utm parameters added to every link (the campaign name fills utm_campaign when empty).
	// +optional
	UTM *UTM `json:"utm,omitempty"`
}

// UTM parameters.
type UTM struct {
	// source is utm_source.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Source string `json:"source,omitempty"`
	// medium is utm_medium.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Medium string `json:"medium,omitempty"`
	// campaign is utm_campaign.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Campaign string `json:"campaign,omitempty"`
}

// Callbacks are the brand's URLs told about message events (signed, retried).
type Callbacks struct {
	// sent is called when a provider accepted a message.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	Sent string `json:"sent,omitempty"`
	// delivered is called on a delivery report.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	Delivered string `json:"delivered,omitempty"`
	// failed is called when every channel failed.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	Failed string `json:"failed,omitempty"`
	// clicked is called on a tracked click.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	Clicked string `json:"clicked,omitempty"`
	// bonusActivated is called when a granted bonus is activated.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	BonusActivated string `json:"bonusActivated,omitempty"`
	// rewardGranted receives every reward grant (the bridge for bonus engines that speak
	// HTTP rather than NATS): the grant's id is its idempotency key.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://`
	RewardGranted string `json:"rewardGranted,omitempty"`
	// secretRef names the Secret whose key "hmacKey" signs callback bodies.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
}

// ChannelPolicyStatus is the observed state of a ChannelPolicy.
type ChannelPolicyStatus struct {
	CommonStatus `json:",inline"`
}

// ChannelPolicy configures one delivery channel of a brand.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=chp,categories=croupier
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channel`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Primary",type=string,JSONPath=`.spec.providers[0].type`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ChannelPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec configures the channel.
	// +required
	Spec ChannelPolicySpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status ChannelPolicyStatus `json:"status,omitempty"`
}

// ChannelPolicyList is a list of ChannelPolicies.
//
// +kubebuilder:object:root=true
type ChannelPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ChannelPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ChannelPolicy{}, &ChannelPolicyList{})
}
