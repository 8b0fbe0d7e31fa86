package daemon

import (
	"context"
	"slices"

	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/statuspage"
)

// healthTable is where transitions are stored; a config that captures it
// (to alert from it) needs cdcd's store even without a vendor writer.
const healthTable = "cdcd.health_transitions"

// buildHealth makes the health monitor of what this process runs (its
// pipelines pls, the capture), the status page at / and GET /api/status,
// and the health line of /readyz.
func (d *Daemon) buildHealth(ctx context.Context, pls []pipeline) error {
	if d.store == nil && slices.Contains(d.cfg.Postgres.Tables, healthTable) {
		if _, err := d.openStore(ctx); err != nil {
			return err
		}
	}
	hp := make([]health.Pipeline, 0, len(pls))
	for _, p := range pls {
		system := p.system
		if p.inbound {
			system = p.from.Schema // an inbound pipeline's system, as its events name it
		}
		hp = append(hp, health.Pipeline{Name: p.name, System: system})
	}
	var (
		journal health.Journal
		history statuspage.History
	)
	if d.store != nil {
		journal, history = d.store, d.store
	}
	m, err := health.New(d.cfg.Health, hp, d.metrics, journal, d.log, d.metrics)
	if err != nil {
		return err
	}
	d.runs(m.Run)
	d.server.Note("health", m.Ready)
	tokens := statuspage.Tokens{Admin: d.cfg.HTTP.AdminToken, Read: d.cfg.HTTP.ReadToken}
	statuspage.New(tokens, m, history, 0, d.log).Mount(d.server.Handle)
	return nil
}
