package daemon

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcd-dev/cdcd/backfill"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

// buildJobs runs the jobs this daemon has handlers for: backfills and
// exports where the reader streams (their rows join its stream through
// the merger), imports of its inbound pipelines whose system lists
// records, handed to the intake. The runner claims queued jobs (cdcd
// backfill, export and import, POST /api/jobs) and those whose runner
// died, from their saved cursor. The jobs API is served wherever the
// store is open.
func (d *Daemon) buildJobs(ctx context.Context, in intake) error {
	backfills := d.reader != nil
	imported := d.role != RoleCapture && len(d.imports) > 0
	if !backfills && !imported && d.store == nil {
		return nil
	}
	st, err := d.openStore(ctx)
	if err != nil {
		return err
	}
	js := jobs.NewStore(st.Pool())
	r := jobs.NewRunner(js, jobs.RunnerConfig{Lease: d.cfg.Jobs.Lease, Concurrency: d.cfg.Jobs.Concurrency}, d.log, d.metrics)
	if backfills {
		rereads := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_backfill_chunk_rereads_total",
			Help: "Backfill chunks read again because their snapshot missed a transaction the stream passed before their low watermark.",
		})
		d.metrics.MustRegister(rereads)
		merger := d.merger
		d.metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cdcd_backfill_chunk_missed_commits_total",
			Help: "Backfill chunks whose snapshot missed a transaction the stream passed before their low watermark, and which dropped its keys instead of being read again.",
		}, func() float64 { return float64(merger.Patched()) }))
		reused := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcd_backfill_chunk_memory_reused_total",
			Help: "Backfill chunks whose memory the chunks read after them reused, every sink of their pipelines forgetting their rows once delivered.",
		})
		d.metrics.MustRegister(reused)
		h := &backfill.Handler{URL: d.cfg.Postgres.URL, Merger: d.merger, Streaming: d.reader.Streaming, ChunkSize: d.cfg.Jobs.ChunkSize,
			Reuse: d.forgets, Reused: reused, Rereads: rereads, Log: d.log}
		r.Handle(backfill.KindBackfill, h)
		r.Handle(backfill.KindExport, h)
		if err := d.initialSnapshots(ctx, js); err != nil {
			return err
		}
	}
	if imported {
		r.Handle(imports.Kind, &imports.Handler{Sources: d.imports, Intake: in.acceptor, Log: d.log})
	}
	(&jobsAPI{cfg: d.cfg, store: js, log: d.log, wake: r.Wake, start: d.importSpec}).mount(d.admin)
	d.runs(r.Run)
	return nil
}

// importSpec is the job POST /api/jobs creates for kind import.
func (d *Daemon) importSpec(req backfill.Request) (jobs.Spec, error) {
	if req.Kind != imports.Kind {
		return jobs.Spec{}, fmt.Errorf("job kind %q: want backfill, export or import", req.Kind)
	}
	if req.Table != "" || req.Where != "" {
		return jobs.Spec{}, fmt.Errorf("an import takes a pipeline only: it brings every record of the system, so table and where do not apply")
	}
	if _, ok := d.imports[req.Pipeline]; !ok {
		return jobs.Spec{}, fmt.Errorf("pipeline %q is not an inbound pipeline whose system lists records", req.Pipeline)
	}
	return jobs.Spec{Kind: imports.Kind, Pipeline: req.Pipeline, RequestedBy: req.By}, nil
}

// initialSnapshots queues, once per pipeline, the backfill of each
// pipeline with snapshot: initial.
func (d *Daemon) initialSnapshots(ctx context.Context, js *jobs.Store) error {
	for _, p := range d.cfg.Pipelines {
		if p.Snapshot != "initial" || d.cfg.IsInbound(p) {
			continue
		}
		spec, err := backfill.NewSpec(d.cfg, backfill.Request{Kind: backfill.KindBackfill, Pipeline: p.Name, By: "config:snapshot"})
		if err != nil {
			return configError(err)
		}
		j, created, err := js.CreateOnce(ctx, spec)
		if err != nil {
			return err
		}
		if created {
			d.log.Info().Int64("job", j.ID).Str("pipeline", p.Name).Msg("initial snapshot queued")
		}
	}
	return nil
}
