package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
)

// Body limits of the player, admin and provider routes. A body over its route's limit is
// answered 413, never read in part (a truncated body would fail as "unexpected EOF").
const (
	maxPreferencesBody = 64 << 10
	maxSuppressionBody = 16 << 20
	maxProviderBody    = 1 << 20
	maxSendGridBody    = 4 << 20
	maxTestSendBody    = 4 << 10
)

// bodyProblem answers a body that could not be read or decoded: 413 when it is over its
// limit, 400 with what is wrong otherwise.
func bodyProblem(w http.ResponseWriter, err error, what string) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		ingest.WriteProblem(w, http.StatusRequestEntityTooLarge, ingest.Problem{Error: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit)})
		return
	}
	ingest.WriteProblem(w, http.StatusBadRequest, ingest.Problem{Error: what + err.Error()})
}
