package cdctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway Postgres server. Its superuser is "postgres" and
// every local connection is trusted.
type Postgres struct {
	Port   int
	dir    string
	binDir string
	asUser []string // command prefix to run as the postgres OS user, when root
	// watchdog stops the server once this process is gone without Destroy.
	watchdog *os.Process
}

// PostgresBinDir finds the directory holding initdb and pg_ctl: $PG_BINDIR,
// the newest /usr/lib/postgresql/*/bin, or $PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("initdb not found: install Postgres (apt-get install -y postgresql) or set PG_BINDIR")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartPostgres initialises and starts a server for the test and stops it
// when the test ends. Extra settings are passed as "-c name=value".
func StartPostgres(t testing.TB, settings ...string) *Postgres {
	t.Helper()
	p, err := NewPostgres(settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Destroy)
	return p
}

// NewPostgres is StartPostgres without a test: the caller must Destroy it.
func NewPostgres(settings ...string) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cdcd-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, binDir: bin}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := p.cmd("initdb", "-D", p.dataDir(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + dir + "'",
		"wal_level = logical",
		"max_replication_slots = 20",
		"max_wal_senders = 20",
		"fsync = off",
		"full_page_writes = off",
		"log_min_messages = warning",
		"shared_buffers = 128MB",
	}
	conf = append(conf, settings...)
	f, err := os.OpenFile(filepath.Join(p.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, err = f.WriteString("\n" + strings.Join(conf, "\n") + "\n")
	f.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.watch()
	if err := p.Start(); err != nil {
		p.Destroy()
		return nil, err
	}
	return p, nil
}

// watch starts a process of its own that stops the server and removes its
// files once this process has ended without Destroy: a test binary killed
// by its timeout, a fuzzing worker stopped at the end of its fuzztime. A
// server must not outlive its test.
func (p *Postgres) watch() {
	stop := strings.Join(append(append([]string{}, p.asUser...), filepath.Join(p.binDir, "pg_ctl")), " ")
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; %s -D '%s' -m immediate stop >/dev/null 2>&1; rm -rf '%s'`,
		os.Getpid(), stop, p.dataDir(), p.dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // not stopped by the test's process group
	if cmd.Start() == nil {
		p.watchdog = cmd.Process
		go cmd.Wait()
	}
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) cmd(name string, args ...string) *exec.Cmd {
	full := append(append([]string{}, p.asUser...), filepath.Join(p.binDir, name))
	full = append(full, args...)
	return exec.Command(full[0], full[1:]...)
}

// Dir is the directory holding the server's data and log; Destroy removes
// it.
func (p *Postgres) Dir() string { return p.dir }

// BinDir is the directory of the server's programs (pg_recvlogical lives
// in the same place).
func (p *Postgres) BinDir() string { return p.binDir }

// Start starts the server on a free port (the same port after a restart).
func (p *Postgres) Start() error {
	if p.Port == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		p.Port = port
	}
	out, err := p.cmd("pg_ctl", "-D", p.dataDir(), "-l", filepath.Join(p.dir, "log"),
		"-o", "-p "+strconv.Itoa(p.Port), "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server; mode is "fast" or "immediate".
func (p *Postgres) Stop(mode string) error {
	out, err := p.cmd("pg_ctl", "-D", p.dataDir(), "-m", mode, "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Destroy stops the server and removes its files.
func (p *Postgres) Destroy() {
	_ = p.Stop("immediate")
	os.RemoveAll(p.dir)
	if p.watchdog != nil {
		_ = p.watchdog.Kill()
	}
}

// URL is a connection string for the database as the postgres superuser.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// CreateDB creates a database and returns its URL.
func (p *Postgres) CreateDB(t testing.TB, name string) string {
	t.Helper()
	p.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return p.URL(name)
}

// Exec runs SQL statements (simple protocol, so several may be given in one
// string) on the database, failing the test on error.
func (p *Postgres) Exec(t testing.TB, db string, sql string) {
	t.Helper()
	if err := p.ExecErr(db, sql); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// ExecErr runs SQL statements on the database and returns the error.
func (p *Postgres) ExecErr(db string, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
