package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apiserver/pkg/authentication/user"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"

	"github.com/croupier-crm/croupier/dispatcher/flow"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
)

// Leaderboards serve a tournament's live standing, merged from every partition owner's
// published scores, so it is the same whichever replica answers: for the casino platform
// (its brand credentials; any player's rank) and for a player (their JWT; their own rank,
// the others' ids masked).
type Leaderboards struct {
	Stats      jetstream.KeyValue
	Catalog    *flow.Catalog
	Keys       ingest.KeySource
	Partitions int
	Clock      clock.Func
}

// Standing is a leaderboard answer.
type Standing struct {
	Campaign     string  `json:"campaign"`
	Final        bool    `json:"final"`
	Participants int     `json:"participants"`
	Top          []Place `json:"top"`
	Player       *Place  `json:"player,omitempty"`
}

// Place is a rank on the board.
type Place struct {
	Rank   int    `json:"rank"`
	Player string `json:"player"`
	Score  int64  `json:"score"`
}

// maxTop bounds ?top=.
const maxTop = 100

// Register adds the routes.
func (l *Leaderboards) Register(mux *http.ServeMux, p *Preferences) {
	mux.HandleFunc("GET /v1/brands/{brand}/campaigns/{campaign}/leaderboard", l.platform)
	mux.Handle("GET /v1/brands/{brand}/me/leaderboards/{campaign}", p.player(func(w http.ResponseWriter, r *http.Request, brand, player string) {
		l.serve(w, r, brand, player, true)
	}))
}

// RegisterAdmin adds the staff's view of a tournament's standings to the admin API (the
// console's tournament page): the same board, read by people allowed campaign reports.
func (l *Leaderboards) RegisterAdmin(mux *http.ServeMux, a *Admin) {
	mux.Handle("GET /v1/brands/{brand}/campaigns/{campaign}/standings", a.guard("get", crmv1.AdminCampaignsReport,
		func(w http.ResponseWriter, r *http.Request, brand string, _ user.Info) {
			l.serve(w, r, brand, "", false)
		}))
}

func (l *Leaderboards) platform(w http.ResponseWriter, r *http.Request) {
	brand := r.PathValue("brand")
	if err := bus.CheckToken("brand", brand); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "brand"})
		return
	}
	keys, err := l.Keys.Keys(r.Context(), brand)
	if err == nil {
		err = ingest.Authenticate(r, nil, keys, l.Clock.Now())
	}
	if err != nil {
		ingest.WriteProblem(w, http.StatusUnauthorized, ingest.Problem{Error: err.Error()})
		return
	}
	player := r.URL.Query().Get("player")
	if player != "" {
		if err := bus.CheckToken("player", player); err != nil {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "player"})
			return
		}
	}
	l.serve(w, r, brand, player, false)
}

func (l *Leaderboards) serve(w http.ResponseWriter, r *http.Request, brand, player string, mask bool) {
	name := r.PathValue("campaign")
	if err := bus.CheckToken("campaign", name); err != nil {
		ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: err.Error(), Field: "campaign"})
		return
	}
	top := 10
	if q := r.URL.Query().Get("top"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > maxTop {
			ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: "top must be 1 to " + strconv.Itoa(maxTop), Field: "top"})
			return
		}
		top = n
	}
	b := l.Catalog.Brand(brand)
	var cp *flow.Campaign
	if b != nil {
		cp = b.Campaigns[name]
	}
	if cp == nil || cp.Tournament == nil {
		ingest.WriteProblem(w, http.StatusNotFound, ingest.Problem{Error: "no tournament Campaign " + name + " is published in " + brand})
		return
	}
	docs, err := l.read(r.Context(), brand, cp)
	if err != nil {
		ingest.WriteProblem(w, http.StatusServiceUnavailable, ingest.Problem{Error: "the scores cannot be read now; retry later"})
		return
	}
	ranked := bus.Ranked(docs)
	st := Standing{Campaign: name, Final: len(docs) == max(1, l.Partitions), Participants: len(ranked), Top: []Place{}}
	for _, d := range docs {
		st.Final = st.Final && d.Final
	}
	for i, se := range ranked {
		pl := Place{Rank: i + 1, Player: se.Player, Score: se.Score}
		if se.Player == player {
			me := pl
			st.Player = &me
		}
		if i < top {
			if mask && se.Player != player {
				pl.Player = maskID(se.Player)
			}
			st.Top = append(st.Top, pl)
		}
	}
	ingest.WriteJSON(w, http.StatusOK, st)
}

func (l *Leaderboards) read(ctx context.Context, brand string, cp *flow.Campaign) ([]bus.Leaderboard, error) {
	var docs []bus.Leaderboard
	for part := range max(1, l.Partitions) {
		e, err := l.Stats.Get(ctx, bus.StatsKey(brand, bus.KindLeaderboard, cp.Name, part))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lb, err := bus.Decode[bus.Leaderboard](e.Value())
		if err != nil {
			return nil, err
		}
		if lb.UID == cp.UID {
			docs = append(docs, lb)
		}
	}
	return docs, nil
}

// maskID shows a player another player's id only by its first characters.
func maskID(id string) string {
	if len(id) <= 3 {
		return "***"
	}
	return id[:3] + "***"
}
