package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// admin mounts h at pattern on the daemon's HTTP server, behind the
// admin token: every request needs "Authorization: Bearer
// <http.admin_token>"; without a configured token the endpoint answers 403.
func (d *Daemon) admin(pattern string, h http.Handler) {
	d.server.Handle(pattern, adminOnly(d.cfg.HTTP.AdminToken, h))
}

func adminOnly(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			apiError(w, http.StatusForbidden, "the admin API is off: set http.admin_token")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdcd"`)
			apiError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
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
