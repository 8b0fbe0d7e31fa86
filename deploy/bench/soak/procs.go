package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
)

// cdcdProc is one running cdcd process.
type cdcdProc struct {
	name    string
	listen  string // its http.listen: webhooks (roles capture and all), /metrics
	logPath string
	cmd     *exec.Cmd
	exited  chan error
}

// startCdcd writes the config of one process, cfg with its own listen
// address, and starts `cdcd run --role role` logging into dir.
func startCdcd(bin, dir, name, role string, cfg func(listen string) string) (*cdcdProc, error) {
	listen, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &cdcdProc{name: name, listen: listen, logPath: filepath.Join(dir, name+".log"), exited: make(chan error, 1)}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg(listen)), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	p.cmd = exec.Command(bin, "run", "--config", cfgPath, "--role", role)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.exited <- p.cmd.Wait() }()
	return p, nil
}

// stop sends SIGTERM and waits 30 s before killing.
func (p *cdcdProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// anyExited returns a channel that yields an error, with the process's
// name and its log's end, once any of ps has exited.
func anyExited(ps []*cdcdProc) <-chan error {
	ch := make(chan error, len(ps))
	for _, p := range ps {
		go func() {
			err := <-p.exited
			p.exited <- err // for stop
			ch <- fmt.Errorf("cdcd %s exited: %v\n%s", p.name, err, proc.Tail(p.logPath))
		}()
	}
	return ch
}

// runtime reads go_goroutines and go_memstats_next_gc_bytes (the heap
// size that triggers the next collection: twice the live heap after the
// last one) from the process's /metrics.
func (p *cdcdProc) runtime(ctx context.Context) (goroutines, nextGC int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.listen+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	want := map[string]*int64{"go_goroutines": &goroutines, "go_memstats_next_gc_bytes": &nextGC}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%s of %s: %w", name, p.name, err)
			}
			*dst = int64(f)
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found < len(want) {
		return 0, 0, fmt.Errorf("no go_goroutines or go_memstats_next_gc_bytes in %s's /metrics", p.name)
	}
	return goroutines, nextGC, nil
}

// groupLag is, summed over the consumer groups (each of one topic), how
// many messages of their topics' partitions lie past the group's committed offset, as the
// broker has them (a partition never committed counts from 0), and how
// many partitions that covers.
func groupLag(ctx context.Context, cl *kgo.Client, groups map[string]string) (lag int64, partitions int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for g, topic := range groups {
		committed := map[string]map[int32]int64{}
		of := kmsg.NewPtrOffsetFetchRequest()
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g // no topics: every partition the group committed
		of.Groups = append(of.Groups, rg)
		resp, err := of.RequestWith(ctx, cl)
		if err != nil {
			return 0, 0, fmt.Errorf("offsets of group %s: %w", g, err)
		}
		for _, rg := range resp.Groups {
			if err := kerr.ErrorForCode(rg.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
				continue // nothing committed yet
			} else if err != nil {
				return 0, 0, fmt.Errorf("offsets of group %s: %w", g, err)
			}
			for _, t := range rg.Topics {
				committed[t.Topic] = map[int32]int64{}
				for _, p := range t.Partitions {
					committed[t.Topic][p.Partition] = max(p.Offset, 0)
				}
			}
		}
		ends, err := highWatermarks(ctx, cl, []string{topic})
		if err != nil {
			return 0, 0, err
		}
		for topic, parts := range ends {
			for p, end := range parts {
				lag += end - committed[topic][p]
				partitions++
			}
		}
	}
	return lag, partitions, nil
}

// highWatermarks returns the end of every partition of topics.
func highWatermarks(ctx context.Context, cl *kgo.Client, topics []string) (map[string]map[int32]int64, error) {
	ends := map[string]map[int32]int64{}
	meta := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(t)
		meta.Topics = append(meta.Topics, mt)
	}
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	for _, t := range mresp.Topics {
		if t.Topic == nil || kerr.ErrorForCode(t.ErrorCode) != nil {
			continue
		}
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = *t.Topic
		for _, p := range t.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lp.Timestamp = -1 // the high watermark
			lt.Partitions = append(lt.Partitions, lp)
		}
		lo.Topics = append(lo.Topics, lt)
	}
	lresp, err := lo.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	for _, t := range lresp.Topics {
		ends[t.Topic] = map[int32]int64{}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("offsets of %s[%d]: %w", t.Topic, p.Partition, err)
			}
			ends[t.Topic][p.Partition] = p.Offset
		}
	}
	return ends, nil
}

// createTopics creates topics with 6 partitions (cdcd's default), as an
// operator would before starting the consumer groups: the sinks workers
// then join their groups at once rather than after the first change.
func createTopics(ctx context.Context, cl *kgo.Client, topics []string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, 6, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("create topic %s: %w", t.Topic, err)
		}
	}
	return nil
}

// waitGroups waits until every group is stable with members members.
func waitGroups(ctx context.Context, cl *kgo.Client, groups map[string]string, members int, exited <-chan error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = slices.Collect(maps.Keys(groups))
		resp, err := req.RequestWith(ctx, cl)
		stable := 0
		if err == nil {
			for _, g := range resp.Groups {
				if g.State == "Stable" && len(g.Members) == members {
					stable++
				}
			}
		}
		if stable == len(groups) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the consumer groups %v were not stable with %d members each within 2 minutes (%v)", groups, members, err)
		}
		select {
		case err := <-exited:
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
