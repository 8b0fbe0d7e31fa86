// Package threeway is the conflict step of the Postgres writer: it
// compares a system's change of a linked record with the local row and
// with the values both sides last agreed on (the link's base), decides
// the fields changed on both sides by the pipeline's conflict policy, and
// says which of the change's fields the local row takes. It reads and
// writes nothing itself: the writer hands it the three sides.
package threeway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/conflict"
)

// Config turns on conflict detection for linked records: a change from
// the system to a field the local row also changed since the link's base
// is decided by Policy instead of overwriting the local value.
type Config struct {
	// Pipeline names the pipeline in conflict rows and metrics.
	Pipeline string
	Policy   conflict.Policy
	// LLM proposes merges for the llm rule; nil leaves that rule undecided.
	LLM conflict.Proposer
	// Columns maps the system's fields to the local columns they are
	// written to. Only these fields are compared; fields mapped through
	// expressions are applied as they come.
	Columns map[string]string
	// Detected counts conflicts by pipeline and deciding rule; nil counts
	// nothing.
	Detected *prometheus.CounterVec
	// Patched is set when cdcd's writes to the system carry only the
	// fields that changed (syncapi.Patcher): a field the local side did
	// not change was not written, so the system's change of it was not
	// overwritten.
	Patched bool
}

// Record is a linked record's three sides, of the compared fields.
type Record struct {
	Remote   conflict.Values // the change's values
	RemoteAt time.Time       // when the system made the change; zero when unknown
	Local    conflict.Values // the local row's values; empty when it is gone
	LocalAt  time.Time       // when the local row last changed; zero when unknown
	Base     map[string]any  // the link's base (every field it holds)
	// Synced is the system's time of the record at the last sync (the
	// link's version); zero when unknown.
	Synced time.Time
}

// Held reads the system's record as it is now (an empty row when it is
// gone). Compare calls it at most once, and only when it must know.
type Held func(ctx context.Context) (cdc.Row, error)

// Remote returns the values of the compared fields among a change's.
func (c *Config) Remote(values map[string]json.RawMessage) conflict.Values {
	out := conflict.Values{}
	for f, v := range values {
		if _, ok := c.Columns[f]; ok {
			out[f] = v
		}
	}
	return out
}

// Compare builds the comparison of r for the system and decides it by the
// policy. held may be nil when the system's record cannot be read back.
//
// A change the system made before cdcd's last write reached it was
// overwritten there by that write: what the two sides last agreed on is
// unknown for the fields it changed, so both count as changed. With
// patches, a field whose local value is the base's was written by that
// write only if it changed it; the system's record tells.
func (c *Config) Compare(ctx context.Context, system string, r Record, held Held) (conflict.Input, conflict.Decision, error) {
	base := conflict.Values{}
	for f, v := range r.Base {
		if _, ok := c.Columns[f]; ok {
			b, err := json.Marshal(v)
			if err != nil {
				return conflict.Input{}, conflict.Decision{}, fmt.Errorf("encode the link's base: %w", err)
			}
			base[f] = b
		}
	}
	if err := c.forgetOverwritten(ctx, r, base, held); err != nil {
		return conflict.Input{}, conflict.Decision{}, err
	}
	in := conflict.Input{
		Pipeline: c.Pipeline, System: system, Fields: slices.Sorted(maps.Keys(c.Columns)), Base: base,
		Local:  conflict.Side{Values: r.Local, Time: r.LocalAt},
		Remote: conflict.Side{Values: r.Remote, Time: r.RemoteAt},
	}
	return in, conflict.Resolve(ctx, in, c.Policy, c.LLM), nil
}

// forgetOverwritten drops from base the fields of a change older than the
// last sync that the sync's write overwrote in the system.
func (c *Config) forgetOverwritten(ctx context.Context, r Record, base conflict.Values, held Held) error {
	if r.Synced.IsZero() || r.RemoteAt.IsZero() || !r.RemoteAt.Before(r.Synced) {
		return nil
	}
	var now cdc.Row
	for f, v := range r.Remote {
		b, ok := base[f]
		if !ok || bytes.Equal(b, v) {
			continue
		}
		if c.Patched && bytes.Equal(r.Local[f], b) {
			if held == nil {
				continue
			}
			if now == nil {
				var err error
				if now, err = held(ctx); err != nil {
					return err
				}
				if now == nil {
					now = cdc.Row{}
				}
			}
			if x, ok := now.Get(f); ok && sameValue(x, v) {
				continue // the change survived: the write did not carry f
			}
		}
		delete(base, f)
	}
	return nil
}

// LocalChanges keeps, of a change's fields (by local column), those the
// decision gives the local row, plus every field not compared
// (expressions, constants).
func (c *Config) LocalChanges(fields map[string]any, d conflict.Decision) map[string]any {
	out := make(map[string]any, len(fields))
	compared := map[string]string{} // local column -> field
	for f, col := range c.Columns {
		compared[col] = f
	}
	for col, v := range fields {
		f, ok := compared[col]
		if !ok {
			out[col] = v
			continue
		}
		if x, ok := d.ToLocal[f]; ok {
			out[col] = Decode(x)
		}
	}
	return out
}

// Resolution is LocalChanges with the decided values of the conflicting
// fields: what the local row takes once the conflict is decided.
func (c *Config) Resolution(fields map[string]any, d conflict.Decision) map[string]any {
	out := c.LocalChanges(fields, d)
	for _, f := range d.Conflicts {
		if v, ok := d.Result[f]; ok {
			out[c.Columns[f]] = Decode(v)
		}
	}
	return out
}

// sameValue compares two JSON values as values, not as text.
func sameValue(a, b json.RawMessage) bool {
	return reflect.DeepEqual(Decode(a), Decode(b))
}

// Decode decodes a JSON value with exact numbers; text that is no JSON
// is returned as a string.
func Decode(raw json.RawMessage) any {
	v, err := cdc.DecodeValue(raw)
	if err != nil {
		return string(raw)
	}
	return v
}
