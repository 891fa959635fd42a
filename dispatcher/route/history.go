package route

import (
	"fmt"
	"time"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
)

// Sent is one message a decision sent, as caps count it.
type Sent struct {
	At  int64 `json:"t"`
	Cat uint8 `json:"c"`
	Ch  uint8 `json:"h"`
}

// Seen is one content key a decision sent, as dedup checks it.
type Seen struct {
	Key uint64 `json:"k"`
	At  int64  `json:"t"`
	Ch  uint8  `json:"h"`
}

// History is what the partition owner remembers of a player's sends for caps and dedup.
// It lives in the owner's memory and is persisted, fenced, with the player's state.
type History struct {
	Sent []Sent `json:"sent,omitempty"`
	Seen []Seen `json:"seen,omitempty"`
}

// MaxKept bounds how many sends and content keys a player's history holds.
const MaxKept = 128

// Record counts a sent decision.
func (h *History) Record(cat crmv1.Category, ch crmv1.Channel, key uint64, at time.Time) {
	s := at.Unix()
	h.Sent = append(h.Sent, Sent{At: s, Cat: uint8(prefs.CategoryIndex(cat)), Ch: uint8(prefs.ChannelIndex(ch))})
	h.Seen = append(h.Seen, Seen{Key: key, At: s, Ch: uint8(prefs.ChannelIndex(ch))})
	if len(h.Sent) > MaxKept {
		h.Sent = append(h.Sent[:0], h.Sent[len(h.Sent)-MaxKept:]...)
	}
	if len(h.Seen) > MaxKept {
		h.Seen = append(h.Seen[:0], h.Seen[len(h.Seen)-MaxKept:]...)
	}
}

// Prune forgets sends older than keep.
func (h *History) Prune(now time.Time, keep time.Duration) {
	floor := now.Add(-keep).Unix()
	i := 0
	for i < len(h.Sent) && h.Sent[i].At < floor {
		i++
	}
	h.Sent = h.Sent[i:]
	i = 0
	for i < len(h.Seen) && h.Seen[i].At < floor {
		i++
	}
	h.Seen = h.Seen[i:]
}

// SeenSince finds the content key sent at or after since.
func (h *History) SeenSince(key uint64, since time.Time) (Seen, bool) {
	if h == nil {
		return Seen{}, false
	}
	s := since.Unix()
	for i := len(h.Seen) - 1; i >= 0; i-- {
		if h.Seen[i].At < s {
			break
		}
		if h.Seen[i].Key == key {
			return h.Seen[i], true
		}
	}
	return Seen{}, false
}

// count is the category's sends (on ch when ch >= 0) since the unix time.
func (h *History) count(cat uint8, ch int, since int64) int {
	n := 0
	for i := len(h.Sent) - 1; i >= 0; i-- {
		s := h.Sent[i]
		if s.At < since {
			break
		}
		if s.Cat == cat && (ch < 0 || int(s.Ch) == ch) {
			n++
		}
	}
	return n
}

// AdaptiveAfterDays is how long a player may be inactive before adaptive frequency halves
// the category's caps.
const AdaptiveAfterDays = 14

// Capped names the cap that sending on ch would exceed, "" when none. local is now in the
// player's zone (calendar-day caps count from local midnight).
func (h *History) Capped(rule *prefs.CategoryRule, pp *prefs.Prefs, ch crmv1.Channel, p *players.Player, local time.Time) string {
	if h == nil {
		return ""
	}
	cat := uint8(prefs.CategoryIndex(rule.Category))
	now := local.Unix()
	halve := rule.Adaptive && p.DaysInactive(local) >= AdaptiveAfterDays
	for _, c := range rule.Caps {
		chi := -1
		if c.Channel != "" {
			if c.Channel != ch {
				continue
			}
			chi = prefs.ChannelIndex(c.Channel)
		}
		since := now - int64(c.Window/time.Second)
		if c.CalendarDay {
			y, m, d := local.Date()
			since = time.Date(y, m, d, 0, 0, 0, 0, local.Location()).Unix()
		}
		limit := c.Max
		if halve {
			limit = max(1, limit/2)
		}
		if h.count(cat, chi, since) >= limit {
			return capName(c, limit, halve)
		}
	}
	if pp != nil {
		for _, c := range pp.Caps {
			if c.Category == rule.Category && h.count(cat, -1, now-int64(c.Window.Duration/time.Second)) >= c.Max {
				return fmt.Sprintf("the player's cap of %d per %s", c.Max, c.Window.Duration)
			}
		}
	}
	return ""
}

func capName(c prefs.Cap, limit int, halved bool) string {
	s := fmt.Sprintf("%d per %s", limit, c.Window)
	if c.CalendarDay {
		s = fmt.Sprintf("%d per local day", limit)
	}
	if c.Channel != "" {
		s += " on " + string(c.Channel)
	}
	if halved {
		s += " (halved: inactive " + fmt.Sprint(AdaptiveAfterDays) + "+ days)"
	}
	return s
}
