package kafka

import (
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Register adds the "kafka" system type to r.
func Register(r *config.Registry) {
	config.Register(r, "kafka", config.Type[*Config]{
		NewConfig: DefaultConfig,
		Writer: func(name string, c *Config, env config.Env) (syncapi.Writer, error) {
			return New(name, c, env)
		},
	})
}
