package hubspot

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Request is one call the server received.
type Request struct {
	Method string
	Path   string
	Query  string // raw query string
	Body   []byte
	// Status is the status answered; 0 when the server hung up or the
	// client left during a stall.
	Status int
	Fault  Fault // the injected fault, 0 for none
	At     time.Time
}

// Requests returns every call received so far, in the order they finished.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count429 is how many calls were answered 429, injected or not.
func (s *Server) Count429() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n429
}

// Objects returns the records of an object type, archived ones included,
// in id order.
func (s *Server) Objects(typ string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Object, 0, len(s.store.objects[typ]))
	for _, o := range s.store.objects[typ] {
		out = append(out, clone(o))
	}
	slices.SortFunc(out, func(a, b Object) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	return out
}

// Get returns one record, archived or not.
func (s *Server) Get(typ, id string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.store.objects[typ][id]
	if !ok {
		return Object{}, false
	}
	return clone(o), true
}

// Insert stores a record directly, as if made in HubSpot's UI (its
// webhooks say changeSource CRM_UI), and returns its id. It bypasses
// validation and unique checks.
func (s *Server) Insert(typ string, props map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.source = "CRM_UI"
	defer func() { s.store.source = "" }()
	return s.store.create(typ, maps.Clone(props)).ID
}

// Update changes a record directly, as if in HubSpot's UI: its
// properties and updatedAt move. It reports whether the record exists.
func (s *Server) Update(typ, id string, props map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.store.get(typ, id)
	if o == nil {
		return false
	}
	s.store.source = "CRM_UI"
	defer func() { s.store.source = "" }()
	s.store.update(o, maps.Clone(props))
	return true
}

// Advance moves the server's clock d ahead of the later of now and its
// last stamp: the next write's updatedAt is at least that late.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if s.store.last.After(now) {
		now = s.store.last
	}
	s.store.last = now.Add(d)
}

// Writes returns every write applied so far, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.store.writes)
}

// History returns the writes applied to one record, in order.
func (s *Server) History(typ, id string) []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Write
	for _, w := range s.store.writes {
		if w.Type == typ && w.ID == id {
			out = append(out, w)
		}
	}
	return out
}
