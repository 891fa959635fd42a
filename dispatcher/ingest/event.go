// Package ingest is the dispatcher's event intake: the decoder and validator of the player
// events of EVENTS.md, the authenticated HTTP endpoint that publishes them to EVENTS, the
// bulk profile import, and the dead-letter writer.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/money"
)

// Limits on one event.
const (
	// MaxEventBytes is the largest encoded event accepted (the stored message must stay far
	// below the server's 1 MiB payload limit).
	MaxEventBytes = 64 << 10
	maxIDLen      = 256
	maxAttrs      = 64
	maxAttrLen    = 256
	maxTokens     = 16
)

// Event types named by EVENTS.md.
const (
	TypeRegistered          = "player.registered"
	TypeProfileUpdated      = "player.profile.updated"
	TypeImported            = "player.imported"
	TypeErasureRequested    = "player.erasure.requested"
	TypeInactive            = "player.inactive"
	TypeAnniversary         = "player.anniversary"
	TypeCouponRedeemed      = "coupon.redeemed"
	TypeDepositCompleted    = "deposit.completed"
	TypeDepositFailed       = "deposit.failed"
	TypeWithdrawalCompleted = "withdrawal.completed"
	TypeKYCPassed           = "kyc.passed"
	TypeKYCFailed           = "kyc.failed"
	TypeBetPlaced           = "bet.placed"
	TypeBetSettled          = "bet.settled"
	TypeSessionStarted      = "session.started"
	TypeSessionEnded        = "session.ended"
	TypeBonusActivated      = "bonus.activated"
	TypeLimitApproaching    = "limit.approaching"
	TypeLimitExceeded       = "limit.exceeded"
	TypeSelfExclusion       = "selfexclusion.started"
	TypeCoolingOff          = "coolingoff.started"
	TypeSurveyAnswered      = "survey.answered"
	TypeDeliveryFailed      = "delivery.failed"
	TypeTokenInvalid        = "channel.token.invalid"
	TypeEmailBounced        = "email.bounced"
	TypeCostSettled         = "cost.settled"
)

// SourceCroupier is the source of the events the dispatcher publishes itself.
const SourceCroupier = "croupier"

// internalTypes may only be published by Croupier (source "croupier"); the HTTP intake
// refuses them from a platform.
var internalTypes = map[string]bool{
	TypeImported: true, TypeErasureRequested: true, TypeInactive: true, TypeAnniversary: true, TypeCouponRedeemed: true, TypeDeliveryFailed: true,
	TypeTokenInvalid: true, TypeEmailBounced: true, TypeCostSettled: true,
}

// Internal reports whether only Croupier itself may publish events of type t.
func Internal(t string) bool { return internalTypes[t] }

// PushToken is a device's push registration.
type PushToken struct {
	Platform string `json:"platform"`
	Token    string `json:"token"`
}

// Data is the union of every known type's data fields. Pointers mark fields whose presence
// matters (a profile update changes only what it names). Unknown fields stay in the raw
// event (EVENTS.md: extra fields are kept).
type Data struct {
	// profile
	Country             *string         `json:"country"`
	Language            *string         `json:"language"`
	TimeZone            *string         `json:"timeZone"`
	Currency            *string         `json:"currency"`
	Email               *string         `json:"email"`
	Phone               *string         `json:"phone"`
	BirthDate           *string         `json:"birthDate"`
	AcquisitionChannel  *string         `json:"acquisitionChannel"`
	TrafficSource       *string         `json:"trafficSource"`
	Attrs               map[string]any  `json:"attrs"`
	VIPLevel            *int64          `json:"vipLevel"`
	KYCStatus           *string         `json:"kycStatus"`
	AgeVerified         *bool           `json:"ageVerified"`
	PushTokens          *[]PushToken    `json:"pushTokens"`
	WebPushSubscription json.RawMessage `json:"webPushSubscription"`
	ViberID             *string         `json:"viberId"`
	// import only: the account system's history
	ID            *string `json:"id"`
	RegisteredAt  *string `json:"registeredAt"`
	SelfExcluded  *bool   `json:"selfExcluded"`
	CoolingOff    *string `json:"coolingOffUntil"`
	DepositCount  *int64  `json:"depositCount"`
	DepositSum    *string `json:"depositSum"`
	WithdrawalSum *string `json:"withdrawalSum"`
	LastActivity  *string `json:"lastActivity"`
	// money and games
	Amount       *string `json:"amount"`
	Win          *string `json:"win"`
	Method       *string `json:"method"`
	DepositID    *string `json:"depositId"`
	WithdrawalID *string `json:"withdrawalId"`
	First        *bool   `json:"first"`
	Reason       *string `json:"reason"`
	DocumentType *string `json:"documentType"`
	Game         *string `json:"game"`
	GameCategory *string `json:"gameCategory"`
	RoundID      *string `json:"roundId"`
	// sessions, bonuses, limits, exclusions, surveys
	Device          *string         `json:"device"`
	DurationSeconds *float64        `json:"durationSeconds"`
	BonusID         *string         `json:"bonusId"`
	Campaign        *string         `json:"campaign"`
	Code            *string         `json:"code"`
	Value           *string         `json:"value"`
	LimitType       *string         `json:"limitType"`
	Limit           json.RawMessage `json:"limit"`
	Used            json.RawMessage `json:"used"`
	Period          *string         `json:"period"`
	Blocked         *bool           `json:"blocked"`
	Until           *string         `json:"until"`
	Scope           *string         `json:"scope"`
	SurveyID        *string         `json:"surveyId"`
	Answers         map[string]any  `json:"answers"`
	// internal
	Days       *int64  `json:"days"`
	Years      *int64  `json:"years"`
	DecisionID *string `json:"decisionId"`
	Channel    *string `json:"channel"`
	Token      *string `json:"token"`
	Kind       *string `json:"kind"`
	Actor      *string `json:"actor"`
}

// Event is a validated event: the envelope, the brand and player it belongs to, its typed
// data and the parsed amounts.
type Event struct {
	bus.CloudEvent
	Brand  string
	Player string
	Data   Data
	// AmountMinor, WinMinor are the data's amount and win in minor units of Data.Currency.
	AmountMinor, WinMinor int64
	// CostMicros is a cost.settled amount in millionths of Data.Currency (one email costs
	// less than a minor unit).
	CostMicros int64
	// Times parsed from the data.
	Until, RegisteredAt, BirthDate, LastActivity, CoolingOffUntil time.Time
	DepositSumMinor, WithdrawalSumMinor                           int64
}

// Error is a validation error naming the field (JSON path) and the reason.
type Error struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Bounds of an event's time (EVENTS.md): not more than MaxTimeAhead ahead of the
// receiver's clock, not before MinEventTime. One bad clock could otherwise set a player's
// last activity to 9999 and switch inactivity and recency off for good.
var MinEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxTimeAhead is how far ahead of the receiver's clock an event's time may be.
const MaxTimeAhead = 5 * time.Minute

// Decode is DecodeAt with the wall clock.
func Decode(brand, player, eventType string, raw []byte) (*Event, error) {
	return DecodeAt(brand, player, eventType, raw, time.Now())
}

// DecodeAt parses and validates one structured CloudEvent of the given brand, received at
// now. player and eventType, when not empty, are what the NATS subject says; the envelope
// must agree.
func DecodeAt(brand, player, eventType string, raw []byte, now time.Time) (*Event, error) {
	if len(raw) > MaxEventBytes {
		return nil, fieldErr("event", "is %d bytes; the limit is %d", len(raw), MaxEventBytes)
	}
	if err := bus.CheckToken("brand", brand); err != nil {
		return nil, &Error{Field: "brand", Reason: strings.TrimPrefix(err.Error(), "brand: ")}
	}
	if !utf8.Valid(raw) {
		// encoding/json would quietly turn the bad bytes into U+FFFD: refuse instead.
		return nil, fieldErr("event", "is not valid UTF-8")
	}
	if d := nesting(raw); d > MaxDataDepth+1 {
		// The envelope is one level; data may nest MaxDataDepth more.
		return nil, fieldErr("data", "nests %d levels deep; the limit is %d", d-1, MaxDataDepth)
	}
	ev := &Event{Brand: brand}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev.CloudEvent); err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return nil, fieldErr("time", "%q is not an RFC 3339 time", pe.Value)
		}
		return nil, jsonErr("event", err)
	}
	if dec.More() {
		return nil, fieldErr("event", "trailing data after the JSON object")
	}
	if err := ev.checkEnvelope(player, eventType); err != nil {
		return nil, err
	}
	if t := ev.Time; !t.IsZero() || hasTime(raw) {
		switch {
		case t.Before(MinEventTime):
			return nil, fieldErr("time", "%s is before %s", t.Format(time.RFC3339), MinEventTime.Format(time.DateOnly))
		case t.After(now.Add(MaxTimeAhead)):
			return nil, fieldErr("time", "%s is more than %s ahead of the receiver's clock (%s)", t.Format(time.RFC3339), MaxTimeAhead, now.UTC().Format(time.RFC3339))
		}
	}
	if err := ev.decodeData(); err != nil {
		return nil, err
	}
	return ev, nil
}

// MaxDataDepth is how deep an event's data may nest objects and arrays: deeper data has
// no use in a player event and makes every reader (CEL, templates, the export) recurse.
const MaxDataDepth = 64

// nesting is the deepest nesting of objects and arrays in the JSON text raw (strings
// skipped); it stops counting past MaxDataDepth+1.
func nesting(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > MaxDataDepth+1 {
					return deepest
				}
			}
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// hasTime reports whether the envelope names a time: a zero time is then an explicit
// 0001-01-01 to refuse, not a missing time meaning "now".
func hasTime(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`"time"`)) {
		return false
	}
	var env struct {
		Time json.RawMessage `json:"time"`
	}
	return json.Unmarshal(raw, &env) == nil && len(env.Time) > 0 && string(env.Time) != "null"
}

func jsonErr(field string, err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(field+"."+te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
	}
	return fieldErr(field, "is not valid JSON: %v", err)
}

func (ev *Event) checkEnvelope(player, eventType string) error {
	switch {
	case ev.SpecVersion != "1.0":
		return fieldErr("specversion", "must be \"1.0\", got %q", ev.SpecVersion)
	case ev.ID == "":
		return fieldErr("id", "is required")
	case len(ev.ID) > maxIDLen:
		return fieldErr("id", "is longer than %d characters", maxIDLen)
	case ev.Source == "":
		return fieldErr("source", "is required")
	case len(ev.Source) > maxIDLen:
		return fieldErr("source", "is longer than %d characters", maxIDLen)
	case ev.Type == "":
		return fieldErr("type", "is required")
	case !bus.ValidEventType(ev.Type):
		return fieldErr("type", "%q must be dot-separated lower-case words such as deposit.completed", ev.Type)
	case eventType != "" && ev.Type != eventType:
		return fieldErr("type", "%q differs from the subject's type %q", ev.Type, eventType)
	case ev.Subject == "":
		return fieldErr("subject", "is required: the player id")
	case !bus.ValidToken(ev.Subject):
		return fieldErr("subject", "player id %q must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'", ev.Subject)
	case player != "" && ev.Subject != player:
		return fieldErr("subject", "player id %q differs from the subject's player %q", ev.Subject, player)
	case ev.DataContentType != "" && !strings.HasPrefix(ev.DataContentType, "application/json"):
		return fieldErr("datacontenttype", "must be application/json, got %q", ev.DataContentType)
	case Internal(ev.Type) && ev.Source != SourceCroupier && !(ev.Type == TypeImported && strings.HasPrefix(ev.Source, SourceCroupier+"/")):
		return fieldErr("type", "%q is published by Croupier only", ev.Type)
	}
	ev.Player = ev.Subject
	return nil
}

var (
	langRE    = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// decodeData decodes data and checks the type's required fields (EVENTS.md).
func (ev *Event) decodeData() error {
	raw := bytes.TrimSpace(ev.CloudEvent.Data)
	known := Known(ev.Type)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if known && needsData(ev.Type) {
			return fieldErr("data", "is required for %s", ev.Type)
		}
		return nil
	}
	if raw[0] != '{' {
		if known {
			return fieldErr("data", "must be a JSON object")
		}
		return nil
	}
	if err := json.Unmarshal(raw, &ev.Data); err != nil {
		if !known {
			// Unknown types are stored as they are; their data is only read by CEL.
			ev.Data = Data{}
			return nil
		}
		return jsonErr("data", err)
	}
	d := &ev.Data
	req := func(name string, v *string) error {
		if v == nil || *v == "" {
			return fieldErr("data."+name, "is required for %s", ev.Type)
		}
		return nil
	}
	amount := func(name string, v *string, out *int64, optional bool) error {
		if v == nil && optional {
			return nil
		}
		if err := req(name, v); err != nil {
			return err
		}
		if err := req("currency", d.Currency); err != nil {
			return err
		}
		m, err := money.Parse(*v, *d.Currency)
		if err != nil {
			return fieldErr("data."+name, "%v", err)
		}
		*out = m
		return nil
	}
	tm := func(name string, v *string, out *time.Time) error {
		if v == nil || *v == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, *v)
		if err != nil {
			if t2, err2 := time.Parse(time.DateOnly, *v); err2 == nil {
				*out = t2
				return nil
			}
			return fieldErr("data."+name, "%q is not an RFC 3339 time", *v)
		}
		*out = t
		return nil
	}
	if err := ev.checkProfile(); err != nil {
		return err
	}
	switch ev.Type {
	case TypeRegistered:
		for _, f := range []struct {
			n string
			v *string
		}{{"country", d.Country}, {"language", d.Language}, {"timeZone", d.TimeZone}, {"currency", d.Currency}} {
			if err := req(f.n, f.v); err != nil {
				return err
			}
		}
		return tm("birthDate", d.BirthDate, &ev.BirthDate)
	case TypeProfileUpdated, TypeImported:
		if err := tm("birthDate", d.BirthDate, &ev.BirthDate); err != nil {
			return err
		}
		if ev.Type == TypeImported {
			if err := tm("registeredAt", d.RegisteredAt, &ev.RegisteredAt); err != nil {
				return err
			}
			if err := tm("lastActivity", d.LastActivity, &ev.LastActivity); err != nil {
				return err
			}
			if err := tm("coolingOffUntil", d.CoolingOff, &ev.CoolingOffUntil); err != nil {
				return err
			}
			if d.DepositSum != nil || d.WithdrawalSum != nil {
				if err := req("currency", d.Currency); err != nil {
					return err
				}
			}
			if err := amount("depositSum", d.DepositSum, &ev.DepositSumMinor, true); err != nil {
				return err
			}
			if err := amount("withdrawalSum", d.WithdrawalSum, &ev.WithdrawalSumMinor, true); err != nil {
				return err
			}
			if d.DepositCount != nil && *d.DepositCount < 0 {
				return fieldErr("data.depositCount", "must not be negative")
			}
		}
	case TypeDepositCompleted, TypeDepositFailed:
		if err := amount("amount", d.Amount, &ev.AmountMinor, false); err != nil {
			return err
		}
		if err := req("method", d.Method); err != nil {
			return err
		}
		if ev.Type == TypeDepositCompleted {
			return req("depositId", d.DepositID)
		}
		return req("reason", d.Reason)
	case TypeWithdrawalCompleted:
		if err := amount("amount", d.Amount, &ev.AmountMinor, false); err != nil {
			return err
		}
		return req("withdrawalId", d.WithdrawalID)
	case TypeBetPlaced, TypeBetSettled:
		if err := amount("amount", d.Amount, &ev.AmountMinor, false); err != nil {
			return err
		}
		if ev.Type == TypeBetSettled {
			if err := amount("win", d.Win, &ev.WinMinor, false); err != nil {
				return err
			}
		}
		for _, f := range []struct {
			n string
			v *string
		}{{"game", d.Game}, {"gameCategory", d.GameCategory}, {"roundId", d.RoundID}} {
			if err := req(f.n, f.v); err != nil {
				return err
			}
		}
	case TypeSessionEnded:
		if d.DurationSeconds != nil && *d.DurationSeconds < 0 {
			return fieldErr("data.durationSeconds", "must not be negative")
		}
	case TypeBonusActivated:
		if err := req("bonusId", d.BonusID); err != nil {
			return err
		}
		if d.Value != nil {
			return amount("value", d.Value, new(int64), false)
		}
	case TypeLimitApproaching, TypeLimitExceeded:
		if err := req("limitType", d.LimitType); err != nil {
			return err
		}
		if !oneOf(*d.LimitType, "deposit", "loss", "time", "wager") {
			return fieldErr("data.limitType", "%q must be one of deposit, loss, time, wager", *d.LimitType)
		}
		if len(d.Limit) == 0 {
			return fieldErr("data.limit", "is required for %s", ev.Type)
		}
		if len(d.Used) == 0 {
			return fieldErr("data.used", "is required for %s", ev.Type)
		}
		if err := req("period", d.Period); err != nil {
			return err
		}
		if !oneOf(*d.Period, "day", "week", "month") {
			return fieldErr("data.period", "%q must be one of day, week, month", *d.Period)
		}
	case TypeSelfExclusion:
		if d.Scope != nil && !oneOf(*d.Scope, "brand", "national") {
			return fieldErr("data.scope", "%q must be brand or national", *d.Scope)
		}
		return tm("until", d.Until, &ev.Until)
	case TypeCoolingOff:
		if err := req("until", d.Until); err != nil {
			return err
		}
		return tm("until", d.Until, &ev.Until)
	case TypeSurveyAnswered:
		if err := req("surveyId", d.SurveyID); err != nil {
			return err
		}
		if d.Answers == nil {
			return fieldErr("data.answers", "is required for %s", ev.Type)
		}
	case TypeInactive:
		if d.Days == nil || *d.Days <= 0 {
			return fieldErr("data.days", "must be a positive number of days")
		}
	case TypeAnniversary:
		if d.Years == nil || *d.Years <= 0 {
			return fieldErr("data.years", "must be a positive number of years")
		}
	case TypeCouponRedeemed:
		if err := req("code", d.Code); err != nil {
			return err
		}
		return req("campaign", d.Campaign)
	case TypeDeliveryFailed:
		if err := req("decisionId", d.DecisionID); err != nil {
			return err
		}
		if err := req("channel", d.Channel); err != nil {
			return err
		}
		return req("reason", d.Reason)
	case TypeTokenInvalid:
		if err := req("channel", d.Channel); err != nil {
			return err
		}
		return req("token", d.Token)
	case TypeEmailBounced:
		if err := req("kind", d.Kind); err != nil {
			return err
		}
		if !oneOf(*d.Kind, "hard", "soft", "complaint") {
			return fieldErr("data.kind", "%q must be hard, soft or complaint", *d.Kind)
		}
	case TypeCostSettled:
		if err := req("decisionId", d.DecisionID); err != nil {
			return err
		}
		if err := req("amount", d.Amount); err != nil {
			return err
		}
		if err := req("currency", d.Currency); err != nil {
			return err
		}
		m, err := money.ParseMicros(*d.Amount, *d.Currency)
		if err != nil {
			return fieldErr("data.amount", "%v", err)
		}
		ev.CostMicros = m
	}
	return nil
}

// checkProfile validates the profile fields wherever they appear.
func (ev *Event) checkProfile() error {
	d := &ev.Data
	if d.Country != nil && !countryRE.MatchString(*d.Country) {
		return fieldErr("data.country", "%q must be an ISO 3166-1 alpha-2 code such as AZ", *d.Country)
	}
	if d.Language != nil && !langRE.MatchString(*d.Language) {
		return fieldErr("data.language", "%q must be a BCP 47 tag such as az or ru", *d.Language)
	}
	if d.TimeZone != nil && *d.TimeZone != "" {
		if _, err := clock.Location(*d.TimeZone); err != nil {
			return fieldErr("data.timeZone", "%q is not an IANA time zone", *d.TimeZone)
		}
	}
	if d.Currency != nil && !currencyRE.MatchString(*d.Currency) {
		return fieldErr("data.currency", "%q must be a three-letter ISO 4217 code such as AZN", *d.Currency)
	}
	if d.KYCStatus != nil && !oneOf(*d.KYCStatus, "none", "pending", "passed", "failed") {
		return fieldErr("data.kycStatus", "%q must be none, pending, passed or failed", *d.KYCStatus)
	}
	if d.VIPLevel != nil && (*d.VIPLevel < 0 || *d.VIPLevel > 100) {
		return fieldErr("data.vipLevel", "%d must be between 0 and 100", *d.VIPLevel)
	}
	if d.Email != nil && *d.Email != "" && (len(*d.Email) > 254 || !strings.Contains(*d.Email, "@")) {
		return fieldErr("data.email", "is not an email address")
	}
	if d.Phone != nil && *d.Phone != "" && !phoneRE.MatchString(*d.Phone) {
		return fieldErr("data.phone", "must be in E.164 form such as +994501234567")
	}
	if d.PushTokens != nil {
		if len(*d.PushTokens) > maxTokens {
			return fieldErr("data.pushTokens", "has %d tokens; the limit is %d", len(*d.PushTokens), maxTokens)
		}
		for i, t := range *d.PushTokens {
			if !oneOf(t.Platform, "ios", "android", "web") {
				return fieldErr("data.pushTokens["+strconv.Itoa(i)+"].platform", "%q must be ios, android or web", t.Platform)
			}
			if t.Token == "" || len(t.Token) > 4096 {
				return fieldErr("data.pushTokens["+strconv.Itoa(i)+"].token", "must be 1-4096 characters")
			}
		}
	}
	if len(d.WebPushSubscription) > 0 && !bytes.Equal(d.WebPushSubscription, []byte("null")) {
		var sub struct {
			Endpoint string `json:"endpoint"`
			Keys     struct {
				P256dh string `json:"p256dh"`
				Auth   string `json:"auth"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(d.WebPushSubscription, &sub); err != nil || !strings.HasPrefix(sub.Endpoint, "https://") || sub.Keys.P256dh == "" || sub.Keys.Auth == "" {
			return fieldErr("data.webPushSubscription", "must be a PushSubscription with an https endpoint and keys p256dh and auth")
		}
	}
	if len(d.Attrs) > maxAttrs {
		return fieldErr("data.attrs", "has %d keys; the limit is %d", len(d.Attrs), maxAttrs)
	}
	for k, v := range d.Attrs {
		if k == "" || len(k) > 63 {
			return fieldErr("data.attrs", "key %q must be 1-63 characters", k)
		}
		switch v.(type) {
		case string, bool, float64, json.Number, nil:
		default:
			return fieldErr("data.attrs."+k, "must be a string, number, boolean or null")
		}
		if s := AttrString(v); len(s) > maxAttrLen {
			return fieldErr("data.attrs."+k, "is longer than %d characters", maxAttrLen)
		}
	}
	if d.ID != nil && *d.ID != ev.Player {
		return fieldErr("data.id", "%q differs from the event's player %q", *d.ID, ev.Player)
	}
	return nil
}

var (
	phoneRE    = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// AttrString is the string form of an attribute value (attrs are strings in CEL).
func AttrString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

// Known reports whether t is one of the types EVENTS.md defines.
func Known(t string) bool {
	switch t {
	case TypeRegistered, TypeProfileUpdated, TypeImported, TypeErasureRequested, TypeInactive, TypeAnniversary, TypeCouponRedeemed,
		TypeDepositCompleted, TypeDepositFailed, TypeWithdrawalCompleted, TypeKYCPassed, TypeKYCFailed,
		TypeBetPlaced, TypeBetSettled, TypeSessionStarted, TypeSessionEnded, TypeBonusActivated,
		TypeLimitApproaching, TypeLimitExceeded, TypeSelfExclusion, TypeCoolingOff, TypeSurveyAnswered,
		TypeDeliveryFailed, TypeTokenInvalid, TypeEmailBounced, TypeCostSettled:
		return true
	}
	return false
}

// needsData lists the known types whose data has required fields.
func needsData(t string) bool {
	switch t {
	case TypeKYCPassed, TypeKYCFailed, TypeSessionStarted, TypeSessionEnded, TypeSelfExclusion,
		TypeProfileUpdated, TypeImported, TypeErasureRequested:
		return false
	}
	return true
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// TypeLabel bounds a metric's type label: a known type, or "other" (unknown types are
// stored and usable, but must not multiply metric series).
func TypeLabel(t string) string {
	if Known(t) {
		return t
	}
	return "other"
}

// SweepEvent is the player.inactive (n days without activity since the Unix time since)
// or player.anniversary (n years since registration at since) event the partition owner
// emits from its sweep; its id makes a repeat a duplicate.
func SweepEvent(player, typ string, n int, since int64, now time.Time) bus.CloudEvent {
	field, suffix := "days", "-inactive-"
	if typ == TypeAnniversary {
		field, suffix = "years", "-anniversary-"
	}
	return bus.CloudEvent{
		SpecVersion: "1.0", Source: SourceCroupier, Type: typ, Subject: player,
		ID:   player + suffix + strconv.Itoa(n) + "-" + strconv.FormatInt(since, 10),
		Time: now.UTC(), DataContentType: "application/json",
		Data: json.RawMessage(`{"` + field + `":` + strconv.Itoa(n) + `}`),
	}
}

// CouponRedeemed is the event the redeem API publishes for the player's owner: the
// campaign's redemption counter, and a goal event experiments may use.
func CouponRedeemed(player, code, campaign string, use int, now time.Time) bus.CloudEvent {
	data, _ := json.Marshal(map[string]string{"code": code, "campaign": campaign})
	return bus.CloudEvent{
		SpecVersion: "1.0", Source: SourceCroupier, Type: TypeCouponRedeemed, Subject: player,
		ID:   player + "-redeemed-" + code + "-" + strconv.Itoa(use),
		Time: now.UTC(), DataContentType: "application/json", Data: data,
	}
}

// ErasureRequest is the event the admin API publishes to have the player's partition owner
// erase the player in order with the player's other events. It names the actor only.
func ErasureRequest(player, actor, requestID string, now time.Time) bus.CloudEvent {
	data, _ := json.Marshal(map[string]string{"actor": actor})
	return bus.CloudEvent{
		SpecVersion: "1.0", ID: requestID, Source: SourceCroupier, Type: TypeErasureRequested,
		Subject: player, Time: now.UTC(), DataContentType: "application/json", Data: data,
	}
}

// ContactFields are the event data fields that hold a player's contact data or identity:
// they reach the profile (sealed, internal/datakey) and nowhere else.
var ContactFields = []string{"email", "phone", "viberId", "pushTokens", "webPushSubscription", "token", "birthDate", "attrs"}

// WithoutContacts is an event's data with the contact fields removed: what a flow keeps
// as its data (templates' .Event), its intents and schedules carry and the routing state
// stores, so none of those holds contact data (templates read the profile's .Player).
// Data without such a field is returned as is.
func WithoutContacts(data json.RawMessage) json.RawMessage {
	has := false
	for _, f := range ContactFields {
		if bytes.Contains(data, []byte(`"`+f+`"`)) {
			has = true
			break
		}
	}
	if !has {
		return data
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	for _, f := range ContactFields {
		delete(m, f)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}
