// Package http is a writer for REST APIs that have no dedicated sink: ERPs,
// point-of-sale and warehouse systems, shops. Each operation is one HTTP
// request whose method, URL and body are configured as templates over the
// record.
//
// The writer sends one record per request (MaxBatch 1): generic APIs have no
// common batch format, and one request per record keeps each record's
// outcome, status and id unambiguous.
//
// Every request carries an idempotency key (the event id), so a record
// resent after a timeout is applied once by APIs that honour the key. A
// DELETE answered 404 or 410 counts as done: the record is already gone.
package http

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Config is the config of the "http" system type.
type Config struct {
	// Create, Update and Delete are the requests for each operation. A
	// record with an external id (a link) is updated, one without is
	// created; when only one of Create and Update is set it serves both.
	// Delete is optional; a delete without it is a permanent error.
	Create *Request `yaml:"create"`
	Update *Request `yaml:"update"`
	Delete *Request `yaml:"delete"`
	// Headers are sent with every request (values may use ${ENV}).
	Headers map[string]string `yaml:"headers"`
	Auth    Auth              `yaml:"auth"`
	// SuccessCodes are the statuses that mean the record was applied.
	// Default: any 2xx.
	SuccessCodes []int `yaml:"success_codes"`
	// IdempotencyHeader names the header that carries the event id.
	// Default "Idempotency-Key"; empty sends none.
	IdempotencyHeader string `yaml:"idempotency_header"`
	// IDPath locates the record's id in a JSON response, as dot-separated
	// keys ("id", "data.id"). Default "id". A response without it keeps the
	// record's known external id.
	IDPath string `yaml:"id_path"`
	// Rate is the request budget of the account.
	Rate ratelimit.Rate `yaml:"rate"`
	// Account names the budget: systems with the same account share one
	// limiter. Default "http:<system name>".
	Account string `yaml:"account"`
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// List, when set, lists the system's records for imports.
	List *List `yaml:"list"`
}

// Request is one operation's HTTP request.
type Request struct {
	// Method is POST, PUT, PATCH or DELETE.
	Method string `yaml:"method"`
	// URL is a text/template over the record: {{.ExternalID}}, {{.Key}},
	// {{.Object}}, {{.EventID}}, {{.Fields.sku}}. Every value is
	// path-escaped unless its pipeline ends in "query" (query escaping) or
	// "raw" (no escaping). A missing field, a null, or an empty value in a
	// path is an error.
	URL string `yaml:"url"`
	// Body is a text/template over the same record, sent as is; "json"
	// renders a value as JSON ({{json .Fields}}). Default: the JSON of
	// Fields for create and update, no body for delete.
	Body string `yaml:"body"`
}

// Auth is how requests authenticate.
type Auth struct {
	// Type is "" (none), "bearer", "basic" or "hmac".
	Type string `yaml:"type"`
	// Token is the bearer token.
	Token string `yaml:"token"`
	// Username and Password are the basic credentials.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Secret is the HMAC-SHA256 key. The signed bytes are the body, or
	// "<timestamp>.<body>" when TimestampHeader is set.
	Secret string `yaml:"secret"`
	// Header receives the signature, Prefix + encoded MAC. Default
	// "X-Signature".
	Header string `yaml:"header"`
	Prefix string `yaml:"prefix"`
	// Encoding is "hex" (default) or "base64".
	Encoding string `yaml:"encoding"`
	// TimestampHeader, when set, receives the Unix time in seconds, which
	// is then part of the signed bytes.
	TimestampHeader string `yaml:"timestamp_header"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config {
	return &Config{
		IdempotencyHeader: "Idempotency-Key",
		IDPath:            "id",
		Rate:              ratelimit.Rate{Requests: 10, Per: time.Second},
		Timeout:           30 * time.Second,
	}
}

func (c *Config) Validate() error {
	var errs []error
	if c.Create == nil && c.Update == nil {
		errs = append(errs, config.FieldError{Msg: "create or update is required"})
	}
	for _, r := range []struct {
		name string
		req  *Request
	}{{"create", c.Create}, {"update", c.Update}, {"delete", c.Delete}} {
		if r.req != nil {
			errs = append(errs, r.req.validate(r.name))
		}
	}
	errs = append(errs, c.Auth.validate())
	for i, code := range c.SuccessCodes {
		if code < 100 || code > 599 {
			errs = append(errs, config.FieldError{Path: fmt.Sprintf("success_codes[%d]", i), Msg: fmt.Sprintf("%d is not an HTTP status", code)})
		}
	}
	if err := c.Rate.Validate(); err != nil {
		errs = append(errs, config.FieldError{Path: "rate", Msg: "requests and per must be positive"})
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.FieldError{Path: "timeout", Msg: "must be positive"})
	}
	if c.List != nil {
		errs = append(errs, c.List.validate())
	}
	return errors.Join(errs...)
}

func (r *Request) validate(path string) error {
	var errs []error
	switch r.Method {
	case "POST", "PUT", "PATCH", "DELETE":
	default:
		errs = append(errs, config.FieldError{Path: path + ".method", Msg: fmt.Sprintf("%q: want POST, PUT, PATCH or DELETE", r.Method)})
	}
	if r.URL == "" {
		errs = append(errs, config.FieldError{Path: path + ".url", Msg: "required"})
	} else if _, err := parseURLTemplate(path+".url", r.URL); err != nil {
		errs = append(errs, config.FieldError{Path: path + ".url", Msg: err.Error()})
	} else if u, err := url.Parse(literalPrefix(r.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, config.FieldError{Path: path + ".url", Msg: "must start with http:// or https:// and a host"})
	}
	if r.Body != "" {
		if _, err := parseBodyTemplate(path+".body", r.Body); err != nil {
			errs = append(errs, config.FieldError{Path: path + ".body", Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// literalPrefix is the text of a template before its first action.
func literalPrefix(tmpl string) string {
	if i := strings.Index(tmpl, "{{"); i >= 0 {
		return tmpl[:i]
	}
	return tmpl
}

func (a *Auth) validate() error {
	req := func(field, v string) error {
		if v == "" {
			return config.FieldError{Path: "auth." + field, Msg: fmt.Sprintf("required for auth type %q", a.Type)}
		}
		return nil
	}
	switch a.Type {
	case "":
		return nil
	case "bearer":
		return req("token", a.Token)
	case "basic":
		return req("username", a.Username)
	case "hmac":
		errs := []error{req("secret", a.Secret)}
		if a.Encoding != "" && a.Encoding != "hex" && a.Encoding != "base64" {
			errs = append(errs, config.FieldError{Path: "auth.encoding", Msg: fmt.Sprintf("%q: want hex or base64", a.Encoding)})
		}
		return errors.Join(errs...)
	}
	return config.FieldError{Path: "auth.type", Msg: fmt.Sprintf("%q: want bearer, basic or hmac", a.Type)}
}

// Register adds the "http" system type to r.
func Register(r *config.Registry) {
	config.Register(r, "http", config.Type[*Config]{
		NewConfig: NewConfig,
		Writer: func(name string, c *Config, env config.Env) (syncapi.Writer, error) {
			return New(name, c, env.Log, env.Limiters)
		},
		Webhook: webhook.Section("http"),
	})
}
