package daemon

import (
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

// buildJobs runs the jobs this daemon has handlers for: imports of its
// inbound pipelines whose system lists records, handed to the intake.
// The runner claims queued jobs (cdcd import, POST /api/jobs) and those
// whose runner died, from their saved cursor.
func (d *Daemon) buildJobs(in intake) {
	if len(d.imports) == 0 || d.store == nil {
		return
	}
	r := jobs.NewRunner(jobs.NewStore(d.store.Pool()), jobs.RunnerConfig{}, d.log, d.metrics)
	r.Handle(imports.Kind, &imports.Handler{Sources: d.imports, Intake: in.acceptor, Log: d.log})
	d.runs(r.Run)
}
