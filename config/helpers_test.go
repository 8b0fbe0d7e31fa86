package config

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// fakeConfig exercises the decoding rules a real plugin relies on.
type fakeConfig struct {
	URL     string   `yaml:"url"`
	Token   string   `yaml:"token"`
	Rate    fakeRate `yaml:"rate"`
	Tags    []string `yaml:"tags"`
	Enabled bool     `yaml:"enabled"`
	Ratio   float64  `yaml:"ratio"`
	Retries uint8    `yaml:"retries"`
}

type fakeRate struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
}

func (c *fakeConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, FieldError{Path: "url", Msg: "required"})
	}
	if c.Rate.Per <= 0 {
		errs = append(errs, FieldError{Path: "rate.per", Msg: "must be more than 0"})
	}
	if c.Token == "bad" {
		errs = append(errs, errors.New("token rejected"))
	}
	return errors.Join(errs...)
}

type noKeys struct{}

func (*noKeys) Validate() error { return nil }

type fakeSink struct {
	name string
	cfg  *fakeConfig
	env  Env
}

func (*fakeSink) Write(context.Context, []cdc.Event) error { return nil }
func (*fakeSink) Close(context.Context) error              { return nil }

// fakeWebhook is the webhook section of "fake" systems.
type fakeWebhook struct {
	Secrets []string `yaml:"secrets"`
}

func (w *fakeWebhook) Validate() error {
	if len(w.Secrets) == 0 {
		return FieldError{Path: "secrets", Msg: "required"}
	}
	return nil
}

func testRegistry() *Registry {
	r := NewRegistry()
	Register(r, "fake", Type[*fakeConfig]{
		NewConfig: func() *fakeConfig { return &fakeConfig{Rate: fakeRate{Requests: 100, Per: 10 * time.Second}} },
		Sink: func(name string, c *fakeConfig, env Env) (cdc.Sink, error) {
			if err := c.Validate(); err != nil {
				return nil, err
			}
			return &fakeSink{name: name, cfg: c, env: env}, nil
		},
		Webhook: func() Validator { return &fakeWebhook{} },
	})
	// A writer: pipelines to it may map and link records.
	Register(r, "nokeys", Type[*noKeys]{
		NewConfig: func() *noKeys { return &noKeys{} },
		Writer: func(name string, _ *noKeys, env Env) (syncapi.Writer, error) {
			return &fakeWriter{name: name, env: env}, nil
		},
	})
	return r
}

func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// loadString loads src as cdcd.yaml. Tabs at line starts are not YAML, so
// tests write the source indented with two spaces after a leading newline.
func loadString(t *testing.T, src string, env map[string]string) (*Config, error) {
	t.Helper()
	return load("cdcd.yaml", []byte(strings.TrimPrefix(src, "\n")), testRegistry(), envOf(env))
}

// minimal is the smallest valid config.
const minimal = "postgres: {url: 'postgres://localhost/app'}\n"

// defaultPipeline is a pipeline with only its defaults and the given keys.
func defaultPipeline(name, from, to string, line int) *Pipeline {
	p := &Pipeline{}
	p.SetDefaults()
	p.Name, p.From, p.To, p.Line = name, from, to, line
	return p
}
