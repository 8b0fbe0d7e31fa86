package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	slotName     = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	identifier   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
	systemName   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	pipelineName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "console"}
)

// Validate checks the whole config offline, including every system's
// plugin config, and returns every problem as a FieldError, joined.
func (c *Config) Validate() error {
	var v problems
	c.Postgres.validate(&v)
	if c.Kafka != nil {
		c.Kafka.validate(&v)
	}
	if c.HTTP.Listen == "" {
		v.add("http.listen", "required (host:port)")
	} else if !isHostPort(c.HTTP.Listen) {
		v.add("http.listen", fmt.Sprintf("%q is not host:port", c.HTTP.Listen))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout}} {
		if d.v <= 0 {
			v.add(d.key, fmt.Sprintf("%s must be more than 0", d.v))
		}
	}
	if c.HTTP.MaxConnections < 1 {
		v.add("http.max_connections", fmt.Sprintf("%d must be at least 1", c.HTTP.MaxConnections))
	}
	v.oneOf("log.level", c.Log.Level, logLevels)
	v.oneOf("log.format", c.Log.Format, logFormats)
	c.Retention.validate(&v)
	if c.Jobs.Concurrency < 1 {
		v.add("jobs.concurrency", fmt.Sprintf("%d must be at least 1", c.Jobs.Concurrency))
	}
	if c.Jobs.Lease < 3*time.Second {
		v.add("jobs.lease", fmt.Sprintf("%s must be at least 3s (it is renewed every third of it)", c.Jobs.Lease))
	}
	if c.Jobs.ChunkSize < 1 || c.Jobs.ChunkSize > 100_000 {
		v.add("jobs.chunk_size", fmt.Sprintf("%d must be between 1 and 100000", c.Jobs.ChunkSize))
	}
	c.Health.validate(&v, c.Pipelines)
	c.validateSystems(&v)
	c.validatePipelines(&v)
	return errors.Join(v...)
}

type problems []error

func (v *problems) add(path, msg string) {
	*v = append(*v, FieldError{Path: path, Msg: msg})
}

func (v *problems) oneOf(path, val string, allowed []string) {
	if !slices.Contains(allowed, val) {
		v.add(path, fmt.Sprintf("%q is not one of %s%s", val, strings.Join(allowed, ", "), suggest(val, allowed)))
	}
}

func (p *Postgres) validate(v *problems) {
	if p.URL == "" {
		v.add("postgres.url", "required (a postgres:// URL or key=value DSN)")
	} else if _, err := pgconn.ParseConfig(p.URL); err != nil {
		v.add("postgres.url", "not a valid postgres:// URL or key=value DSN"+connStringReason(err))
	}
	if !slotName.MatchString(p.Slot) {
		v.add("postgres.slot", fmt.Sprintf("%q is not a valid slot name (1 to 63 of a-z, 0-9 and _)", p.Slot))
	}
	if !slotName.MatchString(p.Publication) {
		v.add("postgres.publication", fmt.Sprintf("%q is not a valid publication name (1 to 63 of a-z, 0-9 and _)", p.Publication))
	}
	seen := map[string]bool{}
	for i, t := range p.Tables {
		path := fmt.Sprintf("postgres.tables[%d]", i)
		q, ok := qualify(t)
		switch {
		case !ok:
			v.add(path, fmt.Sprintf("%q is not a table name (schema.table or table)", t))
		case seen[q]:
			v.add(path, fmt.Sprintf("duplicate table %q", q))
		}
		seen[q] = true
	}
	if p.StatusInterval <= 0 || p.StatusInterval > 10*time.Second {
		v.add("postgres.status_interval", fmt.Sprintf("%s is out of range (more than 0, at most 10s)", p.StatusInterval))
	}
	if p.Heartbeat < 0 {
		v.add("postgres.heartbeat", "must not be negative (0 disables the heartbeat)")
	}
}

// connStringReason is pgconn's reason for rejecting a connection string,
// without the string itself, which may hold a password.
func connStringReason(err error) string {
	var pce *pgconn.ParseConfigError
	if !errors.As(err, &pce) {
		return ""
	}
	s := pce.Error()
	if inner := pce.Unwrap(); inner != nil {
		s = strings.TrimSuffix(s, " ("+inner.Error()+")")
	}
	if i := strings.LastIndex(s, "`: "); i >= 0 {
		return ": " + s[i+3:]
	}
	return ""
}

func (k *Kafka) validate(v *problems) {
	if len(k.Brokers) == 0 {
		v.add("kafka.brokers", "required (a list of host:port)")
	}
	for i, b := range k.Brokers {
		if !isHostPort(b) || strings.HasPrefix(b, ":") {
			v.add(fmt.Sprintf("kafka.brokers[%d]", i), fmt.Sprintf("%q is not host:port", b))
		}
	}
	switch {
	case k.TopicPrefix == "":
		v.add("kafka.topic_prefix", "required")
	case kafkabus.CheckPrefix(k.TopicPrefix) != nil:
		v.add("kafka.topic_prefix", kafkabus.CheckPrefix(k.TopicPrefix).Error())
	}
	if k.ClientID == "" {
		v.add("kafka.client_id", "required")
	}
	atLeast := func(path string, n, least int) {
		if n < least {
			v.add(path, fmt.Sprintf("must be at least %d", least))
		}
	}
	atLeast("kafka.topics.partitions", k.Topics.Partitions, 1)
	atLeast("kafka.topics.replication_factor", k.Topics.ReplicationFactor, 1)
	if k.Topics.ReplicationFactor > 32767 {
		v.add("kafka.topics.replication_factor", "must be at most 32767")
	}
	atLeast("kafka.batch.size", k.Batch.Size, 1)
	atLeast("kafka.batch.bytes", k.Batch.Bytes, 1)
	if k.Batch.Linger < 0 {
		v.add("kafka.batch.linger", "must not be negative")
	}
	atLeast("kafka.buffer.events", k.Buffer.Events, max(1, k.Batch.Size))
	atLeast("kafka.buffer.bytes", k.Buffer.Bytes, max(1, k.Batch.Bytes))
	if g := k.Group; g.SessionTimeout < time.Second || g.SessionTimeout > time.Hour {
		v.add("kafka.group.session_timeout", "must be between 1s and 1h (brokers accept 6s to 30m by default)")
	} else if g.Heartbeat <= 0 || g.Heartbeat >= g.SessionTimeout {
		v.add("kafka.group.heartbeat", fmt.Sprintf("must be more than 0 and less than kafka.group.session_timeout (%v); a third of it or less is usual", g.SessionTimeout))
	}
	if k.Group.PartitionWatch <= 0 {
		v.add("kafka.group.partition_watch", "must be more than 0")
	}
	if r := k.Group.RebalanceTimeout; r <= kafkabus.MinRebalanceTimeout || r > time.Hour {
		v.add("kafka.group.rebalance_timeout", fmt.Sprintf("%s is out of range (more than %s: a member keeps 5s of it to commit and rejoin; at most 1h)", r, kafkabus.MinRebalanceTimeout))
	}
	if d := k.Group.DrainTimeout; d <= 0 || d > time.Hour {
		v.add("kafka.group.drain_timeout", fmt.Sprintf("%s is out of range (more than 0, at most 1h)", d))
	}
	v.oneOf("kafka.compression", k.Compression, kafkabus.Compressions)
	v.oneOf("kafka.format", k.Format, kafkabus.Formats)
}

func (c *Config) validateSystems(v *problems) {
	names := make([]string, 0, len(c.Systems))
	for name := range c.Systems {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := c.Systems[name]
		path := "systems." + name
		if !systemName.MatchString(name) {
			v.add(path, fmt.Sprintf("%q is not a valid system name (a-z first, then a-z, 0-9, _ and -)", name))
		}
		switch {
		case s == nil || s.Type == "":
			v.add(path+".type", "required")
		case s.Config == nil:
			v.add(path+".type", fmt.Sprintf("unknown system type %q", s.Type))
		default:
			for _, fe := range fieldErrors(path, s.Config.Validate()) {
				*v = append(*v, fe)
			}
		}
		if s != nil && s.Webhook != nil {
			for _, fe := range fieldErrors(path+".webhook", s.Webhook.Validate()) {
				*v = append(*v, fe)
			}
		}
	}
}

func (c *Config) validatePipelines(v *problems) {
	tables := map[string]bool{}
	for _, t := range c.Postgres.Tables {
		if q, ok := qualify(t); ok {
			tables[q] = true
		}
	}
	systems := make([]string, 0, len(c.Systems))
	for name := range c.Systems {
		systems = append(systems, name)
	}
	slices.Sort(systems)
	names := map[string]int{}
	for i, p := range c.Pipelines {
		path := fmt.Sprintf("pipelines[%d]", i)
		if p == nil {
			p = &Pipeline{}
		}
		switch first, dup := names[p.Name]; {
		case p.Name == "":
			v.add(path+".name", "required")
		case !pipelineName.MatchString(p.Name):
			v.add(path+".name", fmt.Sprintf("%q is not a valid pipeline name (a-z or 0-9 first, then a-z, 0-9, _ and -)", p.Name))
		case dup:
			v.add(path+".name", fmt.Sprintf("duplicate pipeline name %q (also pipelines[%d])", p.Name, first))
		default:
			names[p.Name] = i
		}
		_, fromSystem := c.Systems[p.From]
		switch q, isTable := qualify(p.From); {
		case p.From == "":
			v.add(path+".from", "required (a table or a system)")
		case fromSystem:
		case !isTable:
			v.add(path+".from", fmt.Sprintf("%q is neither a table (schema.table or table) nor a system%s", p.From, suggest(p.From, systems)))
		case len(tables) > 0 && !tables[q]:
			v.add(path+".from", fmt.Sprintf("table %q is not in postgres.tables", q))
		}
		if fromSystem {
			c.validateInbound(v, path, p)
		} else {
			switch _, ok := c.Systems[p.To]; {
			case p.To == "":
				v.add(path+".to", "required (a system)")
			case !ok:
				v.add(path+".to", fmt.Sprintf("no system named %q%s", p.To, suggest(p.To, systems)))
			}
		}
		p.validate(v, path, !fromSystem)
	}
}

// Lister is implemented by the configs of system types that can list
// their records, for imports. Lists reports whether this config can.
type Lister interface {
	Lists() bool
}

// validateInbound checks the ends of a pipeline from a system: the system
// sends webhooks or lists its records for imports, and to names a table.
func (c *Config) validateInbound(v *problems, path string, p *Pipeline) {
	if s := c.Systems[p.From]; s != nil && s.Config != nil && s.Webhook == nil && !lists(s.Config) {
		v.add(path+".from", fmt.Sprintf("system %q has no webhook: section; add one (its secrets) so cdcd can receive its changes", p.From))
	}
	switch _, ok := qualify(p.To); {
	case p.To == "":
		v.add(path+".to", "required (the local table the changes are applied to)")
	case !ok:
		v.add(path+".to", fmt.Sprintf("%q is not a table name (schema.table or table); a pipeline from a system applies to a local table", p.To))
	}
	if p.Object == "" {
		v.add(path+".object", "required: the system's entity whose changes the pipeline applies (contacts, products, ...)")
	}
	if p.Conflict != nil {
		p.Conflict.validate(v, path+".conflict", p.From)
	}
}

// qualify returns "public.<t>" for an unqualified table name, t for a
// qualified one, and false if t is not a table name.
func qualify(t string) (string, bool) {
	schema, table, qualified := strings.Cut(t, ".")
	if !qualified {
		schema, table = "public", t
	}
	if !identifier.MatchString(schema) || !identifier.MatchString(table) {
		return "", false
	}
	return schema + "." + table, true
}

func isHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// lists reports whether a system's config can list its records.
func lists(cfg Validator) bool {
	l, ok := cfg.(Lister)
	return ok && l.Lists()
}
