package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

var src = cdc.SourceInfo{Name: "cdcd", DB: "app", Version: "1.2.3"}

func testEnv(t *testing.T, stdout *bytes.Buffer) config.Env {
	env := config.Env{Log: zerolog.New(zerolog.NewTestWriter(t)), Source: src}
	if stdout != nil {
		env.Stdout = stdout
	}
	return env
}

func events() []cdc.Event {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	pos := func(i uint32) cdc.Position { return cdc.Position{CommitLSN: 0x16B3748, Index: i} }
	return []cdc.Event{
		{Op: cdc.OpCreate, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts", CommitTime: at, Pos: pos(0), TxID: 7,
			Key:   cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}},
			After: cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}, {Name: "email", Value: json.RawMessage(`"a@b.c"`)}}},
		{Op: cdc.OpUpdate, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts", CommitTime: at, Pos: pos(1), TxID: 7,
			Before: cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}},
			After:  cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}, {Name: "email", Value: json.RawMessage("null")}}},
		{Op: cdc.OpDelete, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts", CommitTime: at, Pos: pos(2), TxID: 7,
			Before: cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}}},
	}
}

type envelope struct {
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source struct {
		Name, DB, Version, Schema, Table string
		LSN                              uint64 `json:"lsn"`
		Index                            uint64 `json:"index"`
	} `json:"source"`
	Op string `json:"op"`
}

// parseLines decodes every line of out as an envelope, strictly.
func parseLines(t *testing.T, out []byte) []envelope {
	t.Helper()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	var envs []envelope
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e envelope
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		envs = append(envs, e)
	}
	return envs
}

func checkEvents(t *testing.T, envs []envelope) {
	t.Helper()
	if len(envs) != 3 {
		t.Fatalf("got %d lines, want 3", len(envs))
	}
	for i, want := range []struct {
		op            string
		before, after map[string]any
	}{
		{"c", nil, map[string]any{"id": 1.0, "email": "a@b.c"}},
		{"u", map[string]any{"id": 1.0}, map[string]any{"id": 1.0, "email": nil}},
		{"d", map[string]any{"id": 1.0}, nil},
	} {
		e := envs[i]
		if e.Op != want.op || !reflect.DeepEqual(e.Before, want.before) || !reflect.DeepEqual(e.After, want.after) {
			t.Errorf("line %d: op %q before %v after %v; want %q %v %v", i, e.Op, e.Before, e.After, want.op, want.before, want.after)
		}
		if s := e.Source; s.Name != "cdcd" || s.DB != "app" || s.Version != "1.2.3" || s.Table != "contacts" ||
			s.LSN != 0x16B3748 || s.Index != uint64(i) {
			t.Errorf("line %d: source %+v", i, s)
		}
	}
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s, err := newSink("file", &Config{Path: path, Fsync: true}, testEnv(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the constructor touched the file: %v", err)
	}
	evs := events()
	if err := s.Write(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, evs[1:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, parseLines(t, out))
	info, _ := os.Stat(path)
	if perm := info.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Errorf("mode %v, want 0644 less the umask", perm)
	}
	if err := s.Write(ctx, evs); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// The sink appends to what the file holds. A process killed during a
// write leaves a torn last line; the next one to open the file cuts it
// off (its events were not acknowledged, so they come again) rather than
// append to it: every line stays an event.
func TestAppends(t *testing.T) {
	t.Parallel()
	line := `{"before":null,"after":{"id":1},"source":{},"op":"c"}` + "\n"
	for name, content := range map[string]string{
		"after whole lines":  line,
		"cutting torn lines": line + `{"before":null,"after":{"id":2},"sou`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "events.jsonl")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := newSink("file", &Config{Path: path}, testEnv(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), events()); err != nil {
				t.Fatal(err)
			}
			s.Close(context.Background())
			out, _ := os.ReadFile(path)
			if !bytes.HasPrefix(out, []byte(line)) {
				t.Fatalf("the whole line before lost: %q", out)
			}
			checkEvents(t, parseLines(t, out[len(line):]))
		})
	}
}

// fakeOutput records what the sink does to its file.
type fakeOutput struct {
	data     []byte
	writes   int
	syncs    int
	syncErr  error
	writeErr error
	failOn   int // with writeErr, the write that fails (1 the first); 0: all
	closed   bool
}

func (f *fakeOutput) Write(p []byte) (int, error) {
	f.writes++
	if f.writeErr != nil && (f.failOn == 0 || f.failOn == f.writes) {
		n := len(p) / 2
		f.data = append(f.data, p[:n]...)
		return n, f.writeErr
	}
	f.data = append(f.data, p...)
	return len(p), nil
}
func (f *fakeOutput) Sync() error               { f.syncs++; return f.syncErr }
func (f *fakeOutput) Truncate(size int64) error { f.data = f.data[:size]; return nil }
func (f *fakeOutput) Close() error              { f.closed = true; return nil }

func fakeSink(t *testing.T, fsync bool) (*sink, *fakeOutput) {
	out := &fakeOutput{data: []byte("old\n")}
	s := newFile("/fake/events.jsonl", fsync, testEnv(t, nil))
	s.open = func(string, bool) (output, int64, error) { return out, int64(len(out.data)), nil }
	return s, out
}

func TestFsync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, fsync := range []bool{true, false} {
		s, out := fakeSink(t, fsync)
		for range 3 {
			if err := s.Write(ctx, events()); err != nil {
				t.Fatal(err)
			}
		}
		if want := map[bool]int{true: 3, false: 0}[fsync]; out.syncs != want {
			t.Errorf("fsync %v: %d syncs, want %d", fsync, out.syncs, want)
		}
		if err := s.Close(ctx); err != nil || !out.closed {
			t.Errorf("Close: %v, closed %v", err, out.closed)
		}
	}
}

// A failed write or fsync must not leave a torn line for the retry to
// append to.
func TestFailedWriteRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	boom := errors.New("boom")
	for name, fail := range map[string]func(*fakeOutput){
		"write": func(o *fakeOutput) { o.writeErr = boom },
		"fsync": func(o *fakeOutput) { o.syncErr = boom },
	} {
		s, out := fakeSink(t, true)
		if err := s.Write(ctx, events()[:1]); err != nil {
			t.Fatal(err)
		}
		good := string(out.data)
		fail(out)
		if err := s.Write(ctx, events()); !errors.Is(err, boom) {
			t.Fatalf("%s: got %v, want boom", name, err)
		}
		if string(out.data) != good {
			t.Errorf("%s: file not rolled back: %q", name, out.data)
		}
		out.writeErr, out.syncErr = nil, nil
		if err := s.Write(ctx, events()[1:]); err != nil {
			t.Fatal(err)
		}
		checkEvents(t, parseLines(t, out.data[len("old\n"):]))
	}
}

// A synced batch of more than pieceBytes is written in pieces and synced
// once; a piece that fails rolls back the pieces before it.
func TestLargeBatchInPieces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wide := json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)
	batch := make([]cdc.Event, 3000) // about 3 MB of lines
	for i := range batch {
		batch[i] = cdc.Event{Op: cdc.OpRead, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts",
			Pos: cdc.Position{CommitLSN: 1, Index: uint32(i)}, Key: cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}},
			After: cdc.Row{{Name: "id", Value: json.RawMessage(`1`)}, {Name: "note", Value: wide}}}
	}
	s, out := fakeSink(t, true)
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if out.writes < 3 || out.syncs != 1 {
		t.Errorf("%d writes and %d syncs, want 3 or more and 1", out.writes, out.syncs)
	}
	if n := len(parseLines(t, out.data[len("old\n"):])); n != len(batch) {
		t.Errorf("%d lines, want %d", n, len(batch))
	}
	good := string(out.data)
	out.writes, out.failOn, out.writeErr = 0, 2, errors.New("boom")
	if err := s.Write(ctx, batch); err == nil {
		t.Fatal("a failed piece did not fail the Write")
	}
	if string(out.data) != good {
		t.Errorf("file not rolled back: %d bytes, want %d", len(out.data), len(good))
	}
	if out.writes != 2 || out.syncs != 1 {
		t.Errorf("after the failed piece: %d writes and %d syncs, want 2 and 1 (none after the failure)", out.writes, out.syncs)
	}
	out.writeErr = nil // the retry: whole again, after the batch before
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out.data), good) {
		t.Error("the retry changed what the batch before wrote")
	}
	if n := len(parseLines(t, out.data[len(good):])); n != len(batch) {
		t.Errorf("the retry wrote %d lines, want %d", n, len(batch))
	}
}

func TestStdout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, build := range map[string]func(config.Env) (cdc.Sink, error){
		"stdout type": func(env config.Env) (cdc.Sink, error) { return newSink("stdout", &StdoutConfig{}, env) },
		"path -": func(env config.Env) (cdc.Sink, error) {
			return newSink("file", &Config{Path: "-", Fsync: true}, env)
		},
		"NewStdout": func(env config.Env) (cdc.Sink, error) { return NewStdout(env), nil },
	} {
		var stdout bytes.Buffer
		s, err := build(testEnv(t, &stdout))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, events()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		checkEvents(t, parseLines(t, stdout.Bytes()))
	}
}

func TestConfigLoad(t *testing.T) {
	t.Parallel()
	reg := config.NewRegistry()
	Register(reg)
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte("postgres: {url: 'postgres://h/db'}\nsystems:\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	write("  a: {type: file, path: /tmp/a.jsonl}\n  b: {type: file, path: /tmp/b.jsonl, fsync: false}\n  c: {type: stdout}\n")
	cfg, err := config.Load(path, reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := *cfg.Systems["a"].Config.(*Config); got != (Config{Path: "/tmp/a.jsonl", Fsync: true}) {
		t.Errorf("a: %+v", got)
	}
	if got := *cfg.Systems["b"].Config.(*Config); got != (Config{Path: "/tmp/b.jsonl", Fsync: false}) {
		t.Errorf("b: %+v", got)
	}
	if _, err := cfg.NewSink(reg, "c", testEnv(t, &bytes.Buffer{})); err != nil {
		t.Error(err)
	}

	write("  a: {type: file}\n  b: {type: file, path: x, fsync: maybe}\n  c: {type: stdout, path: x}\n")
	_, err = config.Load(path, reg)
	want := strings.Join([]string{
		path + `:3:3: systems.a.path: required (a file, or "-" for standard output)`,
		path + `:4:35: systems.b.fsync: "maybe" is not a boolean (true or false)`,
		path + `:5:21: systems.c.path: unknown key`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// newSink builds system "out" of type typ with cfg as Register made it.
func newSink(typ string, cfg config.Validator, env config.Env) (cdc.Sink, error) {
	r := config.NewRegistry()
	Register(r)
	c := &config.Config{Systems: map[string]*config.System{"out": {Name: "out", Type: typ, Config: cfg}}}
	return c.NewSink(r, "out", env)
}

// Every line is cdc.AppendEnvelope's bytes for its event, over writes of
// events of different tables and shapes one after the other.
func TestLinesAreTheEnvelopes(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, err := newSink("stdout", &StdoutConfig{}, testEnv(t, &out))
	if err != nil {
		t.Fatal(err)
	}
	other := events()
	for i := range other {
		other[i].Schema, other[i].Table, other[i].Op = "sales", "orders", cdc.OpRead
		other[i].After = append(other[i].After, cdc.Field{Name: "total", Value: json.RawMessage(`"1.50"`)})
	}
	now := time.UnixMilli(1700000000000)
	s.(*sink).now = func() time.Time { return now }
	var want []byte
	for _, batch := range [][]cdc.Event{events(), other, append(events()[:1], other...), events()} {
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		for i := range batch {
			want = append(cdc.AppendEnvelope(want, &batch[i], &src, now), '\n')
		}
	}
	if out.String() != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// The file and stdout writers keep nothing of an event past its Write
// (they encode it): a backfill may reuse its rows' memory.
func TestForgetsEvents(t *testing.T) {
	t.Parallel()
	s, _ := fakeSink(t, true)
	if !cdc.Forgets(s) || !cdc.Forgets(NewStdout(testEnv(t, nil))) {
		t.Error("the file writer is taken to keep its events")
	}
}
