package rules

import "time"

// Player is the schema of `player` in Segment rules, audience rules, trigger conditions
// and branch conditions: the profile, the derived metrics, RFM and custom attributes.
// Field names are the JSON names (player.ltv, player.rfm.r, player.attrs["vip_host"]).
type Player struct {
	ID                 string    `json:"id"`
	Country            string    `json:"country"`
	Language           string    `json:"language"`
	TimeZone           string    `json:"timeZone"`
	Currency           string    `json:"currency"`
	VIPLevel           int64     `json:"vipLevel"`
	KYCStatus          string    `json:"kycStatus"`
	AgeVerified        bool      `json:"ageVerified"`
	SelfExcluded       bool      `json:"selfExcluded"`
	CoolingOff         bool      `json:"coolingOff"`
	AtRisk             bool      `json:"atRisk"`
	AcquisitionChannel string    `json:"acquisitionChannel"`
	RegisteredAt       time.Time `json:"registeredAt"`
	BirthDate          time.Time `json:"birthDate"`

	DepositCount  int64   `json:"depositCount"`
	DepositSum    float64 `json:"depositSum"`
	WithdrawalSum float64 `json:"withdrawalSum"`
	LTV           float64 `json:"ltv"`
	ARPU          float64 `json:"arpu"`
	BetCount      int64   `json:"betCount"`
	AvgBet        float64 `json:"avgBet"`
	// Wagered is the total staked over the player's bets (major units): "wagering reached".
	Wagered              float64   `json:"wagered"`
	NetLoss              float64   `json:"netLoss"`
	FavoriteGame         string    `json:"favoriteGame"`
	FavoriteGameCategory string    `json:"favoriteGameCategory"`
	SessionsPerWeek      float64   `json:"sessionsPerWeek"`
	LastActivity         time.Time `json:"lastActivity"`
	DaysInactive         int64     `json:"daysInactive"`
	ChurnRisk            float64   `json:"churnRisk"`
	RFM                  RFM       `json:"rfm"`

	HasEmail bool `json:"hasEmail"`
	HasPhone bool `json:"hasPhone"`
	HasPush  bool `json:"hasPush"`

	Attrs map[string]string `json:"attrs"`
}

// RFM is recency, frequency and monetary value, each 1 (low) to 5 (high) by quintile, and
// the named segment they place the player in.
type RFM struct {
	R       int64  `json:"r"`
	F       int64  `json:"f"`
	M       int64  `json:"m"`
	Segment string `json:"segment"`
}

// RFM segment names (player.rfm.segment).
var RFMSegments = []string{
	"champions", "loyal", "potentialLoyalist", "newPlayers", "promising",
	"needAttention", "aboutToSleep", "atRisk", "cannotLose", "hibernating", "lost",
}

// Event is `event` in trigger and waitFor conditions: id, source, type, time and data
// (the event's payload, fields as EVENTS.md names them, extra fields kept).
type Event struct {
	ID     string         `json:"id"`
	Source string         `json:"source"`
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Data   map[string]any `json:"data"`
}

// Map is the event as CEL sees it.
func (e *Event) Map() map[string]any {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return map[string]any{"id": e.ID, "source": e.Source, "type": e.Type, "time": e.Time, "data": data}
}
