package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/dispatcher/reward"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/money"
)

// Coupons serves POST /v1/brands/{brand}/coupons/redeem for the casino platform (its
// cashier or bonus engine), authenticated like the event intake (the brand's HMAC
// signature or bearer token). Codes are redeemed by compare-and-set.
type Coupons struct {
	Store   *reward.Coupons
	Keys    ingest.KeySource
	JS      jetstream.JetStream
	Players jetstream.KeyValue
	Catalog *flow.Catalog
	// Partitions is P, to find a player's profile for a segment restriction.
	Partitions int
	Log        *slog.Logger
	Clock      clock.Func
	// DataKeys open the players' sealed profiles (a segment may name attributes).
	DataKeys *datakey.Reader
}

// maxRedeemBody bounds a redeem request.
const maxRedeemBody = 4 << 10

// Register adds the route.
func (c *Coupons) Register(mux *http.ServeMux) {
	if c.Store.InSegment == nil {
		c.Store.InSegment = c.inSegment
	}
	mux.HandleFunc("POST /v1/brands/{brand}/coupons/redeem", c.redeem)
}

// RedeemRequest is the body of a redemption.
type RedeemRequest struct {
	Code   string `json:"code"`
	Player string `json:"player"`
	// RequestID makes a retried request get its first answer.
	RequestID string `json:"requestId,omitempty"`
}

// Redeemed is the answer to a successful redemption.
type Redeemed struct {
	Code     string `json:"code"`
	Campaign string `json:"campaign"`
	Reward   string `json:"reward"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Uses     int    `json:"uses"`
	MaxUses  int    `json:"maxUses,omitempty"`
}

func (c *Coupons) redeem(w http.ResponseWriter, r *http.Request) {
	brand := r.PathValue("brand")
	if err := bus.CheckToken("brand", brand); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "brand"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRedeemBody))
	if err != nil {
		ingest.WriteProblem(w, http.StatusRequestEntityTooLarge, ingest.Problem{Error: "the body is larger than " + strconv.Itoa(maxRedeemBody) + " bytes"})
		return
	}
	keys, err := c.Keys.Keys(r.Context(), brand)
	if err != nil && !errors.Is(err, ingest.ErrNoKeys) {
		c.Log.Error("reading brand keys", "brand", brand, "err", err)
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the brand's keys cannot be read now; retry later"})
		return
	}
	if err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return
	}
	if err := ingest.Authenticate(r, body, keys, c.Clock.Now()); err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return
	}
	var req RedeemRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the body must be {\"code\", \"player\", \"requestId\"}: " + err.Error()})
		return
	}
	req.Code = strings.ToUpper(strings.TrimSpace(req.Code))
	switch {
	case !reward.ValidCode(req.Code):
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "a code is 4 to 48 letters A-Z and digits", Field: "code"})
		return
	case bus.CheckToken("player", req.Player) != nil:
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: bus.CheckToken("player", req.Player).Error(), Field: "player"})
		return
	case len(req.RequestID) > 128:
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "at most 128 characters", Field: "requestId"})
		return
	}
	now := c.Clock.Now()
	cp, err := c.Store.Redeem(r.Context(), brand, req.Code, req.Player, req.RequestID, now)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, reward.ErrUnknownCode):
			status = http.StatusNotFound
		case errors.Is(err, reward.ErrExpired):
			status = http.StatusGone
		case errors.Is(err, reward.ErrNotYours), errors.Is(err, reward.ErrNotEligible):
			status = http.StatusForbidden
		case errors.Is(err, reward.ErrUsedUp), errors.Is(err, reward.ErrPlayerLimit):
			status = http.StatusConflict
		default:
			c.Log.Error("redeeming a coupon", "brand", brand, "err", err)
			err = errors.New("the coupon cannot be redeemed now; retry later")
			status = http.StatusServiceUnavailable
		}
		ingest.WriteProblem(w, status, ingest.Problem{Error: err.Error(), Field: "code"})
		return
	}
	// The player's owner counts the redemption for the campaign (and it may be a goal).
	ev := ingest.CouponRedeemed(req.Player, cp.Code, cp.Campaign, cp.Uses, now)
	raw, _ := json.Marshal(ev)
	if _, err := c.JS.Publish(r.Context(), bus.EventSubject(brand, req.Player, ingest.TypeCouponRedeemed), raw, jetstream.WithMsgID(ev.IdempotencyKey())); err != nil {
		c.Log.Error("recording a redemption", "brand", brand, "campaign", cp.Campaign, "err", err)
	}
	ingest.WriteJSON(w, http.StatusOK, Redeemed{Code: cp.Code, Campaign: cp.Campaign, Reward: cp.Reward,
		Amount: money.Format(cp.Value.Minor, cp.Value.Currency), Currency: cp.Value.Currency, Uses: cp.Uses, MaxUses: cp.MaxUses})
}

// inSegment evaluates the brand's Segment over the player's stored profile.
func (c *Coupons) inSegment(ctx context.Context, brand, segment, player string) (bool, error) {
	b := c.Catalog.Brand(brand)
	if b == nil || b.Segments[segment] == nil {
		return false, nil
	}
	p, found, err := players.Read(ctx, c.Players, brand, bus.Partition(player, c.Partitions), player, opener(ctx, c.DataKeys))
	if err != nil || !found {
		return false, err
	}
	if p.Erased {
		return false, nil
	}
	return players.Match(b.Segments[segment].Program, &p, c.Clock.Now())
}

// CouponImport serves POST /v1/brands/{brand}/coupons/import for the admin API
// (virtual resource coupons/import): codes a partner issued, added to an imported pool.
type CouponImport struct {
	Store *reward.Coupons
	Clock clock.Func
}

// ImportRequest is the body of an import.
type ImportRequest struct {
	Pool  string   `json:"pool"`
	Codes []string `json:"codes"`
	// ValidUntil ends every imported code (RFC 3339; optional).
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// Imported is the answer: how many codes were added, and the ones that exist already.
type Imported struct {
	Pool       string   `json:"pool"`
	Added      int      `json:"added"`
	Duplicates []string `json:"duplicates"`
}

// maxImportBody bounds an import (100,000 codes of up to 48 characters).
const maxImportBody = 8 << 20

// Register adds the route behind the admin guard.
func (ci *CouponImport) Register(mux *http.ServeMux, a *Admin) {
	mux.Handle("POST /v1/brands/{brand}/coupons/import", a.guard("create", crmv1.AdminCouponsImport, ci.serve))
}

func (ci *CouponImport) serve(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
	var req ImportRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxImportBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			ingest.WriteProblem(w, http.StatusRequestEntityTooLarge, ingest.Problem{Error: "the body is larger than 8 MiB; split the import"})
			return
		}
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the body must be {\"pool\", \"codes\", \"validUntil\"}: " + err.Error()})
		return
	}
	if !poolRE.MatchString(req.Pool) {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "a pool name is 1 to 63 of a-z, 0-9 and -", Field: "pool"})
		return
	}
	if len(req.Codes) == 0 || len(req.Codes) > reward.MaxImport {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "1 to " + strconv.Itoa(reward.MaxImport) + " codes", Field: "codes"})
		return
	}
	seen := make(map[string]bool, len(req.Codes))
	for i, c := range req.Codes {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !reward.ValidCode(c) {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "a code is 4 to 48 letters A-Z and digits", Field: "codes[" + strconv.Itoa(i) + "]"})
			return
		}
		if seen[c] {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "the code " + c + " is listed twice", Field: "codes[" + strconv.Itoa(i) + "]"})
			return
		}
		seen[c] = true
		req.Codes[i] = c
	}
	var until time.Time
	if req.ValidUntil != nil {
		until = *req.ValidUntil
	}
	added, dup, err := ci.Store.Import(r.Context(), brand, req.Pool, req.Codes, until, ci.Clock.Now())
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the import stopped: " + err.Error() + "; import the codes not yet added again"})
		return
	}
	if dup == nil {
		dup = []string{}
	}
	ingest.WriteJSON(w, http.StatusOK, Imported{Pool: req.Pool, Added: added, Duplicates: dup})
}

var poolRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
