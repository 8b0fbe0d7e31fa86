package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
)

func TestRegistryPanics(t *testing.T) {
	t.Parallel()
	spec := SinkSpec{
		NewConfig: func() Validator { return &noKeys{} },
		New:       func(string, Validator, Env) (cdc.Sink, error) { return &fakeSink{}, nil },
	}
	for name, register := range map[string]func(r *Registry){
		"duplicate":  func(r *Registry) { r.Sink("a", spec); r.Sink("a", spec) },
		"empty type": func(r *Registry) { r.Sink("", spec) },
		"no New":     func(r *Registry) { r.Sink("a", SinkSpec{NewConfig: spec.NewConfig}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			register(NewRegistry())
		})
	}
}

func TestNewSink(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	cfg, err := load("cdcd.yaml", []byte(minimal+"systems:\n  crm: {type: fake, url: 'https://crm'}\n"), reg, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	env := Env{Log: zerolog.New(&logs), Source: cdc.SourceInfo{Name: "cdcd"}}
	s, err := cfg.NewSink(reg, "crm", env)
	if err != nil {
		t.Fatal(err)
	}
	fs := s.(*fakeSink)
	if fs.name != "crm" || fs.cfg.URL != "https://crm" || fs.env.Source.Name != "cdcd" {
		t.Errorf("sink built with %+v", fs)
	}
	fs.env.Log.Info().Msg("x")
	if !strings.Contains(logs.String(), `"system":"crm"`) {
		t.Errorf("logger lacks the system name: %s", logs.String())
	}

	if _, err := cfg.NewSink(reg, "nope", env); err == nil || err.Error() != "systems.nope: no such system" {
		t.Errorf("unknown system: %v", err)
	}
	cfg.Systems["crm"].Config.(*fakeConfig).URL = ""
	if _, err := cfg.NewSink(reg, "crm", env); err == nil || err.Error() != "systems.crm: url: required" {
		t.Errorf("invalid config: %v", err)
	}
}

func TestSinkTypes(t *testing.T) {
	t.Parallel()
	if got := strings.Join(testRegistry().SinkTypes(), ","); got != "fake,nokeys" {
		t.Errorf("SinkTypes = %s", got)
	}
}
