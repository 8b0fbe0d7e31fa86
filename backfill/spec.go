package backfill

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/jobs"
)

// Request is what starts a backfill or an export, from the command line
// or POST /api/jobs.
type Request struct {
	Kind     string `json:"kind"`
	Pipeline string `json:"pipeline,omitempty"`
	Table    string `json:"table,omitempty"`
	Where    string `json:"where,omitempty"`
	By       string `json:"by,omitempty"`
}

// ErrKind marks a request of a kind other than backfill and export.
var ErrKind = errors.New("not a backfill or an export")

// NewSpec checks a request against the config and returns the job to
// create: a backfill of one pipeline (with an optional where clause), of
// every pipeline of a table, or an export to one system's pipeline.
func NewSpec(cfg *config.Config, req Request) (jobs.Spec, error) {
	spec := jobs.Spec{Kind: req.Kind, Pipeline: req.Pipeline, RequestedBy: req.By}
	params := Params{Where: strings.TrimSpace(req.Where)}
	switch req.Kind {
	case KindBackfill, KindExport:
	default:
		return spec, fmt.Errorf("job kind %q: %w", req.Kind, ErrKind)
	}
	switch {
	case req.Pipeline != "" && req.Table != "":
		return spec, errors.New("name a pipeline or a table, not both")
	case req.Pipeline != "":
		p := findPipeline(cfg, req.Pipeline)
		if p == nil {
			return spec, fmt.Errorf("no pipeline %q in the config", req.Pipeline)
		}
		if cfg.IsInbound(p) {
			return spec, fmt.Errorf("pipeline %q takes changes from %s, not from a table: an import fills its table", p.Name, p.From)
		}
		if _, system := cfg.Systems[p.To]; req.Kind == KindExport && !system {
			return spec, fmt.Errorf("pipeline %q writes to %s, not to a system: use backfill", p.Name, p.To)
		}
		params.Table, params.Pipelines = p.From, []string{p.Name}
	case req.Table != "":
		if req.Kind == KindExport {
			return spec, errors.New("an export fills one pipeline: name it")
		}
		params.Table = req.Table
		for _, p := range cfg.Pipelines {
			if !cfg.IsInbound(p) && p.From == req.Table {
				params.Pipelines = append(params.Pipelines, p.Name)
			}
		}
		if len(params.Pipelines) == 0 {
			return spec, fmt.Errorf("no pipeline reads from table %s", req.Table)
		}
	default:
		return spec, errors.New("name the pipeline to fill, or a table (--table) for all its pipelines")
	}
	spec.Params = params
	return spec, nil
}

func findPipeline(cfg *config.Config, name string) *config.Pipeline {
	for _, p := range cfg.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}
