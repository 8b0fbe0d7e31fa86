package hubspot

import (
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Register adds the "hubspot" system type to r. Writers share
// env.Limiters, so systems on one account share one budget.
func Register(r *config.Registry) {
	config.Register(r, "hubspot", config.Type[*Config]{
		NewConfig: NewConfig,
		Writer: func(name string, c *Config, env config.Env) (syncapi.Writer, error) {
			return New(name, c, env.Log, env.Limiters)
		},
		Webhook: webhook.Section("hubspot"),
	})
}
