// Package salesforce is a test double of the Salesforce REST API: the OAuth
// token endpoint (client credentials and JWT bearer), sObject rows by
// external id, sObject Collections upsert, deletes by id, SOQL queries,
// Bulk API 2.0 query jobs (bulk.go), expiring sessions, the daily API
// allocation, and seeded faults. It records every
// request, with its Sforce-Call-Options header, and stores records in
// memory for tests to inspect.
//
// Error shapes follow the documentation: a failed call answers a JSON
// array of {message, errorCode, fields}; a failed record in a collection
// answers {success: false, errors: [{statusCode, message, fields}]}; a
// token request answers {error, error_description}.
package salesforce

import (
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// ClientID is the connected app's consumer key, for both flows;
	// ClientSecret its secret, for client credentials.
	ClientID, ClientSecret string
	// JWTKey verifies JWT bearer assertions (RS256); nil refuses the flow.
	// Username is the required sub claim, Audience the aud claim (default
	// "https://login.salesforce.com").
	JWTKey   *rsa.PublicKey
	Username string
	Audience string
	// TokenTTL, when set, expires sessions that long after issue.
	TokenTTL time.Duration
	// DailyLimit, when set, is the API calls allowed (token requests not
	// counted); later calls answer 403 REQUEST_LIMIT_EXCEEDED.
	DailyLimit int
	// Required names, per sObject type, fields a record must have once
	// written (REQUIRED_FIELD_MISSING otherwise).
	Required map[string][]string
	// Objects are the sObject types that exist, besides Account, Contact,
	// Lead and Opportunity and any type given records; a call naming
	// another type answers 404 NOT_FOUND, as an unknown object does.
	Objects []string
	// ExternalIDs, when set for a type, are its only external id fields:
	// a call by another field answers 404 NOT_FOUND "Provided external
	// ID field does not exist or is not accessible".
	ExternalIDs map[string][]string
	// DateFields are, per type, date fields: a value that is not
	// YYYY-MM-DD (a timestamp) makes the whole request fail with 400
	// JSON_PARSER_ERROR, in a collection too.
	DateFields map[string][]string
	// Hidden are, per type, fields field-level security hides from the
	// integration user: writing one fails the whole request with 400
	// INVALID_FIELD "No such column".
	Hidden map[string][]string
	// QueryBatch is the records a query answers at once, the rest behind
	// nextRecordsUrl. Default 2000, Salesforce's.
	QueryBatch int
	// ExpireLocators makes every nextRecordsUrl invalid by the time it is
	// used, as Salesforce's are after 15 minutes unused.
	ExpireLocators bool
	// BulkPolls is how many reads of a Bulk API 2.0 query job find it
	// InProgress before it is JobComplete (its results are refused until
	// then).
	BulkPolls int
	Faults    Faults
}

// Faults injects failures into a seeded fraction of authenticated API
// calls: a 503 SERVER_UNAVAILABLE or a 429 (Retry-After: 0.01) without
// effect, or a timeout after the call was applied (the response is held
// until the client gives up or Hang passes).
type Faults struct {
	Seed                      uint64
	Rate5xx, Rate429, Timeout float64
	Hang                      time.Duration // default 10s
}

// Request is one request the server received.
type Request struct {
	Method, Path, RawQuery string
	// CallOptions is the Sforce-Call-Options header.
	CallOptions string
	Body        []byte
	Status      int    // 0 for a timeout
	Fault       string // "", "5xx", "429" or "timeout"
}

// Server is a running double. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu          sync.Mutex
	rng         *rand.Rand
	tokens      map[string]time.Time // access token → expiry (zero: none)
	issued      int
	calls       int
	nextID      int
	records     map[string]map[string]map[string]any // type → id → fields
	recordErrs  map[string][]recordErr               // type/ext value → queued errors
	callErrs    []callErr                            // failures of the next API calls
	deleted     map[string]bool                      // ids in the recycle bin
	locators    map[string]*cursor                   // open queries by locator
	nextLocator int
	bulkJobs    map[string]*bulkJob // Bulk API 2.0 query jobs by id
	bulkCreated int
	requests    []Request
}

type callErr struct {
	status    int
	code, msg string
}

type recordErr struct{ code, msg string }

// New starts a server that closes when t ends.
func New(t testing.TB, opts Options) *Server {
	if opts.Audience == "" {
		opts.Audience = "https://login.salesforce.com"
	}
	if opts.Faults.Hang == 0 {
		opts.Faults.Hang = 10 * time.Second
	}
	s := &Server{
		opts:       opts,
		rng:        rand.New(rand.NewPCG(opts.Faults.Seed, opts.Faults.Seed+1)),
		tokens:     map[string]time.Time{},
		records:    map[string]map[string]map[string]any{},
		recordErrs: map[string][]recordErr{},
		deleted:    map[string]bool{},
		locators:   map[string]*cursor{},
		bulkJobs:   map[string]*bulkJob{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// ExpireTokens ends every session issued so far: their next call answers
// 401 INVALID_SESSION_ID.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokensIssued is how many access tokens the token endpoint issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Insert stores a record of typ and returns its id. It checks nothing, so
// tests can seed records that share an external id.
func (s *Server) Insert(typ string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insert(typ, clone(fields))
}

// FailRecord makes the next write of the typ record whose external id is
// value fail with errorCode and message, inside a collection or alone.
func (s *Server) FailRecord(typ, value, errorCode, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := typ + "/" + value
	s.recordErrs[k] = append(s.recordErrs[k], recordErr{errorCode, message})
}

// FailCalls makes the next n authenticated API calls fail as a whole with
// status and a body [{errorCode, message}], applying nothing: call-level
// UNABLE_TO_LOCK_ROW (400), the concurrent long-running request limit
// (403 REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn Limit exceeded.").
func (s *Server) FailCalls(n, status int, errorCode, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.callErrs = append(s.callErrs, callErr{status, errorCode, message})
	}
}

// Records returns a copy of the stored records of typ, by id.
func (s *Server) Records(typ string) map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]any{}
	for id, r := range s.records[typ] {
		out[id] = clone(r)
	}
	return out
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// insert stores fields as a new record; s.mu is held.
func (s *Server) insert(typ string, fields map[string]any) string {
	s.nextID++
	id := fmt.Sprintf("%s5g%010dAAA", keyPrefix(typ), s.nextID)
	fields["Id"] = id
	if s.records[typ] == nil {
		s.records[typ] = map[string]map[string]any{}
	}
	s.records[typ][id] = fields
	return id
}

// keyPrefix is the id prefix of an sObject type.
func keyPrefix(typ string) string {
	switch typ {
	case "Account":
		return "001"
	case "Contact":
		return "003"
	case "Lead":
		return "00Q"
	case "Opportunity":
		return "006"
	}
	return "a0X"
}
