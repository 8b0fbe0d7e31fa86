package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

// Validator is a plugin's config. Validate checks it offline and returns
// every problem at once, joined with errors.Join; a problem that concerns
// one key is a FieldError naming the key's path relative to the config, so
// that Load can report the line it is on.
type Validator interface {
	Validate() error
}

// SinkSpec describes one system type.
type SinkSpec struct {
	// NewConfig returns a new config with its defaults set. Load decodes
	// the system's keys (all but "type") into it, strictly, using the
	// decoding rules of this package, so its fields need yaml tags.
	NewConfig func() Validator
	// New validates cfg (a value NewConfig returned) and builds the sink.
	// It allocates but does not connect, open or create anything outside
	// the process; that happens on first use.
	New func(name string, cfg Validator, env Env) (cdc.Sink, error)
}

// WriterSpec describes one system type whose plugin is a vendor writer:
// records reach it through package delivery (mapping, ordering, retries,
// rate limits, links). Its fields follow the rules of SinkSpec.
type WriterSpec struct {
	NewConfig func() Validator
	New       func(name string, cfg Validator, env Env) (delivery.Writer, error)
}

// Checker checks a decoded config beyond what Validate sees: that the
// expressions of pipelines compile, or that the columns they name exist.
// It returns FieldErrors whose paths start at the config's root
// ("pipelines[1].map.firstname"), joined; any other error is reported at
// the root. Load runs it on a config that may still hold problems, so it
// skips what it cannot check. Only a checker registered for an explicit
// request (cdcd validate --check-db) may connect to anything.
type Checker func(cfg *Config) error

// Env is what the daemon gives every component it builds.
type Env struct {
	Log     zerolog.Logger
	Metrics prometheus.Registerer
	// Stdout is the daemon's standard output.
	Stdout io.Writer
	// Source fills the "source" block of Debezium envelopes.
	Source cdc.SourceInfo
	// Limiters holds the rate limiters of vendor accounts, shared by every
	// writer of the daemon.
	Limiters *ratelimit.Limiters
}

// Registry maps the "type" of a system to its plugin, a sink or a writer
// (one namespace for both), and holds the checkers Load runs. The daemon
// builds one (daemon/components.go), which cdcd passes to Load.
type Registry struct {
	sinks    map[string]SinkSpec
	writers  map[string]WriterSpec
	checkers []Checker
	webhook  func(systemType string) (Validator, error)
}

// Webhooks sets the hook that makes the config of a system's webhook
// section: a pointer to a struct with its defaults set, decoded like a
// plugin's config, or an error when systems of that type send no webhooks.
// It panics when set twice or nil.
func (r *Registry) Webhooks(newConfig func(systemType string) (Validator, error)) {
	if newConfig == nil || r.webhook != nil {
		panic("config: Webhooks set twice or nil")
	}
	r.webhook = newConfig
}

func NewRegistry() *Registry {
	return &Registry{sinks: map[string]SinkSpec{}, writers: map[string]WriterSpec{}}
}

// Sink registers a system type. An empty or duplicate type, or a spec
// without NewConfig or New, panics: it is a programming error.
func (r *Registry) Sink(typ string, spec SinkSpec) {
	r.claim("Sink", typ, spec.NewConfig == nil || spec.New == nil)
	r.sinks[typ] = spec
}

// Writer registers a system type served by a vendor writer. It panics like
// Sink; a type may be registered once, as a sink or as a writer.
func (r *Registry) Writer(typ string, spec WriterSpec) {
	r.claim("Writer", typ, spec.NewConfig == nil || spec.New == nil)
	r.writers[typ] = spec
}

func (r *Registry) claim(kind, typ string, incomplete bool) {
	switch {
	case typ == "":
		panic(fmt.Sprintf("config: %s: empty type", kind))
	case incomplete:
		panic(fmt.Sprintf("config: %s %q: NewConfig and New are required", kind, typ))
	}
	_, sink := r.sinks[typ]
	_, writer := r.writers[typ]
	if sink || writer {
		panic(fmt.Sprintf("config: %s %q registered twice", kind, typ))
	}
}

// Checker adds a check that Load runs after decoding, in the order added.
func (r *Registry) Checker(c Checker) {
	if c == nil {
		panic("config: nil Checker")
	}
	r.checkers = append(r.checkers, c)
}

// IsWriter reports whether typ is a writer type.
func (r *Registry) IsWriter(typ string) bool {
	_, ok := r.writers[typ]
	return ok
}

// checkSinkPipelines refuses the keys of pipelines to a sink (a system
// that writes changes as they are: file, stdout) that a sink cannot
// honour: map and link, which make and link records.
func (r *Registry) checkSinkPipelines(c *Config) error {
	var errs []error
	for i, p := range c.Pipelines {
		sys, ok := c.Systems[p.To]
		if !ok || sys == nil {
			continue
		}
		if _, sink := r.sinks[sys.Type]; !sink {
			continue
		}
		path := fmt.Sprintf("pipelines[%d]", i)
		if len(p.Map) > 0 {
			errs = append(errs, FieldError{Path: path + ".map", Msg: fmt.Sprintf(
				"a %s system writes each change's row as captured, not a mapped record: remove map, and choose the columns with columns: {allow: [...]} or {deny: [...]}", sys.Type)})
		}
		if p.Link != nil {
			errs = append(errs, FieldError{Path: path + ".link", Msg: fmt.Sprintf(
				"a %s system gives records no id to link: remove link", sys.Type)})
		}
	}
	return errors.Join(errs...)
}

// WebhookConfig returns the fresh config of the webhook section of a
// system type, or false when systems of that type send no webhooks.
func (r *Registry) WebhookConfig(typ string) (Validator, bool) {
	if r.webhook == nil {
		return nil, false
	}
	c, err := r.webhook(typ)
	return c, err == nil && c != nil
}

// NewConfig returns the fresh config of a system type, its defaults set.
func (r *Registry) NewConfig(typ string) (Validator, bool) { return r.newConfig(typ) }

// newConfig returns the fresh config of a system type.
func (r *Registry) newConfig(typ string) (Validator, bool) {
	if s, ok := r.sinks[typ]; ok {
		return s.NewConfig(), true
	}
	if w, ok := r.writers[typ]; ok {
		return w.NewConfig(), true
	}
	return nil, false
}

// SinkTypes returns the registered sink types, sorted.
func (r *Registry) SinkTypes() []string {
	return slices.Sorted(maps.Keys(r.sinks))
}

// Types returns every registered system type, sinks and writers, sorted.
func (r *Registry) Types() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for t := range r.sinks {
			if !yield(t) {
				return
			}
		}
		for t := range r.writers {
			if !yield(t) {
				return
			}
		}
	})
}

// NewSink builds the sink of the named system. The sink's logger carries
// the system name.
func (c *Config) NewSink(reg *Registry, name string, env Env) (cdc.Sink, error) {
	sys, ok := c.Systems[name]
	if !ok || sys == nil {
		return nil, fmt.Errorf("systems.%s: no such system", name)
	}
	spec, ok := reg.sinks[sys.Type]
	if !ok {
		return nil, reg.wrongKind(name, sys.Type, "sink")
	}
	env.Log = env.Log.With().Str("system", name).Logger()
	sink, err := spec.New(name, sys.Config, env)
	if err != nil {
		return nil, fmt.Errorf("systems.%s: %w", name, err)
	}
	return sink, nil
}

// NewWriter builds the writer of the named system. The writer's logger
// carries the system name.
func (c *Config) NewWriter(reg *Registry, name string, env Env) (delivery.Writer, error) {
	sys, ok := c.Systems[name]
	if !ok || sys == nil {
		return nil, fmt.Errorf("systems.%s: no such system", name)
	}
	spec, ok := reg.writers[sys.Type]
	if !ok {
		return nil, reg.wrongKind(name, sys.Type, "writer")
	}
	env.Log = env.Log.With().Str("system", name).Logger()
	w, err := spec.New(name, sys.Config, env)
	if err != nil {
		return nil, fmt.Errorf("systems.%s: %w", name, err)
	}
	return w, nil
}

func (r *Registry) wrongKind(name, typ, want string) error {
	_, sink := r.sinks[typ]
	_, writer := r.writers[typ]
	if sink || writer {
		return fmt.Errorf("systems.%s.type: system type %q is not a %s", name, typ, want)
	}
	return fmt.Errorf("systems.%s.type: unknown system type %q; known types: %s",
		name, typ, strings.Join(r.Types(), ", "))
}
