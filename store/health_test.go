package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The latest transition of each subject is what a restart takes up, and
// pruning never deletes it, however old.
func TestHealthTransitionsLastAndPrune(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	execSQL(t, url, `INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, figures, at) VALUES
		('pipeline', 'a', 'degraded', 'ok', 'r1', '{}', $1),
		('pipeline', 'a', 'unhealthy', 'degraded', 'r2', '{}', $1::timestamptz + interval '1 minute'),
		('pipeline', 'b', 'degraded', 'ok', 'r3', '{"backlog": 3}', $1)`, old)
	last, err := s.LastHealthStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last["pipeline/a"].State != "unhealthy" || last["pipeline/b"].Figures["backlog"] != 3.0 {
		t.Errorf("last states %+v, want a unhealthy, b with its figures", last)
	}
	n, err := s.PruneHealth(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1: a's older transition", n, err)
	}
	ts, err := s.HealthTransitions(ctx, 10)
	if err != nil || len(ts) != 2 {
		t.Fatalf("left %d (%v), want each subject's latest", len(ts), err)
	}
	c, err := s.HealthCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DeadLetters) != 0 {
		t.Errorf("dead letters %v, want none", c.DeadLetters)
	}
}

// The status page's jobs: those in progress first, then those finished in
// the last day; a job failed in the last day counts for the jobs rule.
func TestJobsInProgressAndFailedJobs(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO cdcd.jobs (kind, pipeline, status, total, processed, finished_at, updated_at) VALUES
		('backfill', 'a', 'done', 10, 10, now() - interval '2 hours', now() - interval '2 hours'),
		('export', 'b', 'running', 100, 40, NULL, now()),
		('import', 'c', 'failed', NULL, 5, now() - interval '1 hour', now() - interval '1 hour'),
		('backfill', 'd', 'failed', NULL, 5, now() - interval '3 days', now() - interval '3 days')`); err != nil {
		t.Fatal(err)
	}
	js, err := s.JobsInProgress(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 3 || js[0].Status != "running" || js[0].Processed != 40 || *js[0].Total != 100 {
		t.Errorf("jobs %+v, want the running export first, then the two finished today", js)
	}
	c, err := s.HealthCounts(ctx)
	if err != nil || c.FailedJobs != 1 {
		t.Errorf("failed jobs %d (%v), want 1: the one of three days ago is past", c.FailedJobs, err)
	}
}

// Pruning goes through a backlog larger than one chunk, each chunk in its
// own statement, and keeps every subject's latest transition.
func TestPruneHealthInChunks(t *testing.T) {
	s, url := openStore(t)
	execSQL(t, url, `INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, at)
		SELECT 'pipeline', 'a', 'ok', 'degraded', 'recovered', now() - interval '2 days' - g * interval '1 second'
		FROM generate_series(1, $1::int) g`, pruneChunk+10)
	execSQL(t, url, `INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, at)
		VALUES ('pipeline', 'b', 'ok', 'degraded', 'recovered', now() - interval '2 days')`)
	n, err := s.PruneHealth(context.Background(), time.Hour)
	if err != nil || n != pruneChunk+9 {
		t.Fatalf("pruned %d (%v), want %d: all of a's but its latest, none of b's", n, err, pruneChunk+9)
	}
	ts, err := s.HealthTransitions(context.Background(), 10)
	if err != nil || len(ts) != 2 {
		t.Fatalf("left %d (%v), want each subject's latest", len(ts), err)
	}
}

// Transitions are of the worst state any process reports: one process
// finding a pipeline ok does not resolve what another finds failing; a
// failing report that lapses (its process killed) or is withdrawn
// (stopped) leaves the state to the others; repeating a state stores
// nothing; a lasting bad state is reminded.
func TestReportHealthMergesProcesses(t *testing.T) {
	t.Parallel()
	s, url := openStore(t)
	ctx := context.Background()
	rep := func(state string) []HealthReport {
		return []HealthReport{{Kind: "pipeline", Name: "p", State: state, Reason: state + " here", Since: time.Now()}}
	}
	report := func(who string, ttl time.Duration, state string) []string {
		t.Helper()
		ts, err := s.ReportHealth(ctx, who, ttl, 0, rep(state))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tr := range ts {
			out = append(out, tr.Kind+" "+tr.Name+" "+tr.Previous+">"+tr.State)
		}
		return out
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("transitions %q, want %q", got, want)
		}
	}
	want(report("a", time.Minute, "ok"))
	want(report("b", time.Minute, "degraded"), "pipeline p ok>degraded")
	want(report("a", time.Minute, "ok"))
	want(report("b", time.Minute, "degraded"))
	want(report("c", time.Minute, "unhealthy"), "pipeline p degraded>unhealthy")
	if err := s.WithdrawHealth(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	want(report("a", time.Minute, "ok"), "pipeline p unhealthy>degraded")
	// b is killed: its report lapses, and a's ok is what is left.
	want(report("b", time.Millisecond, "degraded"))
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for len(got) == 0 && time.Now().Before(deadline) {
		got = report("a", time.Minute, "ok")
	}
	want(got, "pipeline p degraded>ok")

	want(report("a", time.Minute, "degraded"), "pipeline p ok>degraded")
	execSQL(t, url, `UPDATE cdcd.health_transitions SET notified_at = now() - interval '2 hours'`)
	if _, err := s.ReportHealth(ctx, "a", time.Minute, time.Hour, rep("degraded")); err != nil {
		t.Fatal(err)
	}
	var reminded int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM cdcd.health_transitions WHERE notified_at > now() - interval '1 minute'`).Scan(&reminded); err != nil {
		t.Fatal(err)
	}
	if reminded != 1 {
		t.Errorf("%d transitions reminded, want the latest of the lasting degraded state", reminded)
	}
}
