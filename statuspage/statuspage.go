// Package statuspage serves cdcd's status: a page at / for people, and
// GET /api/status for `cdcd status` and scripts. Both show the health
// monitor's last evaluation, the recent transitions and the jobs in
// progress, and need the admin token or the read-only token.
package statuspage

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/store"
)

// Reporter is the health monitor: its last evaluation.
type Reporter interface {
	Report() health.Report
}

// History reads what the page shows from cdcd's tables; *store.Store is
// one.
type History interface {
	HealthTransitions(ctx context.Context, limit int) ([]store.HealthTransition, error)
	JobsInProgress(ctx context.Context, limit int) ([]store.JobProgress, error)
}

// Status is the answer of GET /api/status.
type Status struct {
	health.Report
	Transitions []store.HealthTransition `json:"transitions"`
	Jobs        []store.JobProgress      `json:"jobs"`
	// Problems are the parts that could not be read, in words.
	Problems []string `json:"problems,omitempty"`
}

// Tokens are the bearer tokens that open the page and the API: either
// one does. With neither set both answer 403.
type Tokens struct {
	Admin, Read string
}

// Handler serves the page and the API.
type Handler struct {
	tokens  Tokens
	health  Reporter
	history History // nil: no transitions or jobs
	log     zerolog.Logger
	// Refresh is how often the page reloads itself.
	refresh time.Duration
}

// New returns the handler of the status of health, with the transitions
// and jobs of history (which may be nil).
func New(tokens Tokens, h Reporter, history History, refresh time.Duration, log zerolog.Logger) *Handler {
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	return &Handler{tokens: tokens, health: h, history: history, refresh: refresh, log: log.With().Str("component", "statuspage").Logger()}
}

// Mount adds the routes to a mux.
func (h *Handler) Mount(handle func(string, http.Handler)) {
	handle("GET /{$}", h.auth(h.page))
	handle("GET /api/status", h.auth(h.api))
}

// How many transitions and jobs are shown.
const (
	transitionsShown = 30
	jobsShown        = 20
)

// Status gathers what the page and the API show.
func (h *Handler) Status(ctx context.Context) Status {
	st := Status{Report: h.health.Report(), Transitions: []store.HealthTransition{}, Jobs: []store.JobProgress{}}
	if h.history == nil {
		return st
	}
	ts, err := h.history.HealthTransitions(ctx, transitionsShown)
	if err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else if ts != nil {
		st.Transitions = ts
	}
	js, err := h.history.JobsInProgress(ctx, jobsShown)
	if err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else if js != nil {
		st.Jobs = js
	}
	return st
}

func (h *Handler) api(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(h.Status(r.Context())); err != nil {
		h.log.Debug().Err(err).Msg("writing status")
	}
}

// auth lets a request through with either token, as a bearer token or as
// the password of basic authentication (what a browser asks for).
func (h *Handler) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.tokens.Admin == "" && h.tokens.Read == "" {
			http.Error(w, "the status page is off: set http.read_token or http.admin_token", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			_, got, ok = r.BasicAuth()
		}
		if !ok || !(match(got, h.tokens.Admin) || match(got, h.tokens.Read)) {
			w.Header().Set("WWW-Authenticate", `Basic realm="cdcd status (the password is http.read_token or http.admin_token)", charset="UTF-8"`)
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
		next(w, r)
	})
}

func match(got, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
