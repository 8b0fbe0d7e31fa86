package hubspot

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// objectJSON is a record as the API returns it.
type objectJSON struct {
	ID         string            `json:"id"`
	Properties map[string]string `json:"properties"`
	CreatedAt  string            `json:"createdAt"`
	UpdatedAt  string            `json:"updatedAt"`
	Archived   bool              `json:"archived"`
	ArchivedAt string            `json:"archivedAt,omitempty"`
	New        *bool             `json:"new,omitempty"`
	TraceID    string            `json:"objectWriteTraceId,omitempty"`
}

// toJSON renders o with all its properties, or only those named in only.
func toJSON(o *Object, only []string) objectJSON {
	props := make(map[string]string, len(o.Properties))
	for k, v := range o.Properties {
		if only == nil || slices.Contains(only, k) {
			props[k] = v
		}
	}
	j := objectJSON{ID: o.ID, Properties: props, CreatedAt: stamp(o.CreatedAt), UpdatedAt: stamp(o.UpdatedAt), Archived: o.Archived}
	if o.Archived {
		j.ArchivedAt = j.UpdatedAt
	}
	return j
}

type singleInput struct {
	Properties map[string]json.RawMessage `json:"properties"`
}

func (s *Server) createOne(w http.ResponseWriter, typ string, body []byte) {
	var in singleInput
	if err := decode(body, &in); err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return
	}
	props, p := s.properties(typ, in.Properties)
	if p != nil {
		s.writeProblem(w, p)
		return
	}
	s.mu.Lock()
	if o := s.store.conflict(typ, "", props); o != nil {
		s.mu.Unlock()
		s.writeProblem(w, conflictProblem(typ, o.ID))
		return
	}
	out := toJSON(s.store.create(typ, props), nil)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// resolve finds a live record by id, or by a unique property value when
// idProperty is given.
func (s *Server) resolve(typ, id, idProperty string) (*Object, *problem) {
	if idProperty != "" && idProperty != "hs_object_id" {
		if s.opts.Unique[typ] != idProperty {
			return nil, &problem{status: http.StatusBadRequest, category: "VALIDATION_ERROR",
				message: "Property " + idProperty + " is not a unique identifier for " + typ}
		}
		if o := s.store.byUnique(typ, id); o != nil {
			return o, nil
		}
		return nil, notFoundProblem(id)
	}
	if o := s.store.get(typ, id); o != nil {
		return o, nil
	}
	return nil, notFoundProblem(id)
}

func (s *Server) getOne(w http.ResponseWriter, r *http.Request, typ, id string) {
	s.mu.Lock()
	o, p := s.resolve(typ, id, r.URL.Query().Get("idProperty"))
	var out objectJSON
	if p == nil {
		out = toJSON(o, propertyList(r))
	}
	s.mu.Unlock()
	if p != nil {
		s.writeProblem(w, p)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateOne(w http.ResponseWriter, r *http.Request, typ, id string, body []byte) {
	var in singleInput
	if err := decode(body, &in); err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return
	}
	props, p := s.properties(typ, in.Properties)
	if p != nil {
		s.writeProblem(w, p)
		return
	}
	s.mu.Lock()
	o, p := s.resolve(typ, id, r.URL.Query().Get("idProperty"))
	if p == nil {
		if c := s.store.conflict(typ, o.ID, props); c != nil {
			p = conflictProblem(typ, c.ID)
		}
	}
	var out objectJSON
	if p == nil {
		s.store.update(o, props)
		out = toJSON(o, nil)
	}
	s.mu.Unlock()
	if p != nil {
		s.writeProblem(w, p)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// archiveOne answers 204 whether or not the record exists.
func (s *Server) archiveOne(w http.ResponseWriter, typ, id string) {
	s.mu.Lock()
	if o := s.store.get(typ, id); o != nil {
		s.store.archive(o)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type listJSON struct {
	Results []objectJSON `json:"results"`
	Paging  *pagingJSON  `json:"paging,omitempty"`
}

type pagingJSON struct {
	Next struct {
		After string `json:"after"`
		Link  string `json:"link,omitempty"`
	} `json:"next"`
}

// list pages through the records in id order. limit defaults to 10 and is
// capped at 100; after is the cursor from paging.next.after; archived=true
// lists archived records instead of live ones.
func (s *Server) list(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be a positive integer", nil)
			return
		}
		limit = min(n, 100)
	}
	after := 0
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "after is not a valid cursor", nil)
			return
		}
		after = n
	}
	archived := q.Get("archived") == "true"
	only := propertyList(r)

	s.mu.Lock()
	var ids []int
	for id, o := range s.store.objects[typ] {
		n, _ := strconv.Atoi(id)
		if o.Archived == archived && n >= after {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	out := listJSON{Results: []objectJSON{}}
	for i, n := range ids {
		if i == limit {
			out.Paging = &pagingJSON{}
			out.Paging.Next.After = strconv.Itoa(n)
			break
		}
		out.Results = append(out.Results, toJSON(s.store.objects[typ][strconv.Itoa(n)], only))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// propertyList is the properties query parameter; nil means all.
func propertyList(r *http.Request) []string {
	v := r.URL.Query().Get("properties")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
