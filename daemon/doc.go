// Package daemon builds cdcd from its config and runs it: it is the
// composition root, the one place that knows how the parts connect.
//
// New reads the config and builds every part once, in dependency order,
// each constructor taking what it needs: the HTTP server and the metrics
// registry, cdcd's state store (opened and migrated only when a part needs
// it), the intake that accepts changes from the systems, the pipelines
// (which may hand records over to that intake), the bus they hang on, the
// replication reader, the Kafka consumers. Nothing is set after it is
// built. Run starts every part, waits until the context ends or one fails,
// then closes what was built, last first, and releases the store.
//
// # Adding a component
//
// A new part of the daemon (a job runner, a health monitor) is one file
// here with one build step, called from New where what it needs exists:
//
//	// jobs.go
//	func (d *Daemon) buildJobs(ctx context.Context) error {
//		st, err := d.openStore(ctx) // cdcd's state store, once per daemon
//		if err != nil {
//			return err
//		}
//		r := jobs.NewRunner(st, d.log, d.metrics)
//		d.admin("GET /api/jobs", r.ListHandler()) // admin API: behind http.admin_token
//		d.ready("jobs", r.Ready)                  // part of /readyz
//		d.runs(r.Run)                             // runs until the daemon stops
//		d.closes(r.Close)                         // after every part stopped, last first
//		return nil
//	}
//
// Build steps validate and allocate; they do not dial (connecting happens
// in the run func). An error in the config is returned as a *ConfigError,
// which cdcd reports with exit status 2.
package daemon
