package hubspot

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"defaults with a token", func(c *Config) {}, nil},
		{"no token", func(c *Config) { c.Token = "" }, []string{"token"}},
		{"everything wrong", func(c *Config) {
			c.BaseURL = "ftp://x"
			c.ObjectsPath = "crm"
			c.Object = "con tacts"
			c.IDProperty = "e mail"
			c.OnDelete = "purge"
			c.Rate = ratelimit.Rate{}
			c.Timeout = -time.Second
		}, []string{"base_url", "objects_path", "object", "id_property", "on_delete", "rate.requests", "rate.per", "timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			c.Token = "t"
			tc.edit(c)
			var got []string
			for _, e := range flatten(c.Validate()) {
				var fe config.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a FieldError", e)
				}
				got = append(got, fe.Path)
			}
			if !slices.Equal(got, tc.paths) {
				t.Fatalf("problems at %v, want %v", got, tc.paths)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	r := config.NewRegistry()
	Register(r)
	if !r.IsWriter("hubspot") {
		t.Fatal("hubspot is not a registered writer")
	}
}

func TestProperties(t *testing.T) {
	t.Parallel()
	got, err := properties(map[string]any{
		"s": "x", "n": float64(1234567890123), "f": 0.5, "b": false, "null": nil,
		"multi": []any{"a", "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "x", "n": "1234567890123", "f": "0.5", "b": "false", "null": "", "multi": "a;b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := properties(map[string]any{"secret": map[string]any{"k": "v"}}); err == nil {
		t.Fatal("a nested object was accepted")
	}
}
