package main

import (
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/file"
)

// components is the one place that names every plugin.
func components() *config.Registry {
	r := config.NewRegistry()
	file.Register(r)
	return r
}
