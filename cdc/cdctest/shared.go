package cdctest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Shared is one Postgres server for a whole test package, started on
// first use; each test takes a database of its own. TestMain calls
// Destroy once the tests ran.
type Shared struct {
	// Settings are passed to NewPostgres.
	Settings []string

	once sync.Once
	pg   *Postgres
	err  error
	seq  atomic.Int64
}

// DB creates a new, empty database named prefix_<n> and returns its URL.
func (s *Shared) DB(t testing.TB, prefix string) string {
	t.Helper()
	s.once.Do(func() { s.pg, s.err = NewPostgres(s.Settings...) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.pg.CreateDB(t, fmt.Sprintf("%s_%d", prefix, s.seq.Add(1)))
}

// Destroy stops the server, if it was started.
func (s *Shared) Destroy() {
	if s.pg != nil {
		s.pg.Destroy()
	}
}
