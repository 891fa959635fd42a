// Package players keeps what Croupier knows of each player: the profile from the casino's
// account system, contact addresses and push tokens, and the metrics derived from events
// (deposits, bets, sessions, activity, churn risk, RFM). The partition owner holds its
// partitions' players in memory (the index segments are evaluated against) and is the only
// writer of croupier-players.
package players

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/money"
	"github.com/croupier-crm/croupier/internal/rules"
)

// Unix is a time in Unix seconds (0: unset). It keeps a player's times in 8 bytes instead of
// time.Time's 24 and encodes as RFC 3339.
type Unix int64

// UnixOf converts a time (zero stays 0).
func UnixOf(t time.Time) Unix {
	if t.IsZero() {
		return 0
	}
	return Unix(t.Unix())
}

// Time is the time.Time value (zero for 0).
func (u Unix) Time() time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(int64(u), 0).UTC()
}

// MarshalJSON writes RFC 3339 or null.
func (u Unix) MarshalJSON() ([]byte, error) {
	if u == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(u.Time().Format(time.RFC3339))
}

// UnmarshalJSON reads RFC 3339 or null.
func (u *Unix) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*u = 0
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	*u = UnixOf(t)
	return nil
}

// Attr is one custom attribute.
type Attr struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// GameCount counts bets on one game or game category.
type GameCount struct {
	Name  string `json:"n"`
	Count uint32 `json:"c"`
}

// topGames is how many games a player's favourite is chosen from (space-saving counters:
// the favourite is exact unless the player spreads bets over more than this many games).
const topGames = 4

// recentEvents is how many event keys a player remembers to drop a duplicate that arrives
// after the stream's 10-minute de-duplication window.
const recentEvents = 8

// Player is one player's profile and derived metrics; the JSON form is the croupier-players
// value. Money is in minor units of Currency.
type Player struct {
	// Fields are ordered so the struct packs without padding (the index holds a million).
	ID       string `json:"id"`
	Brand    string `json:"brand"`
	Country  string `json:"country,omitempty"`
	Language string `json:"language,omitempty"`
	TimeZone string `json:"timeZone,omitempty"`
	Currency string `json:"currency,omitempty"`

	KYCStatus          string `json:"kycStatus,omitempty"`
	VIPLevel           int32  `json:"vipLevel,omitempty"`
	Erased             bool   `json:"erased,omitempty"`
	AgeVerified        bool   `json:"ageVerified,omitempty"`
	NationalExcluded   bool   `json:"nationalExcluded,omitempty"`
	SelfExcluded       bool   `json:"selfExcluded,omitempty"`
	SelfExcludedUntil  Unix   `json:"selfExcludedUntil,omitempty"`
	CoolingOffUntil    Unix   `json:"coolingOffUntil,omitempty"`
	AtRiskUntil        Unix   `json:"atRiskUntil,omitempty"`
	AcquisitionChannel string `json:"acquisitionChannel,omitempty"`
	TrafficSource      string `json:"trafficSource,omitempty"`
	RegisteredAt       Unix   `json:"registeredAt,omitempty"`
	BirthDate          Unix   `json:"birthDate,omitempty"`

	// Contact data: only here, in prefs/inbox and transiently in EVENTS/DELIVERIES.
	Email               string             `json:"email,omitempty"`
	Phone               string             `json:"phone,omitempty"`
	ViberID             string             `json:"viberId,omitempty"`
	PushTokens          []ingest.PushToken `json:"pushTokens,omitempty"`
	WebPushSubscription json.RawMessage    `json:"webPushSubscription,omitempty"`
	EmailBounced        bool               `json:"emailBounced,omitempty"`
	// SoftBounces counts soft bounces of the current address; SoftBounceLimit of them
	// mark it bounced, as a hard bounce does.
	SoftBounces uint8 `json:"softBounces,omitempty"`

	Attrs []Attr `json:"attrs,omitempty"`

	DepositCount  int64       `json:"depositCount,omitempty"`
	DepositSum    int64       `json:"depositSum,omitempty"`
	LastDeposit   Unix        `json:"lastDeposit,omitempty"`
	WithdrawalSum int64       `json:"withdrawalSum,omitempty"`
	BetCount      int64       `json:"betCount,omitempty"`
	StakeSum      int64       `json:"stakeSum,omitempty"`
	WinSum        int64       `json:"winSum,omitempty"`
	Games         []GameCount `json:"games,omitempty"`
	Categories    []GameCount `json:"categories,omitempty"`
	SessionDays   [7]uint16   `json:"sessionDays"`
	// NetDays is the gaming result (stakes minus wins, minor units) of the last 14 local
	// days in the player's zone, NetDay the newest; NetMonths the last two local months
	// (NetMonth = year*12 + month - 1): what cashback is computed from.
	NetDays   [14]int64 `json:"netDays"`
	NetDay    int32     `json:"netDay,omitempty"`
	NetMonths [2]int64  `json:"netMonths"`
	// DepositDays are the player's deposits (minor units of the player's currency) on the
	// last 7 local days, DepositDay the newest: with NetDays, what a campaign's effect
	// compares the days after a player's start with (Trailing).
	DepositDays     [7]int32 `json:"depositDays"`
	DepositDay      int32    `json:"depositDay,omitempty"`
	NetMonth        int32    `json:"netMonth,omitempty"`
	SessionDay      int32    `json:"sessionDay,omitempty"`
	LastActivity    Unix     `json:"lastActivity,omitempty"`
	InactiveEmitted int32    `json:"inactiveEmitted,omitempty"`
	// AnniversaryEmitted is the last registration anniversary (years) emitted.
	AnniversaryEmitted int32 `json:"anniversaryEmitted,omitempty"`
	RFM                RFM   `json:"rfm"`

	// LastSeq is the last EVENTS sequence applied: a redelivered event is not applied twice.
	LastSeq uint64 `json:"lastSeq,omitempty"`
	// Recent holds hashes of the last event keys (source + id).
	Recent [recentEvents]uint64 `json:"recent"`
}

// RFM is the player's recency, frequency and monetary scores (1-5) and segment name.
type RFM struct {
	R       uint8  `json:"r,omitempty"`
	F       uint8  `json:"f,omitempty"`
	M       uint8  `json:"m,omitempty"`
	Segment string `json:"segment,omitempty"`
}

// interned strings: countries, languages, zones, currencies, games repeat across millions
// of players; one copy each keeps the index small.
var intern sync.Map

func in(s string) string {
	if s == "" || len(s) > 64 {
		return s
	}
	if v, ok := intern.Load(s); ok {
		return v.(string)
	}
	s = strings.Clone(s)
	v, _ := intern.LoadOrStore(s, s)
	return v.(string)
}

// Intern re-interns the shared strings of a player decoded from JSON.
func (p *Player) Intern() {
	p.Brand, p.Country, p.Language, p.TimeZone = in(p.Brand), in(p.Country), in(p.Language), in(p.TimeZone)
	p.Currency, p.KYCStatus, p.AcquisitionChannel, p.TrafficSource = in(p.Currency), in(p.KYCStatus), in(p.AcquisitionChannel), in(p.TrafficSource)
	p.RFM.Segment = in(p.RFM.Segment)
	for i := range p.Games {
		p.Games[i].Name = in(p.Games[i].Name)
	}
	for i := range p.Categories {
		p.Categories[i].Name = in(p.Categories[i].Name)
	}
	for i := range p.Attrs {
		p.Attrs[i].Key = in(p.Attrs[i].Key)
	}
	if len(p.WebPushSubscription) == 0 {
		p.WebPushSubscription = nil
	}
}

// Active reports whether an event of this type is the player's own activity (it resets
// days inactive).
func Active(t string) bool {
	switch t {
	case ingest.TypeRegistered, ingest.TypeDepositCompleted, ingest.TypeDepositFailed,
		ingest.TypeWithdrawalCompleted, ingest.TypeBetPlaced, ingest.TypeBetSettled,
		ingest.TypeSessionStarted, ingest.TypeSessionEnded, ingest.TypeBonusActivated,
		ingest.TypeSurveyAnswered:
		return true
	}
	return false
}

// atRiskFor is how long a limit.exceeded marks a player as at risk.
const atRiskFor = 30 * 24 * time.Hour

// Apply changes the player by one validated event. It returns false when the event was
// already applied (same stream sequence or a remembered source + id) and changes nothing.
func (p *Player) Apply(ev *ingest.Event, seq uint64, key uint64) bool {
	if seq != 0 && seq <= p.LastSeq {
		return false
	}
	if key != 0 && slices.Contains(p.Recent[:], key) {
		return false
	}
	if seq != 0 {
		p.LastSeq = seq
	}
	if key != 0 {
		copy(p.Recent[1:], p.Recent[:recentEvents-1])
		p.Recent[0] = key
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	d := &ev.Data
	switch ev.Type {
	case ingest.TypeRegistered:
		p.applyProfile(ev)
		if p.RegisteredAt == 0 {
			p.RegisteredAt = UnixOf(at)
		}
	case ingest.TypeProfileUpdated:
		p.applyProfile(ev)
	case ingest.TypeImported:
		p.applyProfile(ev)
		p.applyImport(ev)
	case ingest.TypeDepositCompleted:
		p.adoptCurrency(*d.Currency)
		p.DepositCount++
		if *d.Currency == p.Currency {
			p.DepositSum += ev.AmountMinor
			p.addDeposit(at, ev.AmountMinor)
		}
		if u := UnixOf(at); u > p.LastDeposit {
			p.LastDeposit = u
		}
	case ingest.TypeWithdrawalCompleted:
		p.adoptCurrency(*d.Currency)
		if *d.Currency == p.Currency {
			p.WithdrawalSum += ev.AmountMinor
		}
	case ingest.TypeBetPlaced:
		p.adoptCurrency(*d.Currency)
		p.BetCount++
		if *d.Currency == p.Currency {
			p.StakeSum += ev.AmountMinor
			p.addNet(at, ev.AmountMinor)
		}
		p.Games = count(p.Games, *d.Game)
		p.Categories = count(p.Categories, *d.GameCategory)
	case ingest.TypeBetSettled:
		if *d.Currency == p.Currency {
			p.WinSum += ev.WinMinor
			p.addNet(at, -ev.WinMinor)
		}
	case ingest.TypeSessionStarted:
		p.countSession(at)
	case ingest.TypeKYCPassed:
		p.KYCStatus = in("passed")
	case ingest.TypeKYCFailed:
		p.KYCStatus = in("failed")
	case ingest.TypeLimitExceeded:
		p.AtRiskUntil = UnixOf(at.Add(atRiskFor))
	case ingest.TypeSelfExclusion:
		p.SelfExcluded = true
		p.SelfExcludedUntil = UnixOf(ev.Until)
		if d.Scope != nil && *d.Scope == "national" {
			p.NationalExcluded = true
		}
	case ingest.TypeCoolingOff:
		p.CoolingOffUntil = UnixOf(ev.Until)
	case ingest.TypeTokenInvalid:
		p.PushTokens = slices.DeleteFunc(p.PushTokens, func(t ingest.PushToken) bool { return t.Token == *d.Token })
		if len(p.PushTokens) == 0 {
			p.PushTokens = nil
		}
		if strings.EqualFold(*d.Channel, "webPush") { // the channel's name is webPush
			p.WebPushSubscription = nil
		}
		if *d.Channel == "viber" && p.ViberID == *d.Token {
			p.ViberID = ""
		}
	case ingest.TypeEmailBounced:
		// A hard bounce or a spam complaint makes the address undeliverable until the
		// casino sends a new one (email providers suppress a complainer's address too).
		switch *d.Kind {
		case "hard", "complaint":
			p.EmailBounced = true
		case "soft":
			if p.SoftBounces < SoftBounceLimit {
				p.SoftBounces++
			}
			p.EmailBounced = p.EmailBounced || p.SoftBounces >= SoftBounceLimit
		}
	}
	if Active(ev.Type) {
		if u := UnixOf(at); u > p.LastActivity {
			p.LastActivity = u
			p.InactiveEmitted = 0
		}
	}
	return true
}

// SoftBounceLimit is how many soft bounces of one address make it undeliverable (a full
// mailbox for weeks, a domain that keeps deferring).
const SoftBounceLimit = 3

func (p *Player) adoptCurrency(c string) {
	if p.Currency == "" {
		p.Currency = in(c)
	}
}

func (p *Player) applyProfile(ev *ingest.Event) {
	d := &ev.Data
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = in(*v)
		}
	}
	set(&p.Country, d.Country)
	set(&p.Language, d.Language)
	set(&p.TimeZone, d.TimeZone)
	set(&p.KYCStatus, d.KYCStatus)
	set(&p.AcquisitionChannel, d.AcquisitionChannel)
	set(&p.TrafficSource, d.TrafficSource)
	if d.Currency != nil {
		p.Currency = in(*d.Currency)
	}
	if d.Email != nil {
		if *d.Email != p.Email {
			p.EmailBounced, p.SoftBounces = false, 0
		}
		p.Email = strings.Clone(*d.Email)
	}
	if d.Phone != nil {
		p.Phone = strings.Clone(*d.Phone)
	}
	if d.ViberID != nil {
		p.ViberID = strings.Clone(*d.ViberID)
	}
	if d.VIPLevel != nil {
		p.VIPLevel = int32(*d.VIPLevel)
	}
	if d.AgeVerified != nil {
		p.AgeVerified = *d.AgeVerified
	}
	if !ev.BirthDate.IsZero() {
		p.BirthDate = UnixOf(ev.BirthDate)
	}
	if d.PushTokens != nil {
		p.PushTokens = nil
		if len(*d.PushTokens) > 0 {
			p.PushTokens = slices.Clone(*d.PushTokens)
		}
	}
	if len(d.WebPushSubscription) > 0 {
		if string(d.WebPushSubscription) == "null" {
			p.WebPushSubscription = nil
		} else {
			p.WebPushSubscription = slices.Clone(d.WebPushSubscription)
		}
	}
	for k, v := range d.Attrs {
		p.setAttr(k, v)
	}
}

func (p *Player) applyImport(ev *ingest.Event) {
	d := &ev.Data
	if !ev.RegisteredAt.IsZero() {
		p.RegisteredAt = UnixOf(ev.RegisteredAt)
	}
	if d.SelfExcluded != nil {
		p.SelfExcluded = *d.SelfExcluded
	}
	if !ev.CoolingOffUntil.IsZero() {
		p.CoolingOffUntil = UnixOf(ev.CoolingOffUntil)
	}
	if d.DepositCount != nil {
		p.DepositCount = *d.DepositCount
	}
	if d.DepositSum != nil {
		p.DepositSum = ev.DepositSumMinor
	}
	if d.WithdrawalSum != nil {
		p.WithdrawalSum = ev.WithdrawalSumMinor
	}
	if !ev.LastActivity.IsZero() {
		p.LastActivity = UnixOf(ev.LastActivity)
	}
}

func (p *Player) setAttr(k string, v any) {
	i := slices.IndexFunc(p.Attrs, func(a Attr) bool { return a.Key == k })
	if v == nil { // null removes the attribute
		if i >= 0 {
			p.Attrs = slices.Delete(p.Attrs, i, i+1)
		}
		return
	}
	s := ingest.AttrString(v)
	if i >= 0 {
		p.Attrs[i].Value = in(s)
		return
	}
	p.Attrs = append(p.Attrs, Attr{Key: in(k), Value: in(s)})
	slices.SortFunc(p.Attrs, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
}

// count adds one to name's counter (space-saving: a new name replaces the smallest counter
// and inherits its count, so a frequent game is never lost).
func count(cs []GameCount, name string) []GameCount {
	for i := range cs {
		if cs[i].Name == name {
			cs[i].Count++
			return cs
		}
	}
	if len(cs) < topGames {
		return append(cs, GameCount{Name: in(name), Count: 1})
	}
	m := 0
	for i := range cs {
		if cs[i].Count < cs[m].Count {
			m = i
		}
	}
	cs[m] = GameCount{Name: in(name), Count: cs[m].Count + 1}
	return cs
}

func favourite(cs []GameCount) string {
	best := -1
	for i := range cs {
		if best < 0 || cs[i].Count > cs[best].Count || (cs[i].Count == cs[best].Count && cs[i].Name < cs[best].Name) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return cs[best].Name
}

func dayOf(t time.Time) int32 { return int32(t.Unix() / 86400) }

// zone is the player's time zone, Asia/Baku when unknown.
func (p *Player) zone() *time.Location {
	if p.TimeZone != "" {
		if l, err := clock.Location(p.TimeZone); err == nil {
			return l
		}
	}
	l, _ := clock.Location(clock.DefaultZone)
	return l
}

// localDay is t's calendar day in loc, counted from 1970-01-01.
func localDay(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func localMonth(t time.Time, loc *time.Location) int32 {
	y, m, _ := t.In(loc).Date()
	return int32(y*12 + int(m) - 1)
}

// addNet adds a stake (positive) or a win (negative) to the day and month rings.
func (p *Player) addNet(at time.Time, minor int64) {
	loc := p.zone()
	day, month := localDay(at, loc), localMonth(at, loc)
	if day > p.NetDay {
		if p.NetDay == 0 || day-p.NetDay >= int32(len(p.NetDays)) {
			p.NetDays = [14]int64{}
		} else {
			for d := p.NetDay + 1; d <= day; d++ {
				p.NetDays[d%14] = 0
			}
		}
		p.NetDay = day
	}
	if day > p.NetDay-14 {
		p.NetDays[day%14] += minor
	}
	if month > p.NetMonth {
		if month == p.NetMonth+1 {
			p.NetMonths[month%2] = 0
		} else {
			p.NetMonths = [2]int64{}
		}
		p.NetMonth = month
	}
	if month > p.NetMonth-2 {
		p.NetMonths[month%2] += minor
	}
}

// addDeposit adds a deposit to the day ring.
func (p *Player) addDeposit(at time.Time, minor int64) {
	day := localDay(at, p.zone())
	if day > p.DepositDay {
		if p.DepositDay == 0 || day-p.DepositDay >= int32(len(p.DepositDays)) {
			p.DepositDays = [7]int32{}
		} else {
			for d := p.DepositDay + 1; d <= day; d++ {
				p.DepositDays[d%7] = 0
			}
		}
		p.DepositDay = day
	}
	if day > p.DepositDay-7 {
		p.DepositDays[day%7] = int32(min(int64(p.DepositDays[day%7])+minor, math.MaxInt32))
	}
}

// TrailingDays is the most days Trailing looks back (the deposits ring).
const TrailingDays = 7

// Trailing is the player's deposits and gaming result (stakes minus wins, minor units) on
// the n local days before now's day (n at most TrailingDays).
func (p *Player) Trailing(now time.Time, n int) (deposits, net int64) {
	today := localDay(now, p.zone())
	n = min(max(n, 1), TrailingDays)
	for d := today - int32(n); d < today; d++ {
		if d <= p.DepositDay && d > p.DepositDay-7 {
			deposits += int64(p.DepositDays[d%7])
		}
		if d <= p.NetDay && d > p.NetDay-14 {
			net += p.NetDays[d%14]
		}
	}
	return deposits, net
}

// Through is the player's deposits and gaming result on the n local days ending with at's
// (n at most TrailingDays): Trailing as of the next local day.
func (p *Player) Through(at time.Time, n int) (deposits, net int64) {
	loc := p.zone()
	y, m, d := at.In(loc).Date()
	return p.Trailing(time.Date(y, m, d+1, 12, 0, 0, 0, loc), n)
}

// NetLoss is the player's gaming result (stakes minus wins, minor units) over the last
// complete period before now in the player's zone: yesterday, last Monday to Sunday, or
// last month. Positive is a loss.
func (p *Player) NetLoss(period crmv1.Period, now time.Time) int64 {
	loc := p.zone()
	today := localDay(now, loc)
	var from, to int32 // days, inclusive
	switch period {
	case crmv1.PeriodMonth:
		m := localMonth(now, loc) - 1
		if m <= p.NetMonth-2 || m > p.NetMonth {
			return 0
		}
		return p.NetMonths[m%2]
	case crmv1.PeriodWeek:
		wd := (int32(now.In(loc).Weekday()) + 6) % 7 // Monday 0
		from, to = today-wd-7, today-wd-1
	default:
		from, to = today-1, today-1
	}
	var sum int64
	for d := from; d <= to; d++ {
		if d <= p.NetDay && d > p.NetDay-14 {
			sum += p.NetDays[d%14]
		}
	}
	return sum
}

// countSession counts a session on its UTC day in a 7-day ring.
func (p *Player) countSession(at time.Time) {
	day := dayOf(at)
	p.advanceSessions(day)
	if day <= p.SessionDay-7 {
		return // older than the ring
	}
	if p.SessionDays[day%7] < math.MaxUint16 {
		p.SessionDays[day%7]++
	}
}

// advanceSessions moves the ring to day, clearing the days it skips.
func (p *Player) advanceSessions(day int32) {
	if day <= p.SessionDay {
		return
	}
	gap := day - p.SessionDay
	if p.SessionDay == 0 || gap >= 7 {
		p.SessionDays = [7]uint16{}
	} else {
		for d := p.SessionDay + 1; d <= day; d++ {
			p.SessionDays[d%7] = 0
		}
	}
	p.SessionDay = day
}

// SessionsPerWeek counts the sessions of the 7 days up to now.
func (p *Player) SessionsPerWeek(now time.Time) int {
	day := dayOf(now)
	if p.SessionDay == 0 || day-p.SessionDay >= 7 {
		return 0
	}
	n := 0
	for d := max(day-6, p.SessionDay-6); d <= p.SessionDay; d++ {
		n += int(p.SessionDays[d%7])
	}
	return n
}

// AnniversaryCatchUp is how long after its day a registration anniversary is still
// emitted (a dispatcher down over the day catches up; an import of old players does not
// announce anniversaries long past).
const AnniversaryCatchUp = 48 * time.Hour

// Anniversary is the number of years since registration when now falls on the
// anniversary's local day in the player's time zone (Asia/Baku when unknown) or up to
// AnniversaryCatchUp after its start, else 0. A 29 February registration has its
// anniversary on 1 March in other years.
func (p *Player) Anniversary(now time.Time) int {
	if p.RegisteredAt == 0 {
		return 0
	}
	loc, err := clock.Location(p.TimeZone)
	if p.TimeZone == "" || err != nil {
		loc, _ = clock.Location(clock.DefaultZone)
	}
	reg, local := p.RegisteredAt.Time().In(loc), now.In(loc)
	years := local.Year() - reg.Year()
	day := time.Date(reg.Year()+years, reg.Month(), reg.Day(), 0, 0, 0, 0, loc)
	if local.Before(day) {
		years--
		day = time.Date(reg.Year()+years, reg.Month(), reg.Day(), 0, 0, 0, 0, loc)
	}
	if years < 1 || local.Sub(day) >= AnniversaryCatchUp {
		return 0
	}
	return years
}

// DaysInactive is the number of whole days since the last activity (since registration
// when there was none).
func (p *Player) DaysInactive(now time.Time) int64 {
	last := p.LastActivity
	if last == 0 {
		last = p.RegisteredAt
	}
	if last == 0 {
		return 0
	}
	d := (now.Unix() - int64(last)) / 86400
	return max(d, 0)
}

// ChurnRisk is 0 (just active) to 1 (gone): 1 - exp(-days inactive / the player's usual
// gap), where the usual gap is a week divided by the sessions of the last week (at least
// one day, at most 14: a player with no recent sessions is judged against a fortnight).
func (p *Player) ChurnRisk(now time.Time) float64 {
	days := float64(p.DaysInactive(now))
	gap := 14.0
	if s := p.SessionsPerWeek(now); s > 0 {
		gap = math.Max(1, 7/float64(s))
	}
	return math.Round((1-math.Exp(-days/gap))*1000) / 1000
}

// major converts minor units of the player's currency to major units.
func (p *Player) major(minor int64) float64 {
	return float64(minor) / math.Pow10(money.Exponent(p.Currency))
}

// ltv is stakes minus wins, in major units.
func (p *Player) ltv() float64 { return p.major(p.StakeSum - p.WinSum) }

// arpu is the LTV per month since registration (at least one month), rounded to cents.
func (p *Player) arpu(now time.Time) float64 {
	months := 1.0
	if p.RegisteredAt != 0 {
		months = math.Max(1, now.Sub(p.RegisteredAt.Time()).Hours()/24/30.4375)
	}
	return math.Round(p.ltv()/months*100) / 100
}

func (p *Player) avgBet() float64 {
	if p.BetCount == 0 {
		return 0
	}
	return math.Round(p.major(p.StakeSum)/float64(p.BetCount)*100) / 100
}

func (p *Player) hasEmail() bool { return p.Email != "" && !p.EmailBounced }
func (p *Player) hasPush() bool  { return len(p.PushTokens) > 0 || len(p.WebPushSubscription) > 0 }

// Rules is the player as the CEL environment sees it at now.
func (p *Player) Rules(now time.Time) rules.Player {
	var attrs map[string]string
	if len(p.Attrs) > 0 {
		attrs = make(map[string]string, len(p.Attrs))
		for _, a := range p.Attrs {
			attrs[a.Key] = a.Value
		}
	}
	nowU := Unix(now.Unix())
	return rules.Player{
		ID: p.ID, Country: p.Country, Language: p.Language, TimeZone: p.TimeZone, Currency: p.Currency,
		VIPLevel: int64(p.VIPLevel), KYCStatus: p.KYCStatus, AgeVerified: p.AgeVerified,
		SelfExcluded:         p.SelfExcludedAt(now),
		CoolingOff:           p.CoolingOffUntil > nowU,
		AtRisk:               p.AtRiskUntil > nowU,
		AcquisitionChannel:   p.AcquisitionChannel,
		RegisteredAt:         p.RegisteredAt.Time(),
		BirthDate:            p.BirthDate.Time(),
		DepositCount:         p.DepositCount,
		DepositSum:           p.major(p.DepositSum),
		WithdrawalSum:        p.major(p.WithdrawalSum),
		LTV:                  p.ltv(),
		ARPU:                 p.arpu(now),
		BetCount:             p.BetCount,
		AvgBet:               p.avgBet(),
		Wagered:              p.major(p.StakeSum),
		NetLoss:              p.major(p.DepositSum - p.WithdrawalSum),
		FavoriteGame:         favourite(p.Games),
		FavoriteGameCategory: favourite(p.Categories),
		SessionsPerWeek:      float64(p.SessionsPerWeek(now)),
		LastActivity:         p.LastActivity.Time(),
		DaysInactive:         p.DaysInactive(now),
		ChurnRisk:            p.ChurnRisk(now),
		RFM:                  rules.RFM{R: int64(p.RFM.R), F: int64(p.RFM.F), M: int64(p.RFM.M), Segment: p.RFM.Segment},
		HasEmail:             p.hasEmail(),
		HasPhone:             p.Phone != "",
		HasPush:              p.hasPush(),
		Attrs:                attrs,
	}
}

// View is a player as a rule's fast path reads it at a time: each field is computed when
// the rule asks for it, exactly as Rules computes it.
type View struct {
	P   *Player
	Now time.Time
}

var _ rules.Fields = View{}

// Int implements rules.Fields.
func (v View) Int(f rules.Field) int64 {
	p := v.P
	switch f {
	case rules.FieldVIPLevel:
		return int64(p.VIPLevel)
	case rules.FieldDepositCount:
		return p.DepositCount
	case rules.FieldBetCount:
		return p.BetCount
	case rules.FieldDaysInactive:
		return p.DaysInactive(v.Now)
	case rules.FieldRFMR:
		return int64(p.RFM.R)
	case rules.FieldRFMF:
		return int64(p.RFM.F)
	case rules.FieldRFMM:
		return int64(p.RFM.M)
	}
	return 0
}

// Float implements rules.Fields.
func (v View) Float(f rules.Field) float64 {
	p := v.P
	switch f {
	case rules.FieldDepositSum:
		return p.major(p.DepositSum)
	case rules.FieldWithdrawalSum:
		return p.major(p.WithdrawalSum)
	case rules.FieldLTV:
		return p.ltv()
	case rules.FieldARPU:
		return p.arpu(v.Now)
	case rules.FieldAvgBet:
		return p.avgBet()
	case rules.FieldWagered:
		return p.major(p.StakeSum)
	case rules.FieldNetLoss:
		return p.major(p.DepositSum - p.WithdrawalSum)
	case rules.FieldSessionsPerWeek:
		return float64(p.SessionsPerWeek(v.Now))
	case rules.FieldChurnRisk:
		return p.ChurnRisk(v.Now)
	}
	return 0
}

// String implements rules.Fields.
func (v View) String(f rules.Field) string {
	p := v.P
	switch f {
	case rules.FieldID:
		return p.ID
	case rules.FieldCountry:
		return p.Country
	case rules.FieldLanguage:
		return p.Language
	case rules.FieldTimeZone:
		return p.TimeZone
	case rules.FieldCurrency:
		return p.Currency
	case rules.FieldKYCStatus:
		return p.KYCStatus
	case rules.FieldAcquisitionChannel:
		return p.AcquisitionChannel
	case rules.FieldFavoriteGame:
		return favourite(p.Games)
	case rules.FieldFavoriteGameCategory:
		return favourite(p.Categories)
	case rules.FieldRFMSegment:
		return p.RFM.Segment
	}
	return ""
}

// Bool implements rules.Fields.
func (v View) Bool(f rules.Field) bool {
	p := v.P
	switch f {
	case rules.FieldAgeVerified:
		return p.AgeVerified
	case rules.FieldSelfExcluded:
		return p.SelfExcludedAt(v.Now)
	case rules.FieldCoolingOff:
		return p.CoolingOffUntil > Unix(v.Now.Unix())
	case rules.FieldAtRisk:
		return p.AtRiskUntil > Unix(v.Now.Unix())
	case rules.FieldHasEmail:
		return p.hasEmail()
	case rules.FieldHasPhone:
		return p.Phone != ""
	case rules.FieldHasPush:
		return p.hasPush()
	}
	return false
}

// Match evaluates a player rule for p at now: through the rule's fast path when it has
// one, else through CEL.
func Match(prog *rules.Program, p *Player, now time.Time) (bool, error) {
	if prog.Fast() {
		return prog.MatchFields(View{P: p, Now: now})
	}
	rp := p.Rules(now)
	return prog.Match(&rp)
}

// SelfExcludedAt reports a self-exclusion in force at now (indefinite when no end).
func (p *Player) SelfExcludedAt(now time.Time) bool {
	return p.NationalExcluded || (p.SelfExcluded && (p.SelfExcludedUntil == 0 || p.SelfExcludedUntil > Unix(now.Unix())))
}
