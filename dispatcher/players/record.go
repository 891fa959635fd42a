package players

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
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

func sealedPart(p *Player) sealed {
	return sealed{p.Email, p.Phone, p.ViberID, p.PushTokens, p.WebPushSubscription, p.Attrs, p.BirthDate}
}

func (s *sealed) empty() bool {
	return s.Email == "" && s.Phone == "" && s.ViberID == "" && len(s.PushTokens) == 0 && len(s.WebPushSubscription) == 0 &&
		len(s.Attrs) == 0 && s.BirthDate == 0
}

// withoutSealed is a copy of p without its sealed part.
func withoutSealed(p *Player) *Player {
	cp := *p
	cp.Email, cp.Phone, cp.ViberID, cp.PushTokens, cp.WebPushSubscription, cp.Attrs, cp.BirthDate = "", "", "", nil, nil, nil, 0
	return &cp
}

// record is a Player as croupier-players stores it. Sealed is the embedded sealed part of
// records written before the part got a key of its own (ContactKey); still read.
type record struct {
	*Player
	Sealed []byte `json:"sealed,omitempty"`
}

// Sealer seals and opens a player's data (a partition's datakey.Ring).
type Sealer interface {
	Seal(brand, player string, plain []byte) ([]byte, error)
	Open(brand, player string, sealed []byte) ([]byte, error)
}

// ContactKey is the croupier-players key of a player's sealed part (contact data and
// identity), beside the player's record: it is written, and sealed, only when that part
// changes, so persisting a player's metrics seals nothing. An empty value means the
// player has no such data.
func ContactKey(brand string, part int, player string) string {
	return bus.PlayerKey(brand, part, player) + contactSuffix
}

const contactSuffix = ".contact"

// EncodeRecord is p as croupier-players stores it under the player's key: with sealed
// true, without the sealed part (SealContact seals that for ContactKey); otherwise
// (sealing off, or unit tests of the partition alone) the whole player, plain.
func EncodeRecord(p *Player, sealed bool) ([]byte, error) {
	if sealed {
		p = withoutSealed(p)
	}
	return json.Marshal(p)
}

// SealContact is the value of the player's ContactKey: the sealed part sealed with the
// player's data key, or empty when the player has no such data.
func SealContact(p *Player, s Sealer) ([]byte, error) {
	part := sealedPart(p)
	if part.empty() {
		return []byte{}, nil
	}
	plain, err := json.Marshal(&part)
	if err != nil {
		return nil, err
	}
	box, err := s.Seal(p.Brand, p.ID, plain)
	if err != nil {
		return nil, fmt.Errorf("sealing player %s: %w", p.ID, err)
	}
	return box, nil
}

// OpenContact opens a ContactKey value into p. A value whose key is gone
// (datakey.ErrErased) leaves p as it is.
func OpenContact(p *Player, box []byte, open func(brand, player string, sealed []byte) ([]byte, error)) error {
	if len(box) == 0 {
		return nil
	}
	if open == nil {
		return errors.New("the record is sealed and no data keys were given")
	}
	plain, err := open(p.Brand, p.ID, box)
	if errors.Is(err, datakey.ErrErased) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, p); err != nil {
		return fmt.Errorf("sealed part of player %s: %w", p.ID, err)
	}
	return nil
}

// DecodeRecord reads a croupier-players record, opening a sealed part embedded in it (the
// former layout) with open. A record whose key is gone (datakey.ErrErased) decodes without
// its sealed part. The part stored under ContactKey is Read's.
func DecodeRecord(b []byte, open func(brand, player string, sealed []byte) ([]byte, error)) (Player, error) {
	var p Player
	rec := record{Player: &p}
	if err := json.Unmarshal(b, &rec); err != nil {
		return p, err
	}
	return p, OpenContact(&p, rec.Sealed, open)
}

// Read reads a player from croupier-players: the record and its sealed part (ContactKey),
// opened with open. Found is false when the player has no record.
func Read(ctx context.Context, kv jetstream.KeyValue, brand string, part int, id string,
	open func(brand, player string, sealed []byte) ([]byte, error)) (p Player, found bool, err error) {
	e, err := kv.Get(ctx, bus.PlayerKey(brand, part, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return p, false, nil
	}
	if err != nil {
		return p, false, err
	}
	if p, err = DecodeRecord(e.Value(), open); err != nil {
		return p, true, err
	}
	if p.Erased {
		return p, true, nil
	}
	c, err := kv.Get(ctx, ContactKey(brand, part, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return p, true, nil
	}
	if err != nil {
		return p, true, err
	}
	return p, true, OpenContact(&p, c.Value(), open)
}

var printSeed = maphash.MakeSeed()

// contactPrint is a fingerprint of p's sealed part: the owner reseals and stores the part
// only when it changes.
func contactPrint(p *Player) uint64 {
	var h maphash.Hash
	h.SetSeed(printSeed)
	str := func(s string) {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.WriteString(s)
	}
	str(p.Email)
	str(p.Phone)
	str(p.ViberID)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(p.PushTokens)))
	_, _ = h.Write(n[:])
	for _, t := range p.PushTokens {
		str(t.Platform)
		str(t.Token)
	}
	str(string(p.WebPushSubscription))
	binary.LittleEndian.PutUint64(n[:], uint64(len(p.Attrs)))
	_, _ = h.Write(n[:])
	for _, a := range p.Attrs {
		str(a.Key)
		str(a.Value)
	}
	binary.LittleEndian.PutUint64(n[:], uint64(p.BirthDate))
	_, _ = h.Write(n[:])
	return h.Sum64() | 1 // never 0: 0 marks a part never stored
}
