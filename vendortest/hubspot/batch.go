package hubspot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MaxBatch is the most inputs one batch call accepts.
const MaxBatch = 100

type batchInput struct {
	ID         string                     `json:"id"`
	IDProperty string                     `json:"idProperty"`
	Properties map[string]json.RawMessage `json:"properties"`
	TraceID    string                     `json:"objectWriteTraceId"`
}

type batchJSON struct {
	Status      string           `json:"status"`
	Results     []objectJSON     `json:"results"`
	Errors      []batchErrorJSON `json:"errors,omitempty"`
	NumErrors   int              `json:"numErrors,omitempty"`
	StartedAt   string           `json:"startedAt"`
	CompletedAt string           `json:"completedAt"`
}

type batchErrorJSON struct {
	Status   string              `json:"status"`
	Category string              `json:"category"`
	Message  string              `json:"message"`
	Context  map[string][]string `json:"context,omitempty"`
	Errors   []detail            `json:"errors,omitempty"`
}

// item is one batch input on its way through a call.
type item struct {
	in      batchInput
	props   map[string]string
	target  *Object // the record an update or upsert changes; nil creates
	problem *problem
}

// batch serves {type}/batch/{read,create,update,upsert,archive}.
//
// Not-found inputs fail alone (207). Other per-input problems (validation,
// conflicts) fail alone only when every input carries a distinct
// objectWriteTraceId; otherwise the whole call fails and nothing applies.
func (s *Server) batch(w http.ResponseWriter, typ, op string, body []byte) {
	if op == "read" {
		s.batchRead(w, typ, body)
		return
	}
	if op != "create" && op != "update" && op != "upsert" && op != "archive" {
		s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "No batch operation "+op, nil)
		return
	}
	var req struct {
		Inputs []batchInput `json:"inputs"`
	}
	if err := decode(body, &req); err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return
	}
	if len(req.Inputs) > MaxBatch {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR",
			fmt.Sprintf("Too many inputs: %d. The maximum is %d.", len(req.Inputs), MaxBatch), nil)
		return
	}
	if op == "archive" {
		s.mu.Lock()
		for _, in := range req.Inputs {
			if o := s.store.get(typ, in.ID); o != nil {
				s.store.archive(o)
			}
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if p := s.checkInputs(typ, op, req.Inputs); p != nil {
		s.writeProblem(w, p)
		return
	}
	started := time.Now()
	items := make([]item, len(req.Inputs))
	for i, in := range req.Inputs {
		items[i].in = in
		items[i].props, items[i].problem = s.properties(typ, in.Properties)
		if op == "upsert" && items[i].problem == nil {
			items[i].props[in.IDProperty] = in.ID
		}
	}
	multi := distinctTraceIDs(req.Inputs) && !s.opts.WholeBatchErrors

	s.mu.Lock()
	s.plan(typ, op, items)
	for _, it := range items {
		if p := it.problem; p != nil && p.category != "OBJECT_NOT_FOUND" && !multi {
			s.mu.Unlock()
			s.writeProblem(w, p)
			return
		}
	}
	out := batchJSON{Status: "COMPLETE", Results: []objectJSON{}, StartedAt: stamp(started)}
	for _, it := range items {
		if it.problem != nil {
			out.Errors = append(out.Errors, s.batchError(it))
			continue
		}
		var res objectJSON
		if it.target == nil {
			res = toJSON(s.store.create(typ, it.props), nil)
		} else {
			s.store.update(it.target, it.props)
			res = toJSON(it.target, nil)
		}
		if op == "upsert" {
			isNew := it.target == nil
			res.New = &isNew
		}
		if s.echoTrace() {
			res.TraceID = it.in.TraceID
		}
		out.Results = append(out.Results, res)
	}
	s.rng.Shuffle(len(out.Results), func(i, j int) { out.Results[i], out.Results[j] = out.Results[j], out.Results[i] })
	s.rng.Shuffle(len(out.Errors), func(i, j int) { out.Errors[i], out.Errors[j] = out.Errors[j], out.Errors[i] })
	s.mu.Unlock()

	out.CompletedAt = stamp(time.Now())
	out.NumErrors = len(out.Errors)
	status := http.StatusOK
	switch {
	case out.NumErrors > 0:
		status = http.StatusMultiStatus
	case op == "create":
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

// checkInputs rejects calls HubSpot refuses as a whole: missing ids,
// upserts on a property that is not unique, and repeated ids.
func (s *Server) checkInputs(typ, op string, inputs []batchInput) *problem {
	if op == "create" {
		return nil
	}
	seen := map[string]bool{}
	var dups []string
	for _, in := range inputs {
		if in.ID == "" {
			return &problem{status: http.StatusBadRequest, category: "VALIDATION_ERROR", message: "Every input needs an id"}
		}
		if op == "upsert" && (in.IDProperty == "" || s.opts.Unique[typ] != in.IDProperty) {
			return &problem{status: http.StatusBadRequest, category: "VALIDATION_ERROR",
				message: fmt.Sprintf("Property %q is not a unique identifier for %s", in.IDProperty, typ)}
		}
		key := in.ID
		if op == "upsert" {
			key = strings.ToLower(key)
		}
		if seen[key] {
			dups = append(dups, in.ID)
		}
		seen[key] = true
	}
	if len(dups) > 0 {
		return &problem{status: http.StatusBadRequest, category: "VALIDATION_ERROR",
			message: fmt.Sprintf("Duplicate IDs found in batch input: %v", dups)}
	}
	return nil
}

// plan finds each item's target and its conflicts, applying nothing.
func (s *Server) plan(typ, op string, items []item) {
	claimed := map[string]bool{} // unique values the batch sets
	unique := s.opts.Unique[typ]
	for i := range items {
		it := &items[i]
		if it.problem != nil {
			continue
		}
		switch op {
		case "update":
			it.target, it.problem = s.resolve(typ, it.in.ID, it.in.IDProperty)
		case "upsert":
			it.target = s.store.byUnique(typ, it.in.ID)
		}
		if it.problem != nil {
			continue
		}
		id := ""
		if it.target != nil {
			id = it.target.ID
		}
		if c := s.store.conflict(typ, id, it.props); c != nil {
			it.problem = conflictProblem(typ, c.ID)
			continue
		}
		if v := strings.ToLower(it.props[unique]); unique != "" && v != "" {
			if claimed[v] {
				it.problem = &problem{status: http.StatusConflict, category: "CONFLICT",
					message: fmt.Sprintf("Duplicate value of unique property %s in batch input", unique)}
				continue
			}
			claimed[v] = true
		}
	}
}

// batchError is one input's error; its context names the input by trace
// id when the server echoes it, else by id (none for creates).
func (s *Server) batchError(it item) batchErrorJSON {
	ctx := map[string][]string{}
	switch {
	case it.in.TraceID != "" && s.echoTrace():
		ctx["objectWriteTraceId"] = []string{it.in.TraceID}
	case it.in.ID != "":
		ctx["ids"] = []string{it.in.ID}
	}
	return batchErrorJSON{Status: "error", Category: it.problem.category, Message: it.problem.message, Context: ctx, Errors: it.problem.details}
}

func distinctTraceIDs(inputs []batchInput) bool {
	seen := make(map[string]bool, len(inputs))
	for _, in := range inputs {
		if in.TraceID == "" || seen[in.TraceID] {
			return false
		}
		seen[in.TraceID] = true
	}
	return true
}

// batchRead serves {type}/batch/read: the records of the input ids, or of
// the values of a unique idProperty, with the asked properties; unknown
// ids fail alone (207). Results do not say which input they answer.
func (s *Server) batchRead(w http.ResponseWriter, typ string, body []byte) {
	var req struct {
		Inputs     []batchInput `json:"inputs"`
		Properties []string     `json:"properties"`
		IDProperty string       `json:"idProperty"`
	}
	if err := decode(body, &req); err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return
	}
	if len(req.Inputs) > MaxBatch {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR",
			fmt.Sprintf("Too many inputs: %d. The maximum is %d.", len(req.Inputs), MaxBatch), nil)
		return
	}
	started := time.Now()
	out := batchJSON{Status: "COMPLETE", Results: []objectJSON{}, StartedAt: stamp(started)}
	s.mu.Lock()
	for _, in := range req.Inputs {
		o, p := s.resolve(typ, in.ID, req.IDProperty)
		if p != nil && p.category != "OBJECT_NOT_FOUND" {
			s.mu.Unlock()
			s.writeProblem(w, p)
			return
		}
		if o == nil || o.Archived {
			out.Errors = append(out.Errors, batchErrorJSON{Status: "error", Category: "OBJECT_NOT_FOUND",
				Message: "Could not get some " + typ + " objects, they may be deleted or not exist.", Context: map[string][]string{"ids": {in.ID}}})
			continue
		}
		out.Results = append(out.Results, toJSON(o, req.Properties))
	}
	s.rng.Shuffle(len(out.Results), func(i, j int) { out.Results[i], out.Results[j] = out.Results[j], out.Results[i] })
	s.mu.Unlock()
	out.CompletedAt = stamp(time.Now())
	out.NumErrors = len(out.Errors)
	status := http.StatusOK
	if out.NumErrors > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, out)
}
