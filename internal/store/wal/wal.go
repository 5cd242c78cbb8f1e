// Package wal is the write-ahead log of the columnar store: numbered
// segment files of length-prefixed, checksummed records. A record is
// acknowledged once Append returns: it has been handed to the kernel with
// write(2), so it survives the process being killed (kill -9). Power loss
// is covered by fsync every SyncInterval (and on Rotate and Close).
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxRecordBytes bounds one record; larger appends are refused.
const MaxRecordBytes = 256 << 20

const headerSize = 8 // uint32 length, uint32 crc32c of the payload

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Config configures a WAL.
type Config struct {
	Dir string
	// SyncInterval is how often the active segment is fsynced; 0 means
	// one second. A negative value syncs on every append (slow, for tests
	// of power-loss semantics).
	SyncInterval time.Duration
}

// WAL is safe for concurrent use.
type WAL struct {
	dir          string
	syncInterval time.Duration

	mu      sync.Mutex
	f       *os.File
	seg     int   // number of the active segment
	segSize int64 // bytes in the active segment
	size    int64 // bytes in all segments
	dirty   bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	buf     []byte
}

// Open opens the WAL in cfg.Dir, creating it if needed. Appends go to a new
// segment after the existing ones; Replay reads the existing ones.
func Open(cfg Config) (*WAL, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	w := &WAL{dir: cfg.Dir, syncInterval: cfg.SyncInterval, stop: make(chan struct{}), done: make(chan struct{})}
	if w.syncInterval == 0 {
		w.syncInterval = time.Second
	}
	segs, err := w.Segments()
	if err != nil {
		return nil, err
	}
	next := 1
	for _, s := range segs {
		if fi, err := os.Stat(w.path(s)); err == nil {
			w.size += fi.Size()
		}
		next = s + 1
	}
	if err := w.openSegment(next); err != nil {
		return nil, err
	}
	go w.syncLoop()
	return w, nil
}

func (w *WAL) path(seg int) string { return filepath.Join(w.dir, fmt.Sprintf("%08d.wal", seg)) }

func (w *WAL) openSegment(seg int) error {
	f, err := os.OpenFile(w.path(seg), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	// Make the new file's directory entry durable, so a crash cannot lose
	// the segment while keeping its successors.
	if d, err := os.Open(w.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	w.f, w.seg, w.segSize = f, seg, 0
	return nil
}

// Segments lists the segment numbers on disk in ascending order.
func (w *WAL) Segments() ([]int, error) {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var segs []int
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			segs = append(segs, n)
		}
	}
	sort.Ints(segs)
	return segs, nil
}

// Append writes one record and returns the segment it went to. When
// Append returns nil the record survives a crash of this process.
func (w *WAL) Append(payload []byte) (int, error) {
	if len(payload) > MaxRecordBytes {
		return 0, fmt.Errorf("wal: record of %d bytes exceeds %d", len(payload), MaxRecordBytes)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("wal: closed")
	}
	// One write(2) per record: header and payload together, so a torn
	// write can only lose the tail, which Replay detects by checksum.
	w.buf = w.buf[:0]
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(payload)))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(payload, castagnoli))
	w.buf = append(w.buf, payload...)
	if _, err := w.f.Write(w.buf); err != nil {
		return 0, fmt.Errorf("wal: write: %w", err)
	}
	if cap(w.buf) > 4<<20 {
		w.buf = nil // do not pin a huge buffer after one large record
	}
	n := int64(len(payload) + headerSize)
	w.segSize += n
	w.size += n
	w.dirty = true
	if w.syncInterval < 0 {
		if err := w.f.Sync(); err != nil {
			return 0, fmt.Errorf("wal: sync: %w", err)
		}
		w.dirty = false
	}
	return w.seg, nil
}

// Rotate closes the active segment and starts a new one. It returns the
// number of the closed segment: every record appended before Rotate is in
// a segment <= that number.
func (w *WAL) Rotate() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("wal: closed")
	}
	old := w.seg
	if err := w.f.Sync(); err != nil {
		return 0, fmt.Errorf("wal: sync: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return 0, fmt.Errorf("wal: close: %w", err)
	}
	if err := w.openSegment(old + 1); err != nil {
		return 0, err
	}
	return old, nil
}

// Truncate removes all segments numbered <= upTo. The caller guarantees
// their records are durable elsewhere (in blocks).
func (w *WAL) Truncate(upTo int) error {
	segs, err := w.Segments()
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range segs {
		if s > upTo || s == w.seg {
			continue
		}
		p := w.path(s)
		if fi, err := os.Stat(p); err == nil {
			w.size -= fi.Size()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: truncate: %w", err)
		}
	}
	return nil
}

// Size is the total size of all segments in bytes.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Replay calls fn for every intact record of the segments numbered in
// [from, the active segment), oldest first. A torn or corrupt record ends
// its segment: what follows it in that segment was never acknowledged
// (appends are sequential), so it is skipped and counted.
func (w *WAL) Replay(from int, fn func(seg int, payload []byte) error) (torn int, err error) {
	segs, err := w.Segments()
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		if s < from || s >= w.seg {
			continue
		}
		t, err := replaySegment(w.path(s), func(p []byte) error { return fn(s, p) })
		if err != nil {
			return torn, err
		}
		torn += t
	}
	return torn, nil
}

func replaySegment(path string, fn func([]byte) error) (torn int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	var hdr [headerSize]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			if err == io.EOF {
				return 0, nil
			}
			return 1, nil // torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n > MaxRecordBytes {
			return 1, nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(f, buf); err != nil {
			return 1, nil
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			return 1, nil
		}
		if err := fn(buf); err != nil {
			return 0, err
		}
	}
}

func (w *WAL) syncLoop() {
	defer close(w.done)
	if w.syncInterval < 0 {
		<-w.stop
		return
	}
	t := time.NewTicker(w.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.dirty && !w.closed {
				_ = w.f.Sync() // a failed periodic sync is retried next tick; Close reports
				w.dirty = false
			}
			w.mu.Unlock()
		}
	}
}

// Close syncs and closes the WAL. Safe to call twice.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return err
}
