package echo

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
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

// Recent defaults.
const (
	DefaultRecentSize = 100_000
	DefaultRecentTTL  = 15 * time.Minute
	writesPerRecord   = 4
)

// Recent remembers, per (system, object, external id), the last few sets
// of field values cdcd wrote, for a while. It is safe for concurrent use;
// a nil *Recent remembers nothing.
type Recent struct {
	mu    sync.Mutex // serialises read-modify-write of one entry
	cache *expirable.LRU[string, []map[string]any]
}

// NewRecent returns a Recent of size records kept for ttl (0s mean the
// defaults).
func NewRecent(size int, ttl time.Duration) *Recent {
	if size <= 0 {
		size = DefaultRecentSize
	}
	if ttl <= 0 {
		ttl = DefaultRecentTTL
	}
	return &Recent{cache: expirable.NewLRU[string, []map[string]any](size, nil, ttl)}
}

func recentKey(system, object, id string) string {
	return system + "\x00" + object + "\x00" + id
}

// Add remembers fields as written to the record.
func (r *Recent) Add(system, object, id string, fields map[string]any) {
	if r == nil || id == "" || len(fields) == 0 {
		return
	}
	k := recentKey(system, object, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, _ := r.cache.Get(k)
	writes := append([]map[string]any{fields}, old...)
	if len(writes) > writesPerRecord {
		writes = writes[:writesPerRecord]
	}
	r.cache.Add(k, writes)
}

// Writes returns the remembered writes of the record, newest first.
func (r *Recent) Writes(system, object, id string) []map[string]any {
	if r == nil {
		return nil
	}
	w, _ := r.cache.Get(recentKey(system, object, id))
	return w
}

// Remember wraps links so that every link Put is also remembered in r as
// a write of its Base to its system.
func Remember(links syncstate.Links, r *Recent) syncstate.Links {
	if r == nil {
		return links
	}
	return &remembering{Links: links, recent: r}
}

type remembering struct {
	syncstate.Links
	recent *Recent
}

func (m *remembering) Put(ctx context.Context, links []syncstate.Link) error {
	if err := m.Links.Put(ctx, links); err != nil {
		return err
	}
	for _, l := range links {
		m.recent.Add(l.System, l.Object, l.ExternalID, l.Base)
	}
	return nil
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
// other (HubSpot returns every property as a string).
func Equal(raw json.RawMessage, v any) bool {
	a, err := decode(raw)
	if err != nil {
		return false
	}
	return equalValues(a, normalize(v))
}

func decode(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// normalize re-decodes v through JSON so numbers are json.Number.
func normalize(v any) any {
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
			return x == y
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
