package smtp

import (
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/cdcd-dev/cdcd/config"
)

// TLS modes.
const (
	TLSNone     = "none"     // plain text; only to a loopback host when authenticating
	TLSStartTLS = "starttls" // upgrade with STARTTLS, refusing servers without it
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// Config is the config of the "smtp" system type: one mail server and one
// message template.
type Config struct {
	Host string `yaml:"host"`
	// Port defaults to 587.
	Port int `yaml:"port"`
	// Username and Password, when set, authenticate with AUTH PLAIN. The
	// password is a secret.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// From is the sender, "Shop <shop@example.com>" or a bare address.
	From string `yaml:"from"`
	// To are templates; each renders one address or a comma-separated list.
	To []string `yaml:"to"`
	// Subject and Body are Go text/templates over the record; Body is
	// sent as text/plain UTF-8.
	Subject string `yaml:"subject"`
	Body    string `yaml:"body"`
	// TLS is starttls (default), tls or none.
	TLS string `yaml:"tls"`
	// Timeout bounds one message's whole exchange. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{Port: 587, TLS: TLSStartTLS, Timeout: 30 * time.Second}
}

// Validate checks the config offline, templates included.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Host == "" {
		bad("host", "required")
	}
	if c.Port <= 0 || c.Port > 65535 {
		bad("port", "%d is not a TCP port", c.Port)
	}
	if (c.Username == "") != (c.Password == "") {
		bad("password", "set both username and password, or neither")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		bad("from", "%q is not an address: %v", c.From, err)
	}
	if len(c.To) == 0 {
		bad("to", "required: at least one recipient")
	}
	for i, to := range c.To {
		if _, err := tmpl.Parse("to", to); err != nil {
			bad(fmt.Sprintf("to[%d]", i), "%v", err)
		}
	}
	if c.Subject == "" {
		bad("subject", "required")
	} else if _, err := tmpl.Parse("subject", c.Subject); err != nil {
		bad("subject", "%v", err)
	}
	if c.Body == "" {
		bad("body", "required")
	} else if _, err := tmpl.Parse("body", c.Body); err != nil {
		bad("body", "%v", err)
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if c.Username != "" && !loopback(c.Host) {
			bad("tls", "none would send the password in clear to %s; use starttls or tls", c.Host)
		}
	default:
		bad("tls", "%q is not none, starttls or tls", c.TLS)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	return errors.Join(errs...)
}

// loopback reports whether net/smtp lets AUTH PLAIN go to host unencrypted.
func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// CheckTemplates renders the recipients, subject and body over rec and
// reports those that name what rec cannot hold.
func (c *Config) CheckTemplates(rec *syncapi.Record) []config.FieldError {
	named := []tmpl.Named{{Path: "subject", Text: c.Subject}, {Path: "body", Text: c.Body}}
	for i, to := range c.To {
		named = append(named, tmpl.Named{Path: fmt.Sprintf("to[%d]", i), Text: to})
	}
	return tmpl.CheckRecord(rec, named...)
}
