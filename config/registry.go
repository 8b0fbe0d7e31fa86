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
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Validator is a plugin's config. Validate checks it offline and returns
// every problem at once, joined with errors.Join; a problem that concerns
// one key is a FieldError naming the key's path relative to the config, so
// that Load can report the line it is on.
type Validator interface {
	Validate() error
}

// Type is a system type: the config its systems' keys decode into, and
// what the daemon builds from one. Exactly one of Sink and Writer is set.
type Type[C Validator] struct {
	// NewConfig returns a new config with its defaults set. Load decodes
	// the system's keys (all but "type" and "webhook") into it, strictly,
	// using the decoding rules of this package, so its fields need yaml
	// tags.
	NewConfig func() C
	// Sink builds the sink of a system that writes each change as it is
	// (file, stdout); Writer the writer of a vendor system, which records
	// reach through package delivery (mapping, ordering, retries, links).
	// Both validate cfg (a value NewConfig returned) and allocate, but
	// neither connects, opens nor creates anything outside the process;
	// that happens on first use.
	Sink   func(name string, cfg C, env Env) (cdc.Sink, error)
	Writer func(name string, cfg C, env Env) (syncapi.Writer, error)
	// Webhook, for types whose systems send webhooks, returns the config
	// of a system's webhook: section with its defaults set, decoded like
	// the system's own.
	Webhook func() Validator
}

// systemType is a Type with its config's type erased.
type systemType struct {
	newConfig func() Validator
	sink      func(name string, cfg Validator, env Env) (cdc.Sink, error)
	writer    func(name string, cfg Validator, env Env) (syncapi.Writer, error)
	webhook   func() Validator
}

// Register adds the system type typ to r. An empty or duplicate type, or
// a Type without NewConfig or without exactly one of Sink and Writer,
// panics: it is a programming error.
func Register[C Validator](r *Registry, typ string, t Type[C]) {
	switch {
	case typ == "":
		panic("config: Register: empty type")
	case t.NewConfig == nil || (t.Sink == nil) == (t.Writer == nil):
		panic(fmt.Sprintf("config: Register %q: NewConfig and one of Sink and Writer are required", typ))
	case r.types[typ] != nil:
		panic(fmt.Sprintf("config: Register %q: registered twice", typ))
	}
	st := &systemType{newConfig: func() Validator { return t.NewConfig() }, webhook: t.Webhook}
	if t.Sink != nil {
		st.sink = func(name string, cfg Validator, env Env) (cdc.Sink, error) {
			c, err := configOf[C](typ, cfg)
			if err != nil {
				return nil, err
			}
			return t.Sink(name, c, env)
		}
	} else {
		st.writer = func(name string, cfg Validator, env Env) (syncapi.Writer, error) {
			c, err := configOf[C](typ, cfg)
			if err != nil {
				return nil, err
			}
			return t.Writer(name, c, env)
		}
	}
	r.types[typ] = st
}

// configOf is cfg as the config of typ, C.
func configOf[C Validator](typ string, cfg Validator) (C, error) {
	c, ok := cfg.(C)
	if !ok {
		return c, fmt.Errorf("%s: config is %T, want %T", typ, cfg, c)
	}
	return c, nil
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

// Registry maps the "type" of a system to its Type, and holds the
// checkers Load runs. The daemon builds one (daemon/components.go), which
// cdcd passes to Load.
type Registry struct {
	types    map[string]*systemType
	checkers []Checker
}

func NewRegistry() *Registry {
	return &Registry{types: map[string]*systemType{}}
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
	t := r.types[typ]
	return t != nil && t.writer != nil
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
		if t := r.types[sys.Type]; t == nil || t.sink == nil {
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
	t := r.types[typ]
	if t == nil || t.webhook == nil {
		return nil, false
	}
	return t.webhook(), true
}

// noWebhooks says that systems of typ send no webhooks, and which do.
func (r *Registry) noWebhooks(typ string) string {
	var do []string
	for _, t := range r.Types() {
		if r.types[t].webhook != nil {
			do = append(do, t)
		}
	}
	switch len(do) {
	case 0:
		return "this build of cdcd receives no webhooks"
	case 1:
		return fmt.Sprintf("system type %q sends no webhooks (%s systems do)", typ, do[0])
	}
	return fmt.Sprintf("system type %q sends no webhooks (%s and %s systems do)", typ, strings.Join(do[:len(do)-1], ", "), do[len(do)-1])
}

// NewConfig returns the fresh config of a system type, its defaults set.
func (r *Registry) NewConfig(typ string) (Validator, bool) { return r.newConfig(typ) }

// newConfig returns the fresh config of a system type.
func (r *Registry) newConfig(typ string) (Validator, bool) {
	t := r.types[typ]
	if t == nil {
		return nil, false
	}
	return t.newConfig(), true
}

// SinkTypes returns the registered sink types, sorted.
func (r *Registry) SinkTypes() []string {
	var out []string
	for typ, t := range r.types {
		if t.sink != nil {
			out = append(out, typ)
		}
	}
	slices.Sort(out)
	return out
}

// Types returns every registered system type, sinks and writers, sorted.
func (r *Registry) Types() []string {
	return slices.Sorted(maps.Keys(r.types))
}

// NewSink builds the sink of the named system. The sink's logger carries
// the system name.
func (c *Config) NewSink(reg *Registry, name string, env Env) (cdc.Sink, error) {
	sys, ok := c.Systems[name]
	if !ok || sys == nil {
		return nil, fmt.Errorf("systems.%s: no such system", name)
	}
	t := reg.types[sys.Type]
	if t == nil || t.sink == nil {
		return nil, reg.wrongKind(name, sys.Type, "sink")
	}
	env.Log = env.Log.With().Str("system", name).Logger()
	sink, err := t.sink(name, sys.Config, env)
	if err != nil {
		return nil, fmt.Errorf("systems.%s: %w", name, err)
	}
	return sink, nil
}

// NewWriter builds the writer of the named system. The writer's logger
// carries the system name.
func (c *Config) NewWriter(reg *Registry, name string, env Env) (syncapi.Writer, error) {
	sys, ok := c.Systems[name]
	if !ok || sys == nil {
		return nil, fmt.Errorf("systems.%s: no such system", name)
	}
	t := reg.types[sys.Type]
	if t == nil || t.writer == nil {
		return nil, reg.wrongKind(name, sys.Type, "writer")
	}
	env.Log = env.Log.With().Str("system", name).Logger()
	w, err := t.writer(name, sys.Config, env)
	if err != nil {
		return nil, fmt.Errorf("systems.%s: %w", name, err)
	}
	return w, nil
}

func (r *Registry) wrongKind(name, typ, want string) error {
	if r.types[typ] != nil {
		return fmt.Errorf("systems.%s.type: system type %q is not a %s", name, typ, want)
	}
	return fmt.Errorf("systems.%s.type: unknown system type %q; known types: %s",
		name, typ, strings.Join(r.Types(), ", "))
}
