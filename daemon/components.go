package daemon

import (
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

// Components is the one place that names every plugin.
func Components() *config.Registry {
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
	return r
}
