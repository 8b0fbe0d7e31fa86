package salesforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

var versionRE = regexp.MustCompile(`^v\d+\.\d$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		CallOptions: r.Header.Get("Sforce-Call-Options"), Body: body,
	}
	if r.URL.Path == "/services/oauth2/token" {
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w}
		s.token(sw, r)
		rec.Status = sw.status
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
	status, resp, fault := s.call(r, body)
	rec.Status, rec.Fault = status, fault
	if fault == "timeout" {
		rec.Status = 0
	}
	s.requests = append(s.requests, rec)
	hang := s.opts.Faults.Hang
	s.mu.Unlock()

	if fault == "timeout" {
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		return
	}
	if resp == nil {
		w.WriteHeader(status)
		return
	}
	if r, ok := resp.(*raw); ok {
		for k, v := range r.header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(r.body)
		return
	}
	writeJSON(w, status, resp)
}

// call authenticates, counts and routes one API call; s.mu is held.
func (s *Server) call(r *http.Request, body []byte) (int, any, string) {
	if !s.session(r, time.Now()) {
		return http.StatusUnauthorized, apiError("INVALID_SESSION_ID", "Session expired or invalid"), ""
	}
	s.calls++
	if s.opts.DailyLimit > 0 && s.calls > s.opts.DailyLimit {
		return http.StatusForbidden, apiError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), ""
	}
	if len(s.callErrs) > 0 {
		e := s.callErrs[0]
		s.callErrs = s.callErrs[1:]
		return e.status, apiError(e.code, e.msg), ""
	}
	fault := ""
	if f := s.opts.Faults; f.Rate5xx+f.Rate429+f.Timeout > 0 {
		switch x := s.rng.Float64(); {
		case x < f.Rate5xx:
			return http.StatusServiceUnavailable, apiError("SERVER_UNAVAILABLE", "Server unavailable"), "5xx"
		case x < f.Rate5xx+f.Rate429:
			body, _ := json.Marshal(apiError("TOO_MANY_REQUESTS", "Too many requests"))
			return http.StatusTooManyRequests, &raw{header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"0.01"}}, body: body}, "429"
		case x < f.Rate5xx+f.Rate429+f.Timeout:
			fault = "timeout"
		}
	}
	var (
		status int
		resp   any
	)
	if v, loc, ok := queryPath(r.URL.Path); ok && r.Method == http.MethodGet {
		status, resp = s.query(v, loc, r.URL.Query())
	} else {
		status, resp = s.route(r.Method, r.URL.Path, r.URL.Query(), body)
	}
	if fields := r.URL.Query().Get("fields"); fields != "" && status == http.StatusOK && r.Method == http.MethodGet {
		status, resp = selectFields(resp, strings.Split(fields, ","))
	}
	return status, resp, fault
}

// queryPath splits /services/data/vXX.X/query[/<locator>].
func queryPath(path string) (version, locator string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/services/data/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 2 || len(parts) > 3 || parts[1] != "query" || !versionRE.MatchString(parts[0]) {
		return "", "", false
	}
	if len(parts) == 3 {
		return parts[0], parts[2], parts[2] != ""
	}
	return parts[0], "", true
}

// route dispatches /services/data/vXX.X/...; s.mu is held.
func (s *Server) route(method, path string, query map[string][]string, body []byte) (int, any) {
	rest, ok := strings.CutPrefix(path, "/services/data/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 3 || !versionRE.MatchString(parts[0]) {
		return notFound()
	}
	version := parts[0]
	if parts[1] == "sobjects" && !s.known(parts[2]) || parts[1] == "composite" && len(parts) >= 4 && parts[2] == "sobjects" && !s.known(parts[3]) {
		return notFound()
	}
	switch {
	case parts[1] == "jobs" && parts[2] == "query":
		return s.bulk(method, version, parts[3:], query, body)
	case parts[1] == "sobjects" && len(parts) == 3 && method == http.MethodGet:
		return http.StatusOK, map[string]any{"objectDescribe": map[string]any{"name": parts[2]}, "recentItems": []any{}}
	case parts[1] == "sobjects" && len(parts) == 3:
		return s.byID(method, parts[2], "", body)
	case parts[1] == "sobjects" && len(parts) == 4:
		return s.byID(method, parts[2], parts[3], body)
	case parts[1] == "sobjects" && len(parts) == 5:
		return s.byExternalID(method, version, parts[2], parts[3], parts[4], body)
	case parts[1] == "composite" && len(parts) == 4 && parts[2] == "sobjects" && method == http.MethodPost:
		return s.retrieveCollection(parts[3], body)
	case parts[1] == "composite" && len(parts) == 5 && parts[2] == "sobjects":
		if method != http.MethodPatch {
			return http.StatusMethodNotAllowed, apiError("METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are PATCH")
		}
		return s.upsertCollection(parts[3], parts[4], body)
	}
	return notFound()
}

// byID serves GET, PATCH and DELETE of /sobjects/{Type}/{id}.
func (s *Server) byID(method, typ, id string, body []byte) (int, any) {
	rec, ok := s.records[typ][id]
	if s.deleted[id] {
		return http.StatusNotFound, apiError("ENTITY_IS_DELETED", "entity is deleted")
	}
	if id == "" || !ok {
		return notFound()
	}
	switch method {
	case http.MethodGet:
		return http.StatusOK, withAttributes(typ, rec)
	case http.MethodDelete:
		delete(s.records[typ], id)
		s.deleted[id] = true
		return http.StatusNoContent, nil
	case http.MethodPatch:
		var in map[string]any
		if json.Unmarshal(body, &in) != nil {
			return http.StatusBadRequest, apiError("JSON_PARSER_ERROR", "malformed JSON")
		}
		for k, v := range in {
			rec[k] = v
		}
		return http.StatusNoContent, nil
	}
	return http.StatusMethodNotAllowed, apiError("METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed")
}

// byExternalID serves GET, PATCH (upsert) and DELETE of
// /sobjects/{Type}/{Field}/{value}. Several matches answer 300 with the
// matching records' URLs.
func (s *Server) byExternalID(method, version, typ, field, value string, body []byte) (int, any) {
	if status, resp := s.checkExternalID(typ, field); status != 0 {
		return status, resp
	}
	ids := s.match(typ, field, value)
	if len(ids) > 1 {
		urls := make([]string, len(ids))
		for i, id := range ids {
			urls[i] = "/services/data/" + version + "/sobjects/" + typ + "/" + id
		}
		return http.StatusMultipleChoices, urls
	}
	switch method {
	case http.MethodGet:
		if len(ids) == 0 {
			return notFound()
		}
		return http.StatusOK, withAttributes(typ, s.records[typ][ids[0]])
	case http.MethodDelete:
		if len(ids) == 0 {
			return notFound()
		}
		delete(s.records[typ], ids[0])
		s.deleted[ids[0]] = true
		return http.StatusNoContent, nil
	case http.MethodPatch:
		var in map[string]any
		if json.Unmarshal(body, &in) != nil || in == nil {
			return http.StatusBadRequest, apiError("JSON_PARSER_ERROR", "malformed JSON")
		}
		in[field] = value
		if status, resp := s.checkFields(typ, []map[string]any{in}); status != 0 {
			return status, resp
		}
		res := s.upsertOne(typ, field, value, in, ids, true)
		switch {
		case !res.Success:
			e := res.Errors[0]
			return http.StatusBadRequest, []map[string]any{{"message": e.Message, "errorCode": e.StatusCode, "fields": e.Fields}}
		case res.Created:
			return http.StatusCreated, res
		}
		return http.StatusNoContent, nil
	}
	return http.StatusMethodNotAllowed, apiError("METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed")
}

// selectFields answers a GET ?fields=: only those fields (null when
// unset) and attributes. REST knows no dotted names: a compound field's
// components have names of their own (MailingCity), so
// "MailingAddress.City" answers 400 INVALID_FIELD.
func selectFields(resp any, fields []string) (int, any) {
	rec, ok := resp.(map[string]any)
	if !ok {
		return http.StatusOK, resp
	}
	out := map[string]any{"attributes": rec["attributes"]}
	for _, f := range fields {
		if strings.Contains(f, ".") {
			return http.StatusBadRequest, apiError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity; if you are attempting to use a custom field, be sure to append the '__c' after the custom field name", f))
		}
		out[f] = rec[f]
	}
	return http.StatusOK, out
}

// known reports whether the sObject type exists.
func (s *Server) known(typ string) bool {
	switch typ {
	case "Account", "Contact", "Lead", "Opportunity":
		return true
	}
	_, ok := s.records[typ]
	return ok || slices.Contains(s.opts.Objects, typ)
}

// checkExternalID refuses a field that is not an external id of typ.
func (s *Server) checkExternalID(typ, field string) (int, any) {
	if ids, ok := s.opts.ExternalIDs[typ]; ok && !slices.Contains(ids, field) && field != "Id" {
		return http.StatusNotFound, apiError("NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+field)
	}
	return 0, nil
}

var dateValue = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// checkFields refuses, for the whole request, a record that is not well
// formed: a hidden field, a date field holding something else than a date.
func (s *Server) checkFields(typ string, records []map[string]any) (int, any) {
	for _, rec := range records {
		for _, f := range s.opts.Hidden[typ] {
			if _, ok := rec[f]; ok {
				return http.StatusBadRequest, apiError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", f, typ))
			}
		}
		for _, f := range s.opts.DateFields[typ] {
			if v, ok := rec[f].(string); ok && !dateValue.MatchString(v) {
				return http.StatusBadRequest, apiError("JSON_PARSER_ERROR",
					fmt.Sprintf("Cannot deserialize instance of date from VALUE_STRING value %s or request may be missing a required field at [line:1, column:%d]", v, 2+len(v)))
			}
		}
	}
	return 0, nil
}

func withAttributes(typ string, rec map[string]any) map[string]any {
	out := clone(rec)
	out["attributes"] = map[string]any{"type": typ, "url": "/services/data/v60.0/sobjects/" + typ + "/" + rec["Id"].(string)}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func notFound() (int, any) {
	return http.StatusNotFound, apiError("NOT_FOUND", "The requested resource does not exist")
}

// apiError is the body of a failed call.
func apiError(code, msg string) []map[string]any {
	return []map[string]any{{"message": msg, "errorCode": code, "fields": []string{}}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(b)
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}
