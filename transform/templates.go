package transform

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// checkTemplates renders the templates of the system each pipeline writes
// to over a sample record of the pipeline's mapping, and reports at the
// template's path every field the record cannot hold. Without a map, the
// record's fields are the table's columns, which only --check-db knows:
// then only what no record holds (a typo like .ID) is reported.
func checkTemplates(cfg *config.Config) []error {
	var errs []error
	for _, p := range cfg.Pipelines {
		s := cfg.Systems[p.To]
		if s == nil {
			continue
		}
		tc, ok := s.Config.(config.TemplateChecker)
		if !ok {
			continue
		}
		rec := sampleRecord(p)
		for _, fe := range tc.CheckTemplates(rec) {
			if len(p.Map) == 0 && strings.Contains(fe.Msg, "map has no entry for key") {
				continue
			}
			msg := fmt.Sprintf("%s: no record of pipeline %q holds it", fe.Msg, p.Name)
			if len(p.Map) > 0 {
				msg += fmt.Sprintf(" (its fields: %s)", strings.Join(slices.Sorted(maps.Keys(p.Map)), ", "))
			}
			errs = append(errs, config.FieldError{Path: "systems." + p.To + "." + fe.Path, Msg: msg})
		}
	}
	return errs
}

// sampleRecord is a record of p with every mapped field set to a
// placeholder, dotted targets nested.
func sampleRecord(p *config.Pipeline) *syncapi.Record {
	fields := map[string]any{}
	for target := range p.Map {
		m := fields
		parts := strings.Split(target, ".")
		for _, part := range parts[:len(parts)-1] {
			next, ok := m[part].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[part] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = "sample"
	}
	schema, table, _ := strings.Cut(p.From, ".")
	return &syncapi.Record{
		Event: &cdc.Event{Op: cdc.OpUpdate, Schema: schema, Table: table, Pos: cdc.Position{CommitLSN: 1}},
		Op:    cdc.OpUpdate, Object: p.Object, Key: `{"id":1}`, ExternalID: "sample-id", Fields: fields,
	}
}
