package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// result is one capture run over a workload's WAL.
type result struct {
	elapsed time.Duration
	peakRSS int64         // bytes (cdcd only)
	cpu     time.Duration // user+system (cdcd only)
	// walsender is the CPU time of the walsender that decoded for the
	// reader; bench that of the bench process (kfake) during the run.
	walsender, bench time.Duration
}

// recvlogical streams the slot with pg_recvlogical to /dev/null until it
// reaches end.
func (b *bench) recvlogical(ctx context.Context, slot, pub, end string) (result, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.pg.BinDir(), "pg_recvlogical"),
		"-d", b.pg.URL("postgres"), "--slot", slot, "--start", "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+pub,
		"--endpos", end, "-f", "/dev/null")
	watch, err := b.watchCPU(ctx, slot)
	if err != nil {
		return result{}, err
	}
	began := time.Now()
	out, err := cmd.CombinedOutput()
	res := result{elapsed: time.Since(began)}
	res.walsender, res.bench = watch.finish()
	if err != nil {
		return result{}, fmt.Errorf("pg_recvlogical: %v: %s", err, out)
	}
	return res, nil
}

// cdcdConfig is the generated config of one cdcd run.
const cdcdConfig = `postgres:
  url: %q
  slot: %s
  publication: %s
  tables: [public.%s]
  status_interval: %s
  heartbeat: 0s
kafka:
  brokers: [%s]%s
http:
  listen: %s
log:
  level: warn
`

// httpPipeline attaches one generic HTTP pipeline (a consumer group in the
// same process, in Kafka mode) posting every change to a no-op endpoint.
const httpPipeline = `systems:
  noop:
    type: http
    create: {method: POST, url: "%s/items"}
    rate: {requests: 1000000, per: 1s}
pipelines:
  - {name: noop, from: public.%s, to: noop}
`

// statusInterval is how often cdcd confirms to the server in these runs:
// the slot's confirmed_flush_lsn, which stops the clock, trails cdcd's acks
// by up to this much.
const statusInterval = 100 * time.Millisecond

// cdcd runs the cdcd binary on the slot until the slot is confirmed at end,
// then samples the process and stops it.
func (b *bench) cdcd(ctx context.Context, w workload, slot, pub, end string) (result, error) {
	listen, err := proc.FreeAddr()
	if err != nil {
		return result{}, err
	}
	cfgPath := filepath.Join(b.dir, "cdcd-"+w.name+".yaml")
	cfg := fmt.Sprintf(cdcdConfig, b.pg.URL("postgres"), slot, pub, w.table, statusInterval, strings.Join(b.brokers, ", "), b.kafkaExtra, listen)
	if b.noop != nil {
		cfg += fmt.Sprintf(httpPipeline, b.noop.url, w.table)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}
	logPath := filepath.Join(b.dir, "cdcd-"+w.name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logFile.Close()

	cmd := exec.Command(b.cdcdBin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if b.profileDir != "" {
		cmd.Env = append(cmd.Env, "CDCD_CPUPROFILE="+filepath.Join(b.profileDir, "cdcd-"+w.name+".pprof"))
	}
	watch, err := b.watchCPU(ctx, slot)
	if err != nil {
		return result{}, err
	}
	defer watch.finish()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start cdcd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("cdcd did not stop within 30s of SIGTERM")
		}
	}

	done, err := b.waitConfirmed(ctx, slot, end, exited)
	if err != nil {
		_ = stop()
		return result{}, fmt.Errorf("%w\ncdcd log (%s):\n%s", err, logPath, proc.Tail(logPath))
	}
	res := result{elapsed: done.Sub(began)}
	res.walsender, res.bench = watch.finish()
	if res.peakRSS, err = proc.PeakRSS(cmd.Process.Pid); err == nil {
		res.cpu, err = proc.CPUTime(cmd.Process.Pid)
	}
	if serr := stop(); serr != nil && err == nil {
		err = fmt.Errorf("stop cdcd: %w\n%s", serr, proc.Tail(logPath))
	}
	return res, err
}

// waitConfirmed polls the slot until its confirmed_flush_lsn reaches end
// and returns when it saw that. It fails if cdcd exits first.
func (b *bench) waitConfirmed(ctx context.Context, slot, end string, exited <-chan error) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var done bool
		err := b.poll.QueryRow(ctx,
			"SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1",
			slot, end).Scan(&done)
		now := time.Now()
		if err != nil {
			return now, fmt.Errorf("poll slot %s: %w", slot, err)
		}
		if done {
			return now, nil
		}
		select {
		case err := <-exited:
			return now, fmt.Errorf("cdcd exited before confirming %s: %v", end, err)
		case <-ctx.Done():
			return now, fmt.Errorf("slot %s not confirmed at %s: %w", slot, end, ctx.Err())
		case <-tick.C:
		}
	}
}
