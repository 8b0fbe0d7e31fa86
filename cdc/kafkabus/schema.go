package kafkabus

import (
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// schemaCache holds the schema blocks of each relation and topic: they
// are built once per table definition, not per message.
type schemaCache struct {
	mu sync.Mutex
	m  map[schemaKey]*schemas
}

type schemaKey struct {
	rel   *cdc.Relation
	topic string
}

type schemas struct{ key, value []byte }

// maxSchemas bounds the cache: a relation is new after each table change
// and each replication session.
const maxSchemas = 4096

func (c *schemaCache) get(rel *cdc.Relation, topic string) *schemas {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := schemaKey{rel, topic}
	if s, ok := c.m[k]; ok {
		return s
	}
	if c.m == nil || len(c.m) >= maxSchemas {
		c.m = map[schemaKey]*schemas{}
	}
	s := &schemas{key: cdc.KeySchema(rel, topic), value: cdc.EnvelopeSchema(rel, topic)}
	c.m[k] = s
	return s
}

// withSchemas returns the schema blocks of ev on topic, or nil when the
// messages go without.
func (p *Producer) withSchemas(ev *cdc.Event, topic string) *schemas {
	if !p.cfg.Schemas || ev.Relation == nil {
		return nil
	}
	return p.schemas.get(ev.Relation, topic)
}

func (p *Producer) appendKey(dst []byte, ev *cdc.Event, topic string) []byte {
	s := p.withSchemas(ev, topic)
	if s == nil || s.key == nil {
		return cdc.AppendKey(dst, ev)
	}
	dst = appendSchemaOpen(dst, s.key)
	dst = cdc.AppendKey(dst, ev)
	return append(dst, '}')
}

func (p *Producer) appendValue(dst []byte, ev *cdc.Event, topic string, now time.Time) []byte {
	s := p.withSchemas(ev, topic)
	if s == nil {
		return cdc.AppendEnvelope(dst, ev, &p.cfg.Source, now)
	}
	dst = appendSchemaOpen(dst, s.value)
	dst = cdc.AppendEnvelope(dst, ev, &p.cfg.Source, now)
	return append(dst, '}')
}

func appendSchemaOpen(dst, schema []byte) []byte {
	dst = append(dst, `{"schema":`...)
	dst = append(dst, schema...)
	return append(dst, `,"payload":`...)
}
