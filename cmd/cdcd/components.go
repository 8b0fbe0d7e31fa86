package main

import (
	"errors"
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/file"
	httpsink "github.com/cdcd-dev/cdcd/sinks/http"
	"github.com/cdcd-dev/cdcd/sinks/hubspot"
	kafkasink "github.com/cdcd-dev/cdcd/sinks/kafka"
	"github.com/cdcd-dev/cdcd/sinks/pagerduty"
	"github.com/cdcd-dev/cdcd/sinks/salesforce"
	"github.com/cdcd-dev/cdcd/sinks/shopify"
	"github.com/cdcd-dev/cdcd/sinks/slack"
	"github.com/cdcd-dev/cdcd/sinks/smtp"
	"github.com/cdcd-dev/cdcd/transform"
)

// components is the one place that names every plugin.
func components() *config.Registry {
	r := config.NewRegistry()
	file.Register(r)
	httpsink.Register(r)
	hubspot.Register(r)
	kafkasink.Register(r)
	pagerduty.Register(r)
	salesforce.Register(r)
	shopify.Register(r)
	slack.Register(r)
	smtp.Register(r)
	r.Checker(transform.Check)
	r.Checker(refuseInbound)
	return r
}

// refuseInbound rejects pipelines from a system to Postgres: they need the
// webhook intake, which this version does not have, and a pipeline that
// validates but never runs would lose every change it was meant to carry.
func refuseInbound(cfg *config.Config) error {
	var errs []error
	for i, p := range cfg.Pipelines {
		if _, ok := cfg.Systems[p.From]; ok {
			errs = append(errs, config.FieldError{
				Path: fmt.Sprintf("pipelines[%d].from", i),
				Msg:  fmt.Sprintf("pipelines from a system (%q) into Postgres need webhook intake, which this version of cdcd does not have yet; remove the pipeline", p.From),
			})
		}
	}
	return errors.Join(errs...)
}
