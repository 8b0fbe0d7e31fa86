package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/goccy/go-yaml/parser"
)

type commonKeys struct {
	Timeout string `yaml:"timeout"`
}

type extended struct {
	commonKeys `yaml:",inline"`
	Addr       netip.Addr        `yaml:"addr"`
	Headers    map[string]string `yaml:"headers"`
	Opt        *struct {
		N int `yaml:"n"`
	} `yaml:"opt"`
	Untagged string
	Skipped  string `yaml:"-"`
}

func decodeString(src string, v any) []Problem {
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		panic(err)
	}
	d := newDecoder("t.yaml", NewRegistry(), envOf(map[string]string{"H": "v"}))
	d.value(f.Docs[0].Body, reflect.ValueOf(v).Elem(), "", 0)
	return d.probs
}

func TestDecodeRules(t *testing.T) {
	t.Parallel()
	var got extended
	probs := decodeString("timeout: 5s\naddr: 10.0.0.1\nheaders: {X-A: '${H}'}\nopt: {n: 2}\nuntagged: u\n", &got)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if got.Timeout != "5s" || got.Addr != netip.MustParseAddr("10.0.0.1") || got.Headers["X-A"] != "v" ||
		got.Opt == nil || got.Opt.N != 2 || got.Untagged != "u" {
		t.Errorf("got %+v", got)
	}

	probs = decodeString("addr: nope\nskipped: x\nopt: {n: 1.5}\n", &extended{})
	want := `[t.yaml:1:7: addr: "nope" is not valid: ParseAddr("nope"): unable to parse IP t.yaml:2:1: skipped: unknown key t.yaml:3:10: opt.n: 1.5 is not an integer]`
	if s := fmt.Sprint(probs); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}
