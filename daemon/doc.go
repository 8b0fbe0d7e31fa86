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
// here with one build step, called from New where what it needs exists
// (jobs.go and health.go are two):
//
//	// backups.go
//	func (d *Daemon) buildBackups(ctx context.Context) error {
//		st, err := d.openStore(ctx) // cdcd's state store, once per daemon
//		if err != nil {
//			return err
//		}
//		b := backups.New(st, d.log, d.metrics)
//		d.admin("GET /api/backups", b)    // admin API: behind http.admin_token
//		d.ready("backups", b.Ready)       // part of /readyz
//		d.runs(b.Run)                     // runs until the daemon stops
//		d.closes(b.Close)                 // after every part stopped, last first
//		return nil
//	}
//
// Build steps validate and allocate; the only connection they make is
// cdcd's store (openStore). Systems, Kafka and the replication stream are
// reached from the run funcs. An error in the config is returned as a *ConfigError,
// which cdcd reports with exit status 2.
package daemon
