package jobs

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
)

var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

// newStore returns a Store on a new database with cdcd's migrations.
func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := pg.DB(t, "jobs")
	ctx := context.Background()
	st, err := store.Open(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pool, err := newPool(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return NewStore(pool), pool
}

func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) { return pgxpool.New(ctx, url) }

// startRunner runs r until the test ends.
func startRunner(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func testRunner(t *testing.T, s *Store, owner string) *Runner {
	return NewRunner(s, RunnerConfig{Owner: owner, Lease: 900 * time.Millisecond, Poll: 50 * time.Millisecond}, zerolog.New(zerolog.NewTestWriter(t)), nil)
}

// waitStatus polls until job id has status want.
func waitStatus(t *testing.T, s *Store, id int64, want Status) *Job {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d is %s (error %q), want %s", id, j.Status, j.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
