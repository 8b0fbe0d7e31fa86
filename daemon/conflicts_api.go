package daemon

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/store"
)

// conflictsAPI serves the admin endpoints on conflicts:
//
//	GET  /api/conflicts?status=open|pending|escalated|resolved|all
//	GET  /api/conflicts/{id}
//	POST /api/conflicts/{id}/resolve  {"choice": "local|remote|merged", "values": {...}, "by": "..."}
type conflictsAPI struct {
	store *store.Store
	log   zerolog.Logger
}

// mount hands every endpoint to handle (the daemon's admin, which puts
// them behind the admin token).
func (a *conflictsAPI) mount(handle func(string, http.Handler)) {
	handle("GET /api/conflicts", http.HandlerFunc(a.list))
	handle("GET /api/conflicts/{id}", http.HandlerFunc(a.get))
	handle("POST /api/conflicts/{id}/resolve", http.HandlerFunc(a.resolve))
}

// ConflictStatuses are the statuses a listing of conflicts may ask for.
var ConflictStatuses = []string{"open", store.ConflictPending, store.ConflictEscalated, store.ConflictResolved, "all"}

func (a *conflictsAPI) list(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	if status == "" {
		status = "open"
	}
	if !slices.Contains(ConflictStatuses, status) {
		apiError(w, http.StatusBadRequest, "status must be one of "+strings.Join(ConflictStatuses, ", "))
		return
	}
	if status == "all" {
		status = ""
	}
	cs, err := a.store.ListConflicts(r.Context(), status, 1000)
	if err != nil {
		a.fail(w, err)
		return
	}
	if cs == nil {
		cs = []store.Conflict{}
	}
	writeJSON(w, http.StatusOK, cs)
}

func (a *conflictsAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, err := a.store.GetConflict(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *conflictsAPI) resolve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		Choice string          `json:"choice"`
		Values conflict.Values `json:"values"`
		By     string          `json:"by"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if !slices.Contains([]string{conflict.ChoiceLocal, conflict.ChoiceRemote, conflict.ChoiceMerged}, body.Choice) {
		apiError(w, http.StatusBadRequest, `choice must be "local", "remote" or "merged"`)
		return
	}
	if body.By == "" {
		body.By = "api"
	}
	c, err := a.store.ResolveConflict(r.Context(), id, body.Choice, body.Values, body.By)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info().Int64("conflict", c.ID).Str("rule", c.Rule).Str("by", c.ResolvedBy).Msg("conflict resolved")
	writeJSON(w, http.StatusOK, c)
}

func (a *conflictsAPI) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		apiError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrResolvedOtherwise):
		apiError(w, http.StatusConflict, err.Error())
	case errors.Is(err, conflict.ErrChoice):
		apiError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrBusy):
		w.Header().Set("Retry-After", "1")
		apiError(w, http.StatusServiceUnavailable, err.Error())
	default:
		a.log.Warn().Err(err).Msg("conflicts API")
		apiError(w, http.StatusInternalServerError, "internal error; see cdcd's log")
	}
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		apiError(w, http.StatusBadRequest, "id must be a positive integer")
		return 0, false
	}
	return id, true
}
