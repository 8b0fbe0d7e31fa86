package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/backfill"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/jobs"
)

// jobsAPI serves the admin endpoints on jobs:
//
//	POST /api/jobs                {"kind": "backfill|export", "pipeline": "...", "table": "...", "where": "...", "by": "..."}
//	                              {"kind": "import", "pipeline": "...", "by": "..."}
//	GET  /api/jobs?status=&kind=
//	GET  /api/jobs/{id}
//	POST /api/jobs/{id}/pause|resume|cancel
//
// Every request needs "Authorization: Bearer <http.admin_token>" (admin).
type jobsAPI struct {
	cfg   *config.Config
	store *jobs.Store
	log   zerolog.Logger
	// start creates jobs of the other kinds (imports); nil when this
	// daemon starts none.
	start func(req backfill.Request) (jobs.Spec, error)
	// wake tells the local runner a job was queued; nil without one.
	wake func()
}

func (a *jobsAPI) mount(handle func(string, http.Handler)) {
	handle("POST /api/jobs", http.HandlerFunc(a.create))
	handle("GET /api/jobs", http.HandlerFunc(a.list))
	handle("GET /api/jobs/{id}", http.HandlerFunc(a.get))
	handle("POST /api/jobs/{id}/pause", a.change((*jobs.Store).Pause))
	handle("POST /api/jobs/{id}/resume", a.change((*jobs.Store).Resume))
	handle("POST /api/jobs/{id}/cancel", a.change((*jobs.Store).Cancel))
}

func (a *jobsAPI) create(w http.ResponseWriter, r *http.Request) {
	var req backfill.Request
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		apiError(w, http.StatusBadRequest, "body: one JSON object, and nothing after it")
		return
	}
	if req.By == "" {
		req.By = "api"
	}
	spec, err := backfill.NewSpec(a.cfg, req)
	if errors.Is(err, backfill.ErrKind) && a.start != nil {
		spec, err = a.start(req)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	j, err := a.store.Create(r.Context(), spec)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info().Int64("job", j.ID).Str("kind", j.Kind).Str("pipeline", j.Pipeline).Str("by", j.RequestedBy).Msg("job queued")
	if a.wake != nil {
		a.wake()
	}
	writeJSON(w, http.StatusCreated, j)
}

func (a *jobsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s := q.Get("status"); s != "" && !slices.Contains(statuses, jobs.Status(s)) {
		apiError(w, http.StatusBadRequest, "status must be one of queued, running, paused, done, failed, cancelled")
		return
	}
	list, err := a.store.List(r.Context(), jobs.Filter{Status: jobs.Status(q.Get("status")), Kind: q.Get("kind"), Pipeline: q.Get("pipeline"), Limit: 1000})
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []*jobs.Job{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *jobsAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	j, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (a *jobsAPI) change(fn func(*jobs.Store, context.Context, int64) (*jobs.Job, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		j, err := fn(a.store, r.Context(), id)
		if err != nil {
			a.fail(w, err)
			return
		}
		a.log.Info().Int64("job", j.ID).Str("status", string(j.Status)).Msg("job changed")
		if a.wake != nil {
			a.wake()
		}
		writeJSON(w, http.StatusOK, j)
	}
}

func (a *jobsAPI) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		apiError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, jobs.ErrState):
		apiError(w, http.StatusConflict, err.Error())
	default:
		a.log.Error().Err(err).Msg("jobs api")
		apiError(w, http.StatusInternalServerError, "internal error; see cdcd's log")
	}
}

var statuses = []jobs.Status{jobs.Queued, jobs.Running, jobs.Paused, jobs.Done, jobs.Failed, jobs.Cancelled}
