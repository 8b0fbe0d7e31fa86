package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/config"

	"github.com/cdcd-dev/cdcd/daemon"
)

// yamlKeys returns the dotted yaml keys of a config struct, nested structs
// included (and the struct's own key).
func yamlKeys(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			if f.Anonymous {
				keys = append(keys, yamlKeys(prefix, f.Type)...)
			}
			continue
		}
		keys = append(keys, prefix+tag)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
			keys = append(keys, yamlKeys(prefix+tag+".", ft)...)
		}
	}
	return keys
}

// docSection returns the text under heading, up to the next heading of
// the same or a higher level.
func docSection(doc, heading string) (string, bool) {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return "", false
	}
	rest := doc[i+len(heading)+2:]
	level := strings.Fields(heading)[0]
	for ; level != ""; level = level[1:] {
		if j := strings.Index(rest, "\n"+level+" "); j >= 0 {
			rest = rest[:j]
		}
	}
	return rest, true
}

// Every key of every system type is in docs/config.md, under the type's
// heading: a config key added without its reference fails here.
func TestConfigReferenceNamesEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	r := daemon.Components()
	for _, typ := range r.Types() {
		cfg, _ := r.NewConfig(typ)
		heading := "### `type: " + typ + "`"
		section, ok := docSection(doc, heading)
		if !ok {
			t.Errorf("docs/config.md has no section %s", heading)
			continue
		}
		for _, key := range yamlKeys("", reflect.TypeOf(cfg)) {
			if !strings.Contains(section, "`"+key+"`") {
				t.Errorf("docs/config.md, %s: key `%s` is not documented", heading, key)
			}
		}
	}
	// Webhook sections document their keys in one table, nested keys by
	// their own name.
	webhooks, ok := docSection(doc, "### `webhook` (a system's deliveries to cdcd)")
	if !ok {
		t.Fatal("docs/config.md has no webhook section")
	}
	for _, typ := range r.Types() {
		cfg, ok := r.WebhookConfig(typ)
		if !ok {
			continue
		}
		for _, key := range yamlKeys("", reflect.TypeOf(cfg)) {
			leaf := key[strings.LastIndex(key, ".")+1:]
			if !strings.Contains(webhooks, "`"+leaf+"`") {
				t.Errorf("docs/config.md, webhook section: key `%s` of type %s is not documented", key, typ)
			}
		}
	}
}

// Every key of cdcd's own sections with a reference table is in
// docs/config.md under the section's heading (a rule's levels, degraded
// and unhealthy, once for all).
func TestConfigReferenceNamesOwnKeys(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for heading, typ := range map[string]reflect.Type{
		"## `health`": reflect.TypeFor[config.Health](),
		"## `http`":   reflect.TypeFor[config.HTTP](),
		"## `log`":    reflect.TypeFor[config.Log](),
		"## `audit`":  reflect.TypeFor[config.Audit](),
		"## `jobs`":   reflect.TypeFor[config.Jobs](),
		"## `retention`: how long cdcd's rows stay": reflect.TypeFor[config.Retention](),
	} {
		section, ok := docSection(doc, heading)
		if !ok {
			t.Errorf("docs/config.md has no section %s", heading)
			continue
		}
		for _, key := range yamlKeys("", typ) {
			if leaf := key[strings.LastIndex(key, ".")+1:]; leaf == "degraded" || leaf == "unhealthy" {
				key = leaf
			}
			if !strings.Contains(section, "`"+key+"`") {
				t.Errorf("docs/config.md, %s: key `%s` is not documented", heading, key)
			}
		}
	}
}
