// Package jobs runs cdcd's long jobs (backfills, exports, imports) as rows
// of cdcd.jobs that survive restarts and never run twice at once.
//
// A job is created queued (Store.Create). A Runner, one per cdcd process,
// claims queued jobs of the kinds it has a Handler for, and jobs whose
// lease lapsed because the cdcd running them died; it renews the lease
// while the Handler runs. Several processes may run Runners on one
// database: a claim takes the row with FOR UPDATE SKIP LOCKED, so exactly
// one of them gets it, and every write of progress is fenced by the owner,
// so a process that lost its lease stops instead of writing over the new
// owner's progress.
//
// A Handler runs the jobs of one kind:
//
//	type Handler interface {
//		Run(ctx context.Context, job *Job, p Progress) error
//	}
//
// and keeps this contract:
//   - Run starts from job.Cursor (nil on a first run) and processes the job
//     in chunks or pages. After each one is durable downstream it calls
//     p.Save with the cursor to go on from and the records it processed.
//     A crash between a chunk's delivery and its Save repeats that chunk
//     alone, so a handler's writes must be idempotent per chunk.
//   - ctx ends when the job is cancelled, paused, its lease is lost or the
//     process stops; Run then returns promptly (ctx.Err() or nil). Save
//     returns ErrLost once the job is no longer this runner's.
//   - Run returns nil when the job is done, or an error that fails it; the
//     error text is kept in cdcd.jobs.error and an operator may resume the
//     job from its cursor. Per-record failures do not fail a job: the
//     handler records them with p.RecordError and goes on. A record an
//     import handed over and its pipeline dead-lettered is counted by the
//     dead-letter store (jobs/failures, the one writer of job_errors).
//
// Register handlers with Runner.Handle before Runner.Run; a kind without a
// handler in this process stays queued for a process that has one, and so
// does a job of a pipeline its kind's handler does not have (Scoper).
package jobs
