package main

import (
	"crypto/subtle"
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
//
// Every request needs "Authorization: Bearer <http.admin_token>"; without
// a configured token the endpoints answer 403.
type conflictsAPI struct {
	store *store.Store
	token string
	log   zerolog.Logger
}

func (a *conflictsAPI) mount(handle func(string, http.Handler)) {
	handle("GET /api/conflicts", a.auth(a.list))
	handle("GET /api/conflicts/{id}", a.auth(a.get))
	handle("POST /api/conflicts/{id}/resolve", a.auth(a.resolve))
}

func (a *conflictsAPI) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.token == "" {
			apiError(w, http.StatusForbidden, "the admin API is off: set http.admin_token")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdcd"`)
			apiError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

func (a *conflictsAPI) list(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	if status == "" {
		status = "open"
	}
	if !slices.Contains(conflictStatuses, status) {
		apiError(w, http.StatusBadRequest, "status must be one of "+strings.Join(conflictStatuses, ", "))
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
