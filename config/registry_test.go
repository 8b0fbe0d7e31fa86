package config

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
)

func TestRegistryPanics(t *testing.T) {
	t.Parallel()
	sink := Type[*noKeys]{
		NewConfig: func() *noKeys { return &noKeys{} },
		Sink:      func(string, *noKeys, Env) (cdc.Sink, error) { return &fakeSink{}, nil },
	}
	both := sink
	both.Writer = func(string, *noKeys, Env) (syncapi.Writer, error) { return &fakeWriter{}, nil }
	for name, register := range map[string]func(r *Registry){
		"duplicate":            func(r *Registry) { Register(r, "a", sink); Register(r, "a", sink) },
		"empty type":           func(r *Registry) { Register(r, "", sink) },
		"no Sink or Writer":    func(r *Registry) { Register(r, "a", Type[*noKeys]{NewConfig: sink.NewConfig}) },
		"both Sink and Writer": func(r *Registry) { Register(r, "a", both) },
		"no NewConfig":         func(r *Registry) { Register(r, "a", Type[*noKeys]{Sink: sink.Sink}) },
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

// A system's config of another type than its type's (a config built by
// hand) is an error naming both, not a panic.
func TestNewSinkWrongConfigType(t *testing.T) {
	t.Parallel()
	cfg := &Config{Systems: map[string]*System{"crm": {Name: "crm", Type: "fake", Config: &noKeys{}}}}
	_, err := cfg.NewSink(testRegistry(), "crm", Env{})
	if want := "systems.crm: fake: config is *config.noKeys, want *config.fakeConfig"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
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
	if got := strings.Join(testRegistry().SinkTypes(), ","); got != "fake" {
		t.Errorf("SinkTypes = %s", got)
	}
}

type fakeWriter struct {
	name string
	env  Env
}

func (*fakeWriter) Write(context.Context, []syncapi.Record) ([]syncapi.Result, error) {
	return nil, nil
}

func TestWriters(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	Register(reg, "crmx", Type[*fakeConfig]{
		NewConfig: func() *fakeConfig { return &fakeConfig{Rate: fakeRate{Requests: 1, Per: time.Second}} },
		Writer: func(name string, _ *fakeConfig, env Env) (syncapi.Writer, error) {
			return &fakeWriter{name: name, env: env}, nil
		},
	})
	if got := strings.Join(reg.Types(), ","); got != "crmx,fake,nokeys" {
		t.Errorf("Types = %s", got)
	}
	if !reg.IsWriter("crmx") || reg.IsWriter("fake") {
		t.Error("IsWriter")
	}
	src := minimal + "systems:\n  crm: {type: crmx, url: 'https://crm', rate: {per: 2s}}\n  out: {type: fake, url: 'x'}\n  bad: {type: crmz}\n"
	_, err := load("cdcd.yaml", []byte(src), reg, envOf(nil))
	want := `cdcd.yaml:5:15: systems.bad.type: unknown system type "crmz" (did you mean "crmx"?); known types: crmx, fake, nokeys`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	cfg, err := load("cdcd.yaml", []byte(strings.Split(src, "  bad:")[0]), reg, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Systems["crm"].Config.(*fakeConfig); c.URL != "https://crm" || c.Rate.Per != 2*time.Second {
		t.Errorf("writer config %+v", c)
	}
	limiters := ratelimit.NewLimiters()
	w, err := cfg.NewWriter(reg, "crm", Env{Limiters: limiters})
	if err != nil {
		t.Fatal(err)
	}
	if fw := w.(*fakeWriter); fw.name != "crm" || fw.env.Limiters != limiters {
		t.Errorf("writer built with %+v", fw)
	}
	if _, err := cfg.NewWriter(reg, "out", Env{}); err == nil || err.Error() != `systems.out.type: system type "fake" is not a writer` {
		t.Errorf("sink as writer: %v", err)
	}
	if _, err := cfg.NewSink(reg, "crm", Env{}); err == nil || err.Error() != `systems.crm.type: system type "crmx" is not a sink` {
		t.Errorf("writer as sink: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a writer type that is a sink type did not panic")
		}
	}()
	Register(reg, "fake", Type[*noKeys]{NewConfig: func() *noKeys { return &noKeys{} },
		Writer: func(string, *noKeys, Env) (syncapi.Writer, error) { return nil, nil }})
}

// Regression: a pipeline to a file or stdout system ignored its map; such
// systems write rows as captured, so map and link are refused.
func TestSinkPipelinesRefuseMapAndLink(t *testing.T) {
	t.Parallel()
	src := minimal + `systems: {out: {type: fake, url: x}}
pipelines:
  - name: p
    from: contacts
    to: out
    map: {email: email}
    link: {column: external_id}
    columns: {deny: [password_hash]}
    ops: [create]
    filter: after.active
`
	_, err := load("cdcd.yaml", []byte(src), testRegistry(), envOf(nil))
	want := `cdcd.yaml:7:5: pipelines[0].map: a fake system writes each change's row as captured, not a mapped record: remove map, and choose the columns with columns: {allow: [...]} or {deny: [...]}
cdcd.yaml:8:5: pipelines[0].link: a fake system gives records no id to link: remove link`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}
