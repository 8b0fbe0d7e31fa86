// Package salesforce writes records to Salesforce through its REST API:
// upserts by external id through sObject Collections (up to 200 records
// per call), deletes by record id.
//
// Every call sends "Sforce-Call-Options: client=<client_id>", which
// Salesforce copies into the changeOrigin of Change Data Capture events, so
// that changes cdcd made can be told from others when they come back.
package salesforce

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Config is the config of the "salesforce" system type.
type Config struct {
	// LoginURL is where tokens are requested (<login_url>/services/oauth2/token):
	// the org's My Domain URL for client credentials, or
	// https://login.salesforce.com (https://test.salesforce.com for
	// sandboxes). Default https://login.salesforce.com.
	LoginURL string `yaml:"login_url"`
	// InstanceURL, when set, is where API calls go instead of the
	// instance_url of the token response.
	InstanceURL string `yaml:"instance_url"`
	// APIVersion is the REST API version. Default "v60.0".
	APIVersion string `yaml:"api_version"`
	Auth       Auth   `yaml:"auth"`
	// Object is the sObject type written: Contact, Account, Order__c, ...
	// A record whose Object is set overrides it.
	Object string `yaml:"object"`
	// ExternalIDField is the external id field upserts match on; each
	// record's Fields must hold its value.
	ExternalIDField string `yaml:"external_id_field"`
	// ClientID is sent as Sforce-Call-Options: client=<ClientID> (not the
	// OAuth consumer key, which is auth.client_id). Default "cdcd".
	ClientID string `yaml:"client_id"`
	// Rate is the request budget of the account.
	Rate ratelimit.Rate `yaml:"rate"`
	// Account names the budget: systems with the same account share one
	// limiter. Default "salesforce:<host of instance_url or login_url>".
	Account string `yaml:"account"`
	// Timeout bounds each HTTP call. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// LimitBackoff is how long every call of the account waits after
	// Salesforce reports the daily API allocation exhausted. Default 15m.
	LimitBackoff time.Duration `yaml:"limit_backoff"`
	// Import is how imports (cdcd import) list records.
	Import Import `yaml:"import"`
}

// Import is how an import lists an object: SOQL queries of 2,000 records
// in Id order, or a Bulk API 2.0 query job for many records (see
// listBulk).
type Import struct {
	// Bulk makes every import a Bulk API 2.0 query job.
	Bulk bool `yaml:"bulk"`
	// BulkAbove, when set, makes an import a query job when SELECT COUNT()
	// finds more records than this. Default 0 (only with bulk).
	BulkAbove int `yaml:"bulk_above"`
	// BulkPage is the records of one set of a job's results (maxRecords).
	// Default 10000.
	BulkPage int `yaml:"bulk_page"`
	// BulkPoll is the longest wait between two reads of a running job's
	// state. Default 10s.
	BulkPoll time.Duration `yaml:"bulk_poll"`
}

// Auth is the OAuth flow of a connected app.
type Auth struct {
	// Type is "client_credentials" or "jwt" (the JWT bearer flow).
	Type string `yaml:"type"`
	// ClientID is the connected app's consumer key.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the consumer secret (client_credentials).
	ClientSecret string `yaml:"client_secret"`
	// PrivateKey (PEM) or PrivateKeyFile is the RSA key that signs JWT
	// assertions; the connected app holds its certificate.
	PrivateKey     string `yaml:"private_key"`
	PrivateKeyFile string `yaml:"private_key_file"`
	// Username is the user the JWT flow acts as (the sub claim).
	Username string `yaml:"username"`
	// Audience is the aud claim. Default https://test.salesforce.com when
	// login_url is a test or sandbox URL, else https://login.salesforce.com.
	Audience string `yaml:"audience"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config {
	return &Config{
		LoginURL:     "https://login.salesforce.com",
		APIVersion:   "v60.0",
		ClientID:     "cdcd",
		Rate:         ratelimit.Rate{Requests: 25, Per: time.Second},
		Timeout:      60 * time.Second,
		LimitBackoff: 15 * time.Minute,
		Import:       Import{BulkPage: 10000, BulkPoll: 10 * time.Second},
	}
}

var (
	versionRE = regexp.MustCompile(`^v\d+\.\d$`)
	nameRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

func (c *Config) Validate() error {
	var errs []error
	add := func(path, msg string) { errs = append(errs, config.FieldError{Path: path, Msg: msg}) }
	for _, u := range []struct{ path, v string }{{"login_url", c.LoginURL}, {"instance_url", c.InstanceURL}} {
		if u.v == "" && u.path == "instance_url" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			add(u.path, "must be an http(s) URL such as https://mydomain.my.salesforce.com")
		}
	}
	if !versionRE.MatchString(c.APIVersion) {
		add("api_version", fmt.Sprintf("%q: want vNN.N, such as v60.0", c.APIVersion))
	}
	if !nameRE.MatchString(c.Object) {
		add("object", "required: the sObject API name, such as Contact")
	}
	if !nameRE.MatchString(c.ExternalIDField) {
		add("external_id_field", "required: the API name of an external id field, such as Ext_Id__c")
	}
	if c.ClientID == "" {
		add("client_id", "required (the Sforce-Call-Options client name)")
	}
	if err := c.Rate.Validate(); err != nil {
		add("rate", "requests and per must be positive")
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive")
	}
	if c.LimitBackoff <= 0 {
		add("limit_backoff", "must be positive")
	}
	if c.Import.BulkAbove < 0 {
		add("import.bulk_above", "must not be negative")
	}
	if c.Import.BulkPage < 1 || c.Import.BulkPage > 1_000_000 {
		add("import.bulk_page", "must be 1 to 1000000")
	}
	if c.Import.BulkPoll < bulkPollMin {
		add("import.bulk_poll", "must be at least 250ms")
	}
	a := c.Auth
	if a.ClientID == "" {
		add("auth.client_id", "required: the connected app's consumer key")
	}
	switch a.Type {
	case "client_credentials":
		if a.ClientSecret == "" {
			add("auth.client_secret", "required for client_credentials")
		}
	case "jwt":
		if (a.PrivateKey == "") == (a.PrivateKeyFile == "") {
			add("auth.private_key", "set one of private_key and private_key_file")
		}
		if a.Username == "" {
			add("auth.username", "required for jwt")
		}
	default:
		add("auth.type", fmt.Sprintf("%q: want client_credentials or jwt", a.Type))
	}
	return errors.Join(errs...)
}

// Register adds the "salesforce" system type to r.
func Register(r *config.Registry) {
	config.Register(r, "salesforce", config.Type[*Config]{
		NewConfig: NewConfig,
		Writer: func(name string, c *Config, env config.Env) (syncapi.Writer, error) {
			return New(name, c, env.Log, env.Limiters)
		},
		Webhook: webhook.Section("salesforce"),
	})
}
