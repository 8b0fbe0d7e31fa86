// Package file is a sink that writes each event as one line of JSON, the
// Debezium envelope, to a file or to standard output.
//
// Two system types use it: "file" appends to a file (or to standard output
// when path is "-"), "stdout" writes to standard output and takes no keys.
package file

import (
	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// Config is the config of the "file" system type.
type Config struct {
	// Path is the file to append to, created with mode 0644 if missing.
	// "-" means standard output.
	Path string `yaml:"path"`
	// Fsync makes Write return only after the batch is on disk, which is
	// what makes an acknowledged event survive a crash. Default true.
	// Standard output is never synced.
	Fsync bool `yaml:"fsync"`
}

func (c *Config) Validate() error {
	if c.Path == "" {
		return config.FieldError{Path: "path", Msg: `required (a file, or "-" for standard output)`}
	}
	return nil
}

// StdoutConfig is the config of the "stdout" system type: it has no keys.
type StdoutConfig struct{}

func (*StdoutConfig) Validate() error { return nil }

// Register adds the "file" and "stdout" system types to r.
func Register(r *config.Registry) {
	config.Register(r, "file", config.Type[*Config]{
		NewConfig: func() *Config { return &Config{Fsync: true} },
		Sink: func(name string, c *Config, env config.Env) (cdc.Sink, error) {
			if err := c.Validate(); err != nil {
				return nil, err
			}
			if c.Path == "-" {
				return newStdout(env), nil
			}
			return newFile(c.Path, c.Fsync, env), nil
		},
	})
	config.Register(r, "stdout", config.Type[*StdoutConfig]{
		NewConfig: func() *StdoutConfig { return &StdoutConfig{} },
		Sink: func(name string, _ *StdoutConfig, env config.Env) (cdc.Sink, error) {
			return newStdout(env), nil
		},
	})
}

// NewStdout returns a sink that writes to env.Stdout (os.Stdout if nil),
// for when no system is configured.
func NewStdout(env config.Env) cdc.Sink {
	return newStdout(env)
}
