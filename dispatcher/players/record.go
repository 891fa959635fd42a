package players

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// sealed is the part of a Player stored sealed with the player's data key: contact data
// and identity (names in attributes, birth date). Its JSON names are the Player's, so the
// opened part decodes straight into the Player.
type sealed struct {
	Email               string             `json:"email,omitempty"`
	Phone               string             `json:"phone,omitempty"`
	ViberID             string             `json:"viberId,omitempty"`
	PushTokens          []ingest.PushToken `json:"pushTokens,omitempty"`
	WebPushSubscription json.RawMessage    `json:"webPushSubscription,omitempty"`
	Attrs               []Attr             `json:"attrs,omitempty"`
	BirthDate           Unix               `json:"birthDate,omitempty"`
}

func (s *sealed) empty() bool {
	return s.Email == "" && s.Phone == "" && s.ViberID == "" && len(s.PushTokens) == 0 && len(s.WebPushSubscription) == 0 &&
		len(s.Attrs) == 0 && s.BirthDate == 0
}

// record is a Player as croupier-players stores it.
type record struct {
	*Player
	Sealed []byte `json:"sealed,omitempty"`
}

// Sealer seals and opens a player's data (a partition's datakey.Ring).
type Sealer interface {
	Seal(brand, player string, plain []byte) ([]byte, error)
	Open(brand, player string, sealed []byte) ([]byte, error)
}

// EncodeRecord is p as croupier-players stores it: with a sealer, the contact data and
// identity are sealed with the player's data key; without one (unit tests of the
// partition alone) the record is plain.
func EncodeRecord(p *Player, s Sealer) ([]byte, error) {
	part := sealed{p.Email, p.Phone, p.ViberID, p.PushTokens, p.WebPushSubscription, p.Attrs, p.BirthDate}
	if s == nil || part.empty() {
		return json.Marshal(p)
	}
	plain, err := json.Marshal(&part)
	if err != nil {
		return nil, err
	}
	box, err := s.Seal(p.Brand, p.ID, plain)
	if err != nil {
		return nil, fmt.Errorf("sealing player %s: %w", p.ID, err)
	}
	cp := *p
	cp.Email, cp.Phone, cp.ViberID, cp.PushTokens, cp.WebPushSubscription, cp.Attrs, cp.BirthDate = "", "", "", nil, nil, nil, 0
	return json.Marshal(record{Player: &cp, Sealed: box})
}

// DecodeRecord reads a croupier-players record, opening its sealed part with open. A
// record whose key is gone (datakey.ErrErased) decodes without its sealed part.
func DecodeRecord(b []byte, open func(brand, player string, sealed []byte) ([]byte, error)) (Player, error) {
	var p Player
	rec := record{Player: &p}
	if err := json.Unmarshal(b, &rec); err != nil {
		return p, err
	}
	if len(rec.Sealed) == 0 {
		return p, nil
	}
	if open == nil {
		return p, errors.New("the record is sealed and no data keys were given")
	}
	plain, err := open(p.Brand, p.ID, rec.Sealed)
	if errors.Is(err, datakey.ErrErased) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, fmt.Errorf("sealed part of player %s: %w", p.ID, err)
	}
	return p, nil
}
