package pagerduty

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/cdcd-dev/cdcd/config"
)

// Actions of the Events API.
const (
	ActionTrigger     = "trigger"
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
	// ActionAuto triggers on create, update and read (snapshot) and
	// resolves on delete, so deleting the record resolves its alert.
	ActionAuto = "auto"
)

// DefaultDedupKey names the alert after the record: the same record
// resolves what it triggered.
const DefaultDedupKey = "{{.Schema}}.{{.Table}}/{{.Key}}"

// Config is the config of the "pagerduty" system type: one Events API v2
// integration.
type Config struct {
	// URL is the enqueue endpoint. Default https://events.pagerduty.com/v2/enqueue.
	URL string `yaml:"url"`
	// RoutingKey is the integration key (32 characters). It is a secret.
	RoutingKey string `yaml:"routing_key"`
	// Action is auto (default), trigger, acknowledge or resolve.
	Action string `yaml:"action"`
	// ActionField, when set, names the mapped field that holds the action
	// (trigger, acknowledge or resolve) of each record, typically computed
	// by a mapping expression; it overrides Action. A record without a
	// valid value in it is dead-lettered.
	ActionField string `yaml:"action_field"`
	// DedupKey is a template for the alert's dedup key. Keys over 255
	// characters are replaced by their SHA-256. Default DefaultDedupKey.
	DedupKey string `yaml:"dedup_key"`
	// Summary (required), Source, Severity, Component, Group and Class are
	// templates for the payload's fields. Summary is cut to 1024
	// characters. Source defaults to "cdcd", Severity to "error"; a
	// severity other than critical, error, warning or info is
	// dead-lettered. The payload's custom_details are the mapped fields.
	Summary   string `yaml:"summary"`
	Source    string `yaml:"source"`
	Severity  string `yaml:"severity"`
	Component string `yaml:"component"`
	Group     string `yaml:"group"`
	Class     string `yaml:"class"`
	// Rate is the budget shared by every writer using the routing key.
	// Default 120 per minute.
	Rate ratelimit.Rate `yaml:"rate"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{
		URL:      "https://events.pagerduty.com/v2/enqueue",
		Action:   ActionAuto,
		DedupKey: DefaultDedupKey,
		Source:   "cdcd",
		Severity: "error",
		Rate:     ratelimit.Rate{Requests: 120, Per: time.Minute},
		Timeout:  10 * time.Second,
	}
}

// Validate checks the config offline, templates included.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if u, err := url.Parse(c.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		bad("url", "%q is not an http(s) URL", c.URL)
	}
	if len(c.RoutingKey) != 32 {
		bad("routing_key", "required: the integration's 32-character routing key (got %d characters)", len(c.RoutingKey))
	}
	switch c.Action {
	case ActionAuto, ActionTrigger, ActionAcknowledge, ActionResolve:
	default:
		bad("action", "%q is not auto, trigger, acknowledge or resolve", c.Action)
	}
	if c.Summary == "" {
		bad("summary", "required: a template for the alert summary")
	}
	for _, t := range c.templates() {
		if t.required && t.text == "" && t.path != "summary" {
			bad(t.path, "required")
		} else if _, err := tmpl.Parse(t.path, t.text); err != nil {
			bad(t.path, "%v", err)
		}
	}
	if err := c.Rate.Validate(); err != nil {
		bad("rate", "%v", err)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	return errors.Join(errs...)
}

type templateSpec struct {
	path, text string
	required   bool
}

func (c *Config) templates() []templateSpec {
	return []templateSpec{
		{"dedup_key", c.DedupKey, true},
		{"summary", c.Summary, true},
		{"source", c.Source, true},
		{"severity", c.Severity, true},
		{"component", c.Component, false},
		{"group", c.Group, false},
		{"class", c.Class, false},
	}
}

// CheckTemplates renders every template over rec and reports those that
// name what rec cannot hold.
func (c *Config) CheckTemplates(rec *syncapi.Record) []config.FieldError {
	var named []tmpl.Named
	for _, t := range c.templates() {
		named = append(named, tmpl.Named{Path: t.path, Text: t.text})
	}
	return tmpl.CheckRecord(rec, named...)
}
