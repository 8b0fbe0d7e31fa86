package hubspot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// problem is one failure, of a whole call or of one batch input.
type problem struct {
	status   int
	category string
	message  string
	details  []detail
	context  map[string][]string
}

type detail struct {
	Message string              `json:"message"`
	Code    string              `json:"code,omitempty"`
	Context map[string][]string `json:"context,omitempty"`
}

// errorBody is HubSpot's error shape.
type errorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	CorrelationID string              `json:"correlationId"`
	Category      string              `json:"category"`
	Errors        []detail            `json:"errors,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	PolicyName    string              `json:"policyName,omitempty"`
	ErrorType     string              `json:"errorType,omitempty"`
}

func (s *Server) correlationID() string {
	s.mu.Lock()
	s.nextCorr++
	n := s.nextCorr
	s.mu.Unlock()
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
}

func (s *Server) fail(w http.ResponseWriter, status int, category, message string, details []detail) {
	s.writeProblem(w, &problem{status: status, category: category, message: message, details: details})
}

func (s *Server) writeProblem(w http.ResponseWriter, p *problem) {
	writeJSON(w, p.status, errorBody{
		Status: "error", Message: p.message, CorrelationID: s.correlationID(),
		Category: p.category, Errors: p.details, Context: p.context,
	})
}

func (s *Server) rateLimited(w http.ResponseWriter, policy string) {
	msg := "You have reached your ten_secondly_rolling limit."
	if policy == "DAILY" {
		msg = "You have reached your daily limit."
	}
	writeJSON(w, http.StatusTooManyRequests, errorBody{
		Status: "error", Message: msg, CorrelationID: s.correlationID(),
		Category: "RATE_LIMITS", ErrorType: "RATE_LIMIT", PolicyName: policy,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return // the client went away
	}
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	return io.ReadAll(r.Body)
}

func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("empty body")
	}
	return json.Unmarshal(body, v)
}

// properties checks and converts input properties: scalars become strings,
// null becomes "" (which clears the property), arrays and objects are
// invalid, contacts' email must look like an address, enumeration
// properties (SetOptions) take only their options, and unknown properties
// are invalid when Options.Properties lists the type's.
func (s *Server) properties(typ string, in map[string]json.RawMessage) (map[string]string, *problem) {
	out := make(map[string]string, len(in))
	var bad []detail
	known := s.opts.Properties[typ]
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range in {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		raw := in[name]
		if known != nil && !slices.Contains(known, name) {
			bad = append(bad, detail{Message: fmt.Sprintf("Property %q does not exist", name), Code: "PROPERTY_DOESNT_EXIST", Context: map[string][]string{"propertyName": {name}}})
			continue
		}
		v, ok := scalar(raw)
		if !ok {
			bad = append(bad, detail{Message: fmt.Sprintf("Property %q must be a string, number or boolean", name), Code: "INVALID_PROPERTY_VALUE", Context: map[string][]string{"propertyName": {name}}})
			continue
		}
		if d := s.invalidOption(typ, name, v); d != nil {
			bad = append(bad, *d)
			continue
		}
		if typ == "contacts" && name == "email" && v != "" && !looksLikeEmail(v) {
			bad = append(bad, detail{Message: fmt.Sprintf("Email address %s is invalid", v), Code: "INVALID_EMAIL", Context: map[string][]string{"propertyName": {name}}})
			continue
		}
		out[name] = v
	}
	if len(bad) > 0 {
		msgs := make([]string, len(bad))
		for i, d := range bad {
			msgs[i] = d.Message
		}
		return nil, &problem{status: http.StatusBadRequest, category: "VALIDATION_ERROR",
			message: "Property values were not valid: " + strings.Join(msgs, "; "), details: bad}
	}
	return out, nil
}

func scalar(raw json.RawMessage) (string, bool) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", false
	}
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func looksLikeEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(v, " \t\n") && !strings.Contains(domain, "@")
}

// conflictProblem is HubSpot's answer to a duplicate unique value.
func conflictProblem(typ, existing string) *problem {
	return &problem{status: http.StatusConflict, category: "CONFLICT",
		message: fmt.Sprintf("%s already exists. Existing ID: %s", singular(typ), existing)}
}

func notFoundProblem(id string) *problem {
	return &problem{status: http.StatusNotFound, category: "OBJECT_NOT_FOUND",
		message: "Object not found.  objectId are usually numeric.", context: map[string][]string{"ids": {id}}}
}

func singular(typ string) string {
	switch typ {
	case "contacts":
		return "Contact"
	case "companies":
		return "Company"
	case "deals":
		return "Deal"
	}
	return "Object"
}
