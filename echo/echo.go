package echo

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// Layers, as the metric's layer label names them.
const (
	LayerOrigin = "origin"
	LayerBase   = "base"
	LayerRecent = "recent"
	LayerHint   = "hint"
)

// Counter counts suppressed echoes. A nil *Counter counts nothing.
type Counter struct {
	vec *prometheus.CounterVec
}

// NewCounter registers cdcd_echoes_suppressed_total with reg (nil leaves it
// unregistered).
func NewCounter(reg prometheus.Registerer) (*Counter, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcd_echoes_suppressed_total",
		Help: "Changes not synced because they were echoes, by the system they would have gone to or come from and the layer that caught them.",
	}, []string{"system", "layer"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			return nil, err
		}
	}
	return &Counter{vec: vec}, nil
}

// Add counts one suppressed echo.
func (c *Counter) Add(system, layer string) {
	if c != nil {
		c.vec.WithLabelValues(system, layer).Inc()
	}
}

// OnOrigin returns a func for the router that counts origin-layer echoes.
func (c *Counter) OnOrigin() func(system string) {
	return func(system string) { c.Add(system, LayerOrigin) }
}

// Rememberer keeps the values cdcd wrote to systems' records where every
// process of the deployment reads them (store.RecentWrites): a change a
// system reports back with one of them is an echo (LayerRecent).
type Rememberer interface {
	Remember(ctx context.Context, links []syncstate.Link) error
}

// Remember wraps links so that every link Put also remembers its Base as
// a write to its system's record. A Put whose writes cannot be remembered
// fails: its record is written again, and remembered, at the retry.
func Remember(links syncstate.Links, r Rememberer) syncstate.Links {
	if r == nil {
		return links
	}
	return &remembering{Links: links, r: r}
}

type remembering struct {
	syncstate.Links
	r Rememberer
}

func (m *remembering) Put(ctx context.Context, links []syncstate.Link) error {
	if err := m.Links.Put(ctx, links); err != nil {
		return err
	}
	return m.r.Remember(ctx, links)
}

// Known reports whether every value of fields is one cdcd already knows
// for the record: equal to the base's value or to that of one of the
// recent writes. It also says which layer knew them: LayerBase when the
// base alone did. A field absent from the base and from every write is
// new, so fields is no echo. Empty fields are no echo either.
func Known(fields map[string]json.RawMessage, base map[string]any, writes []map[string]any) (bool, string) {
	if len(fields) == 0 {
		return false, ""
	}
	layer := LayerBase
	for name, v := range fields {
		if bv, ok := base[name]; ok && Equal(v, bv) {
			continue
		}
		found := false
		for _, w := range writes {
			if wv, ok := w[name]; ok && Equal(v, wv) {
				found = true
				break
			}
		}
		if !found {
			return false, ""
		}
		layer = LayerRecent
	}
	return true, layer
}

// Equal compares a JSON value with a decoded one as values: numbers by
// their value, objects regardless of key order. Strings that hold numbers
// match numbers ("42" and 42), since vendors send one where cdcd wrote the
// other (HubSpot returns every property as a string). Timestamps with a
// zone match when they name one instant, and an interval in ISO 8601
// matches the same interval in Postgres's output ("P1D" and "1 day").
func Equal(raw json.RawMessage, v any) bool {
	a, err := decode(raw)
	if err != nil {
		return false
	}
	return equalValues(a, normalize(v))
}

func decode(raw json.RawMessage) (any, error) {
	return cdc.DecodeValue(raw)
}

// normalize re-decodes v through JSON so numbers are json.Number.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool:
		return v
	case string:
		if utf8.ValidString(x) { // else Marshal replaces the bad bytes
			return v
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	out, err := decode(b)
	if err != nil {
		return v
	}
	return out
}

func equalValues(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		if !ok {
			s, isStr := b.(string)
			return isStr && s == boolText(x)
		}
		return x == y
	case json.Number:
		return numberEqual(x, b)
	case string:
		switch y := b.(type) {
		case string:
			return x == y || sameInstant(x, y) || sameInterval(x, y)
		case json.Number:
			return numberEqual(y, x)
		case bool:
			return x == boolText(y)
		}
		return false
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalValues(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// instantLayouts are the text forms of a timestamp with a zone that
// vendors and Postgres print: RFC 3339 (any fraction), Postgres's
// timestamptz output, and ISO 8601 with a zone without colon (Salesforce).
var instantLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
}

// sameInstant reports whether a and b are both timestamps with a zone
// that name the same instant.
func sameInstant(a, b string) bool {
	ta, ok := instant(a)
	if !ok {
		return false
	}
	tb, ok := instant(b)
	return ok && ta.Equal(tb)
}

func instant(s string) (time.Time, bool) {
	if len(s) < 20 || len(s) > 40 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, false
	}
	for _, layout := range instantLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// numberEqual compares a number with a number or a numeric string.
func numberEqual(n json.Number, b any) bool {
	var s string
	switch y := b.(type) {
	case json.Number:
		s = y.String()
	case string:
		s = y
	default:
		return false
	}
	if n.String() == s {
		return true
	}
	x, err1 := n.Float64()
	y, err2 := json.Number(s).Float64()
	return err1 == nil && err2 == nil && x == y
}
