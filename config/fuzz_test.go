package config

import (
	"errors"
	"testing"
)

func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		fullExample,
		minimal,
		"",
		"- a\n",
		"a: &x [*x]\n",
		"postgres: {<<: *a}\n",
		"systems: {a: {<<: [*a, *b]}, b: &b {type: fake}}\n",
		"postgres:\n  url: ${X:-${Y}}\n  heartbeat: ${X}\n",
		"pipelines: [{name: a, from: b, to: c}, ~, [x]]\n",
		"? [a]\n: b\n",
		"kafka: !!map {brokers: !!seq [a]}\n",
		"a: |\n  ${X}\n---\nb: 1\n",
		pipelineSrc,
		"pipelines: [{map: {a: {const: [1]}, b: {expr: ~}, c: {const: .inf}}, lookups: [~, {cache: ~}]}]\n",
	} {
		f.Add([]byte(seed))
	}
	reg := testRegistry()
	env := envOf(map[string]string{"X": "1", "DATABASE_URL": "postgres://h/db"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := load("f.yaml", data, reg, env)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var errs *Errors
		if errors.As(err, &errs) && len(errs.Problems) == 0 {
			t.Fatal("*Errors without problems")
		}
	})
}
