package slack

import (
	"errors"
	"net/url"
	"time"

	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/cdcd-dev/cdcd/config"
)

// Config is the config of the "slack" system type: one incoming webhook.
type Config struct {
	// WebhookURL is the incoming webhook, https://hooks.slack.com/services/...
	// It is a secret: it is never logged or quoted in errors.
	WebhookURL string `yaml:"webhook_url"`
	// Text is a Go text/template over the record that renders the message
	// text (mrkdwn), e.g. "Low stock: {{.Fields.sku}} has {{.Fields.qty}} left".
	Text string `yaml:"text"`
	// Blocks, when set, is a template that renders a JSON array of Block
	// Kit blocks; the json function quotes values. Text is then the
	// notification fallback.
	Blocks string `yaml:"blocks"`
	// Rate is the budget shared by every writer using this webhook.
	// Default 1 message per second, Slack's documented limit.
	Rate ratelimit.Rate `yaml:"rate"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{Rate: ratelimit.Rate{Requests: 1, Per: time.Second}, Timeout: 10 * time.Second}
}

// Validate checks the config offline, templates included.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.WebhookURL); c.WebhookURL == "" || err != nil || u.Host == "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, config.FieldError{Path: "webhook_url", Msg: "required: the incoming webhook URL (https://hooks.slack.com/services/...)"})
	}
	if c.Text == "" {
		errs = append(errs, config.FieldError{Path: "text", Msg: "required: a template for the message text"})
	} else if _, err := tmpl.Parse("text", c.Text); err != nil {
		errs = append(errs, config.FieldError{Path: "text", Msg: err.Error()})
	}
	if c.Blocks != "" {
		if _, err := tmpl.Parse("blocks", c.Blocks); err != nil {
			errs = append(errs, config.FieldError{Path: "blocks", Msg: err.Error()})
		}
	}
	if err := c.Rate.Validate(); err != nil {
		errs = append(errs, config.FieldError{Path: "rate", Msg: err.Error()})
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.FieldError{Path: "timeout", Msg: "must be positive"})
	}
	return errors.Join(errs...)
}

// CheckTemplates renders text and blocks over rec and reports those that
// name what rec cannot hold.
func (c *Config) CheckTemplates(rec *syncapi.Record) []config.FieldError {
	return tmpl.CheckRecord(rec, tmpl.Named{Path: "text", Text: c.Text}, tmpl.Named{Path: "blocks", Text: c.Blocks})
}
