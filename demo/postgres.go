package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	otellog "go.opentelemetry.io/otel/log"
)

// defaultPGBinDir holds the PostgreSQL 15 server binaries (Debian's layout).
const defaultPGBinDir = "/usr/lib/postgresql/15/bin"

func postgresAvailable(binDir string) error {
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return fmt.Errorf("PostgreSQL 15 not found (%s missing)", filepath.Join(binDir, b))
		}
	}
	return nil
}

// pgServer is tickets-database: a real PostgreSQL in the data folder, on a
// free loopback port, run as the postgres user when we are root.
type pgServer struct {
	bin     string // the binaries' folder
	dir     string // the PostgreSQL data folder
	logPath string
	port    int
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped sync.Once
}

// startPostgres initialises the cluster on first use, starts the server and
// makes the roles, database and schema.
func startPostgres(ctx context.Context, dataDir, binDir string) (*pgServer, error) {
	s := &pgServer{bin: binDir, exited: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("demo: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := s.dataFolder(dataDir)
	if err != nil {
		return nil, err
	}
	s.dir = dir
	s.logPath = filepath.Join(dir, "log", "postgresql.log")
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	}
	_ = os.Remove(filepath.Join(dir, "postmaster.pid")) // left by a killed run; we own this folder
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.port = port
	args := []string{"-D", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=",
		"-c", "max_connections=" + strconv.Itoa(maxConns),
		"-c", "superuser_reserved_connections=" + strconv.Itoa(reservedSU),
		"-c", "shared_buffers=16MB",
		"-c", "logging_collector=on",
		"-c", "log_directory=log",
		"-c", "log_filename=postgresql.log",
		"-c", "log_rotation_age=0",
		"-c", "log_rotation_size=0",
		"-c", "log_line_prefix=%t:%r:%u@%d:[%p]:",
		"-c", "log_timezone=UTC",
		"-c", "lc_messages=C",
		"-c", "track_io_timing=on",
		"-c", "track_wal_io_timing=on",
		"-c", "restart_after_crash=on",
		"-c", "fsync=off", // a demo; keeps the disk quiet
	}
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"), args...)
	s.cmd.Dir = dir
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	// Pdeathsig fires when the thread that forked exits, not the process:
	// start and wait on one locked thread so it lives as long as postgres.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := s.cmd.Start()
		started <- err
		if err == nil {
			_ = s.cmd.Wait()
		}
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("demo: start postgres: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("demo: postgres did not start: %w (%s)", err, strings.TrimSpace(stderr.String()))
	}
	if err := s.setup(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// dataFolder returns DataDir/postgres, ready for the server's user. When
// that user cannot reach DataDir (say, under /root), the cluster lives in
// the temporary folder and DataDir/postgres links to it.
func (s *pgServer) dataFolder(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	link := filepath.Join(abs, "postgres")
	dir := link
	if s.cred != nil && !othersCanTraverse(abs) {
		sum := sha256.Sum256([]byte(abs))
		dir = filepath.Join(os.TempDir(), "trenchcoat-demo-"+hex.EncodeToString(sum[:6]), "postgres")
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			_ = os.RemoveAll(link)
			if err := os.Symlink(dir, link); err != nil {
				return "", fmt.Errorf("demo: %w", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if s.cred != nil {
		if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(s.cred.Uid), int(s.cred.Gid))
		}); err != nil {
			return "", fmt.Errorf("demo: chown %s: %w", dir, err)
		}
	}
	return dir, nil
}

func othersCanTraverse(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func (s *pgServer) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"), "-D", s.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("demo: initdb: %w: %s", err, lastLines(out, 5))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *pgServer) connString(user, db, app string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable connect_timeout=10 application_name=%s", s.port, user, db, app)
}

func (s *pgServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := pgx.Connect(ctx, s.connString("postgres", "postgres", "demo-setup"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// setup is idempotent: a second run on the same folder finds it all there.
func (s *pgServer) setup(ctx context.Context) error {
	c, err := pgx.Connect(ctx, s.connString("postgres", "postgres", "demo-setup"))
	if err != nil {
		return fmt.Errorf("demo: postgres setup: %w", err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tickets') THEN CREATE ROLE tickets LOGIN; END IF; END $$`,
		// rdsadmin is RDS's own superuser: monitoring and health checks.
		`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rdsadmin') THEN CREATE ROLE rdsadmin LOGIN SUPERUSER; END IF; END $$`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("demo: postgres setup: %w", err)
		}
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, dbName).Scan(&n); err != nil {
		return fmt.Errorf("demo: postgres setup: %w", err)
	}
	if n == 0 {
		if _, err := c.Exec(ctx, `CREATE DATABASE `+dbName+` OWNER tickets`); err != nil {
			return fmt.Errorf("demo: postgres setup: %w", err)
		}
	}
	tc, err := pgx.Connect(ctx, s.connString("tickets", dbName, "demo-setup"))
	if err != nil {
		return fmt.Errorf("demo: postgres setup: %w", err)
	}
	defer tc.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS events (id int PRIMARY KEY, name text NOT NULL, seats_left bigint NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS bookings (id bigserial PRIMARY KEY, event_id int NOT NULL REFERENCES events(id), user_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO events (id, name, seats_left) SELECT i, 'event ' || i, 1000000000 FROM generate_series(1, 20) i ON CONFLICT DO NOTHING`,
	} {
		if _, err := tc.Exec(ctx, q); err != nil {
			return fmt.Errorf("demo: postgres setup: %w", err)
		}
	}
	return nil
}

// pid returns the postmaster's process id.
func (s *pgServer) pid() int { return s.cmd.Process.Pid }

// stop shuts the server down (fast shutdown: SIGINT) and, if it lingers,
// kills its whole process group.
func (s *pgServer) stop() {
	s.stopped.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
		// Backends exit with the postmaster; make sure of it.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	})
}

// pgLineRE splits an RDS-style line: %t:%r:%u@%d:[%p]:LEVEL:  message
var pgLineRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Z]+):([^:]*):([^@:]*)@([^:]*):\[(\d+)\]:([A-Z0-9]+):\s+(.*)$`)

type pgLine struct {
	t     time.Time
	level string
	text  string // the whole line, in RDS wording
}

// parsePGLine parses one log line; ok is false for continuation lines.
func parsePGLine(line string) (pgLine, bool) {
	m := pgLineRE.FindStringSubmatch(line)
	if m == nil {
		return pgLine{}, false
	}
	t, err := time.Parse("2006-01-02 15:04:05 MST", m[1])
	if err != nil {
		t, err = time.Parse("2006-01-02 15:04:05.000 MST", m[1])
		if err != nil {
			return pgLine{}, false
		}
	}
	return pgLine{t: t, level: m[6], text: rdsWording(line)}, true
}

// tailer ships the server's log file as OTLP log records.
type tailer struct {
	path   string
	logger otellog.Logger
	off    int64
	part   []byte
	pend   *pgLine
}

func newTailer(path string, l otellog.Logger) *tailer {
	t := &tailer{path: path, logger: l}
	if fi, err := os.Stat(path); err == nil {
		t.off = fi.Size() // lines of earlier runs were shipped by them
	}
	return t
}

func (t *tailer) run(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		t.poll()
		select {
		case <-ctx.Done():
			t.poll()
			t.flush()
			return
		case <-tick.C:
		}
	}
}

func (t *tailer) poll() {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < t.off {
		t.off = 0 // truncated
	}
	if _, err := f.Seek(t.off, 0); err != nil {
		return
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		t.off += int64(len(b))
		if err != nil {
			t.part = append(t.part, b...)
			break
		}
		line := strings.TrimRight(string(append(t.part, b...)), "\r\n")
		t.part = t.part[:0]
		t.line(line)
	}
	t.flush()
}

func (t *tailer) line(line string) {
	if pl, ok := parsePGLine(line); ok {
		t.flush()
		t.pend = &pl
		return
	}
	if t.pend != nil { // a continuation (tab-indented) belongs to the line before
		t.pend.text += "\n" + line
	}
}

func (t *tailer) flush() {
	if t.pend == nil {
		return
	}
	emitPGLine(t.logger, t.pend.t, t.pend.text, t.pend.level)
	t.pend = nil
}

// procCPU sums user+system clock ticks of the postmaster and its children.
func procCPU(root int) float64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	total := 0.0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 14 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != root && ppid != root {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += ut + st
	}
	return total
}
