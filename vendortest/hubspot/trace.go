package hubspot

// TraceIDs says which batch answers echo objectWriteTraceId.
type TraceIDs int

const (
	// TraceIDsEcho echoes every input's trace id in its result or error
	// context, as the date-versioned reference shows.
	TraceIDsEcho TraceIDs = iota
	// TraceIDsOmit echoes none, as the v3 batch reference shows results:
	// a client must match results by id or property values. Errors of
	// inputs with an id (update, upsert) list it in context.ids; errors
	// of creates carry no context.
	TraceIDsOmit
	// TraceIDsSome echoes a random half of them, picked from Options.Seed.
	TraceIDsSome
)

// echoTrace reports whether the next result or error carries its trace
// id. The caller holds s.mu.
func (s *Server) echoTrace() bool {
	switch s.opts.TraceIDs {
	case TraceIDsOmit:
		return false
	case TraceIDsSome:
		return s.rng.IntN(2) == 0
	}
	return true
}
