// Package inapp is the in-app channel: each player's inbox is one croupier-inbox key
// (<brand>.<part>.<player>, purged with the player), newest message first, read and
// marked read by the player API and followed live by its Server-Sent Events feed.
package inapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// Message is one inbox entry.
type Message struct {
	ID       string     `json:"id"`
	Campaign string     `json:"campaign"`
	Category string     `json:"category"`
	Locale   string     `json:"locale"`
	Subject  string     `json:"subject,omitempty"`
	Text     string     `json:"text,omitempty"`
	HTML     string     `json:"html,omitempty"`
	DeepLink string     `json:"deepLink,omitempty"`
	ImageURL string     `json:"imageURL,omitempty"`
	Button   string     `json:"buttonText,omitempty"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	Read     *time.Time `json:"read,omitempty"`
}

// Inbox is a player's messages, newest first.
type Inbox struct {
	Messages []Message `json:"messages"`
}

// Unread counts the unread messages.
func (in *Inbox) Unread() int {
	n := 0
	for _, m := range in.Messages {
		if m.Read == nil {
			n++
		}
	}
	return n
}

// Prune drops expired messages and keeps the newest max.
func (in *Inbox) Prune(now time.Time, max int) {
	in.Messages = slices.DeleteFunc(in.Messages, func(m Message) bool { return !m.Expires.After(now) })
	if len(in.Messages) > max {
		in.Messages = in.Messages[:max]
	}
}

// Defaults of the inApp provider (options ttl and max).
const (
	DefaultTTL = 30 * 24 * time.Hour
	DefaultMax = 100
)

// ErrNotFound is a message id the inbox does not hold.
var ErrNotFound = errors.New("no such message in the inbox")

// Store reads and changes inboxes.
type Store struct {
	KV         jetstream.KeyValue
	Partitions int
	// Keys seals the inbox records (message bodies) with the players' data keys; nil
	// stores them plain.
	Keys *datakey.Reader
}

// sealedInbox is an inbox record sealed with the player's data key.
type sealedInbox struct {
	Sealed []byte `json:"sealed"`
}

// Key is the player's inbox key.
func (s *Store) Key(brand, player string) string {
	return bus.PlayerKey(brand, bus.Partition(player, s.Partitions), player)
}

// Get reads an inbox (empty when there is none) and its revision.
func (s *Store) Get(ctx context.Context, brand, player string) (*Inbox, uint64, error) {
	e, err := s.KV.Get(ctx, s.Key(brand, player))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &Inbox{}, 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	raw := e.Value()
	var box sealedInbox
	if json.Unmarshal(raw, &box) == nil && len(box.Sealed) > 0 {
		if s.Keys == nil {
			return nil, 0, errors.New("reading the inbox: it is sealed and the store has no data keys")
		}
		if raw, err = s.Keys.Open(ctx, brand, player, box.Sealed); errors.Is(err, datakey.ErrErased) {
			return &Inbox{}, e.Revision(), nil
		} else if err != nil {
			return nil, 0, fmt.Errorf("reading the inbox: %w", err)
		}
	}
	var in Inbox
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, 0, fmt.Errorf("reading the inbox: %w", err)
	}
	return &in, e.Revision(), nil
}

// Update changes an inbox by compare-and-set, trying again when another writer won.
func (s *Store) Update(ctx context.Context, brand, player string, change func(in *Inbox) error) (*Inbox, error) {
	for range 10 {
		in, rev, err := s.Get(ctx, brand, player)
		if err != nil {
			return nil, err
		}
		if err := change(in); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(in)
		if s.Keys != nil {
			box, err := s.Keys.Seal(ctx, brand, player, b)
			if err != nil {
				return nil, fmt.Errorf("sealing the inbox: %w", err)
			}
			b, _ = json.Marshal(sealedInbox{Sealed: box})
		}
		if rev == 0 {
			_, err = s.KV.Create(ctx, s.Key(brand, player), b)
		} else {
			_, err = s.KV.Update(ctx, s.Key(brand, player), b, rev)
		}
		if err == nil {
			return in, nil
		}
		if !bus.Conflict(err) {
			return nil, err
		}
	}
	return nil, errors.New("the inbox kept changing: try again")
}

// MarkRead marks one message (or every message when id is "") read.
func (s *Store) MarkRead(ctx context.Context, brand, player, id string, now time.Time) (*Inbox, error) {
	return s.Update(ctx, brand, player, func(in *Inbox) error {
		found := false
		for i := range in.Messages {
			if id == "" || in.Messages[i].ID == id {
				found = true
				if in.Messages[i].Read == nil {
					t := now.UTC()
					in.Messages[i].Read = &t
				}
			}
		}
		if !found && id != "" {
			return ErrNotFound
		}
		return nil
	})
}

// Provider delivers to the inbox: a message is "sent" once stored.
type Provider struct {
	store *Store
	ttl   time.Duration
	max   int
}

// Factory is the channel.Factory of type inApp on the store; options ttl (a Go duration)
// and max (messages kept) override the defaults.
func Factory(store *Store) channel.Factory {
	return func(cfg channel.Config) (channel.Provider, error) {
		p := &Provider{store: store, ttl: DefaultTTL, max: DefaultMax}
		if v := cfg.Provider.Options["ttl"]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("options.ttl: %q is not a positive duration", v)
			}
			p.ttl = d
		}
		if v := cfg.Provider.Options["max"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("options.max: %q must be 1-1000", v)
			}
			p.max = n
		}
		return p, nil
	}
}

// Send stores the message in the player's inbox; a redelivered job replaces its own entry.
func (p *Provider) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	now := time.Now().UTC()
	msg := Message{ID: j.DecisionID, Campaign: j.Campaign, Category: j.Data["category"], Locale: j.Locale, Subject: j.Subject,
		Text: j.Text, HTML: j.HTML, DeepLink: j.Data["deepLink"], ImageURL: j.Data["imageURL"], Button: j.Data["buttonText"],
		Created: now, Expires: now.Add(p.ttl)}
	_, err := p.store.Update(ctx, j.Brand, j.Player, func(in *Inbox) error {
		in.Messages = slices.DeleteFunc(in.Messages, func(x Message) bool { return x.ID == msg.ID })
		in.Messages = append([]Message{msg}, in.Messages...)
		in.Prune(now, p.max)
		return nil
	})
	if err != nil {
		return channel.Receipt{}, channel.Errorf(channel.Transient, "inbox: %v", err)
	}
	return channel.Receipt{ProviderID: msg.ID}, nil
}
