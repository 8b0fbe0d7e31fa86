package config

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
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

// Env is what the daemon gives every component it builds.
type Env struct {
	Log     zerolog.Logger
	Metrics prometheus.Registerer
	// Stdout is the daemon's standard output.
	Stdout io.Writer
	// Source fills the "source" block of Debezium envelopes.
	Source cdc.SourceInfo
}

// Registry maps the "type" of a system to its plugin. main builds one
// (cmd/cdcd/components.go) and passes it to Load.
type Registry struct {
	sinks map[string]SinkSpec
}

func NewRegistry() *Registry {
	return &Registry{sinks: map[string]SinkSpec{}}
}

// Sink registers a system type. An empty or duplicate type, or a spec
// without NewConfig or New, panics: it is a programming error.
func (r *Registry) Sink(typ string, spec SinkSpec) {
	switch {
	case typ == "":
		panic("config: Sink: empty type")
	case spec.NewConfig == nil || spec.New == nil:
		panic(fmt.Sprintf("config: Sink %q: NewConfig and New are required", typ))
	}
	if _, dup := r.sinks[typ]; dup {
		panic(fmt.Sprintf("config: Sink %q registered twice", typ))
	}
	r.sinks[typ] = spec
}

// SinkTypes returns the registered system types, sorted.
func (r *Registry) SinkTypes() []string {
	types := make([]string, 0, len(r.sinks))
	for t := range r.sinks {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
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
		return nil, fmt.Errorf("systems.%s.type: unknown system type %q; known types: %s",
			name, sys.Type, strings.Join(reg.SinkTypes(), ", "))
	}
	env.Log = env.Log.With().Str("system", name).Logger()
	sink, err := spec.New(name, sys.Config, env)
	if err != nil {
		return nil, fmt.Errorf("systems.%s: %w", name, err)
	}
	return sink, nil
}
