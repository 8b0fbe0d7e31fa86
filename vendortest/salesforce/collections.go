package salesforce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// MaxCollection is the most records one sObject Collections request takes.
const MaxCollection = 200

// upsertResult is one record's outcome (Salesforce's UpsertResult).
type upsertResult struct {
	ID      string        `json:"id,omitempty"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
	Created bool          `json:"created"`
}

type recordError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func failed(code, msg string, fields ...string) upsertResult {
	if fields == nil {
		fields = []string{}
	}
	return upsertResult{Errors: []recordError{{code, msg, fields}}}
}

// upsertCollection serves PATCH /composite/sobjects/{Type}/{Field}.
func (s *Server) upsertCollection(typ, field string, body []byte) (int, any) {
	var req struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, apiError("JSON_PARSER_ERROR", "malformed JSON: "+err.Error())
	}
	if len(req.Records) == 0 {
		return http.StatusBadRequest, apiError("INVALID_FIELD", "No records specified")
	}
	if len(req.Records) > MaxCollection {
		return http.StatusBadRequest, apiError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
	}
	for _, rec := range req.Records {
		attrs, _ := rec["attributes"].(map[string]any)
		if attrs == nil || attrs["type"] == nil {
			return http.StatusBadRequest, apiError("INVALID_TYPE", "Must send a concrete entity type.")
		}
		if attrs["type"] != typ {
			return http.StatusBadRequest, apiError("INVALID_TYPE", fmt.Sprintf("the list can contain only %s records", typ))
		}
	}
	if status, resp := s.checkExternalID(typ, field); status != 0 {
		return status, resp
	}
	if status, resp := s.checkFields(typ, req.Records); status != 0 {
		return status, resp
	}
	// A dry run first: allOrNone applies nothing unless every record can be.
	results := s.upsertAll(typ, field, req.Records, false)
	ok := !slices.ContainsFunc(results, func(r upsertResult) bool { return !r.Success })
	if req.AllOrNone && !ok {
		for i := range results {
			if results[i].Success {
				results[i] = failed("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header")
			}
		}
		return http.StatusOK, results
	}
	return http.StatusOK, s.upsertAll(typ, field, req.Records, true)
}

func (s *Server) upsertAll(typ, field string, records []map[string]any, apply bool) []upsertResult {
	results := make([]upsertResult, len(records))
	seen := map[string]bool{}
	for i, rec := range records {
		value := fmt.Sprint(rec[field])
		switch {
		case rec[field] == nil || value == "":
			results[i] = failed("MISSING_ARGUMENT", field+" not specified")
		case seen[value]:
			results[i] = failed("DUPLICATE_EXTERNAL_ID", "Duplicate external id specified: "+value, field)
		default:
			seen[value] = true
			fields := clone(rec)
			delete(fields, "attributes")
			results[i] = s.upsertOne(typ, field, value, fields, s.match(typ, field, value), apply)
		}
	}
	return results
}

// upsertOne creates or updates the record whose field is value; ids are
// the records that match. It changes nothing unless apply.
func (s *Server) upsertOne(typ, field, value string, fields map[string]any, ids []string, apply bool) upsertResult {
	k := typ + "/" + value
	if errs := s.recordErrs[k]; len(errs) > 0 {
		if apply {
			s.recordErrs[k] = errs[1:]
		}
		return failed(errs[0].code, errs[0].msg)
	}
	if len(ids) > 1 {
		// Unverified wording, after the Bulk API's error for this case.
		return failed("DUPLICATE_EXTERNAL_ID", fmt.Sprintf("%s: more than one record found for external id field: [%s]", field, strings.Join(ids, ", ")), field)
	}
	if _, ok := fields["Id"]; ok {
		return failed("INVALID_FIELD", "Id not allowed in an upsert by external id", "Id")
	}
	merged := map[string]any{}
	if len(ids) == 1 {
		merged = clone(s.records[typ][ids[0]])
	}
	for f, v := range fields {
		merged[f] = v
	}
	var missing []string
	for _, f := range s.opts.Required[typ] {
		if v, ok := merged[f]; !ok || v == nil || v == "" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return failed("REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
	}
	if !apply {
		return upsertResult{Success: true, Errors: []recordError{}, Created: len(ids) == 0}
	}
	if len(ids) == 1 {
		s.records[typ][ids[0]] = merged
		return upsertResult{ID: ids[0], Success: true, Errors: []recordError{}}
	}
	return upsertResult{ID: s.insert(typ, merged), Success: true, Errors: []recordError{}, Created: true}
}

// match returns the ids of the typ records whose field is value, sorted.
func (s *Server) match(typ, field, value string) []string {
	var ids []string
	for id, rec := range s.records[typ] {
		if v, ok := rec[field]; ok && v != nil && fmt.Sprint(v) == value {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// retrieveCollection serves POST /composite/sobjects/{Type} with
// {"ids": [...], "fields": [...]}: the records in the order asked, null
// for an id that matches none. fields is required, as Salesforce requires
// it.
func (s *Server) retrieveCollection(typ string, body []byte) (int, any) {
	var req struct {
		IDs    []string `json:"ids"`
		Fields []string `json:"fields"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, apiError("JSON_PARSER_ERROR", "malformed JSON: "+err.Error())
	}
	switch {
	case len(req.IDs) == 0:
		return http.StatusBadRequest, apiError("INVALID_FIELD", "No ids specified")
	case len(req.Fields) == 0:
		return http.StatusBadRequest, apiError("INVALID_FIELD", "No fields specified")
	case len(req.IDs) > 2000:
		return http.StatusBadRequest, apiError("EXCEEDED_ID_LIMIT", "cannot retrieve more than 2000 records in one call")
	}
	for _, f := range req.Fields {
		if strings.Contains(f, ".") { // REST names compound components MailingCity, not MailingAddress.City
			return http.StatusBadRequest, apiError("INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'", f, typ))
		}
	}
	out := make([]any, len(req.IDs))
	for i, id := range req.IDs {
		rec, ok := s.records[typ][id]
		if !ok {
			continue
		}
		r := map[string]any{"Id": rec["Id"]}
		for _, f := range req.Fields {
			r[f] = rec[f]
		}
		out[i] = withAttributes(typ, r)
	}
	return http.StatusOK, out
}
