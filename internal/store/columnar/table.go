package columnar

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store/wal"
)

// A table is one schema's storage: WAL, head, frozen heads being written
// out, and blocks. Data flows WAL -> head -> blocks; a head is cut when it
// holds MaxHeadRows rows or MaxHeadBytes or has been open MaxHeadAge.
type table struct {
	cfg   tableConfig
	sch   *schema
	wal   *wal.WAL
	cache *cache
	log   *slog.Logger

	mu        sync.RWMutex
	head      *part
	headSince time.Time
	frozen    []*part
	blocks    []*block // ordered by minT
	nextSeq   int

	flushMu sync.Mutex // one block write or compaction at a time
	flushWG sync.WaitGroup
	closed  atomic.Bool

	rowsAppended atomic.Int64
	tornRecords  atomic.Int64
}

type tableConfig struct {
	Dir          string
	MaxHeadRows  int
	MaxHeadBytes int64
	MaxHeadAge   time.Duration
	Partition    time.Duration // blocks never straddle a multiple of this
	Retention    time.Duration
	MaxBytes     int64 // on-disk safety valve (blocks + WAL); 0 = unlimited
	CompactMin   int   // compact a partition once it has this many blocks
	CompactRows  int   // but never into a block larger than this
	SyncInterval time.Duration
}

// apply decodes a WAL payload into the head. It returns the rows added.
type applyFunc func(p *part, payload []byte) (int, error)

func openTable(cfg tableConfig, sch *schema, c *cache, log *slog.Logger, apply applyFunc) (*table, error) {
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "blocks"), 0o755); err != nil {
		return nil, fmt.Errorf("columnar: %w", err)
	}
	t := &table{cfg: cfg, sch: sch, cache: c, log: log, head: newPart(sch), headSince: time.Now()}
	maxSeg, err := t.loadBlocks()
	if err != nil {
		return nil, err
	}
	w, err := wal.Open(wal.Config{Dir: filepath.Join(cfg.Dir, "wal"), SyncInterval: cfg.SyncInterval})
	if err != nil {
		return nil, err
	}
	t.wal = w
	torn, err := w.Replay(maxSeg+1, func(seg int, payload []byte) error {
		n, err := apply(t.head, payload)
		if err != nil {
			// A record that passed its checksum but does not decode was
			// written by a different version; keep going, count it.
			t.log.Warn("skipping undecodable WAL record", "table", sch.name, "segment", seg, "err", err)
			t.tornRecords.Add(1)
			return nil
		}
		t.rowsAppended.Add(int64(n))
		return nil
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	t.tornRecords.Add(int64(torn))
	return t, nil
}

func (t *table) blockDir() string { return filepath.Join(t.cfg.Dir, "blocks") }

func (t *table) loadBlocks() (maxSeg int, err error) {
	ents, err := os.ReadDir(t.blockDir())
	if err != nil {
		return 0, fmt.Errorf("columnar: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(t.blockDir(), name)
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(path) // an interrupted write; its data is still in the WAL
			continue
		}
		if !strings.HasSuffix(name, ".blk") {
			continue
		}
		var a, seq int64
		if _, err := fmt.Sscanf(name, "%d-%d.blk", &a, &seq); err == nil && int(seq) >= t.nextSeq {
			t.nextSeq = int(seq) + 1
		}
		b, err := openBlock(path, t.cache)
		if err != nil {
			t.log.Error("ignoring unreadable block", "path", path, "err", err)
			continue
		}
		maxSeg = max(maxSeg, b.meta.WALSeg)
		t.blocks = append(t.blocks, b)
	}
	t.sortBlocks()
	return maxSeg, nil
}

func (t *table) sortBlocks() {
	sort.Slice(t.blocks, func(i, j int) bool { return t.blocks[i].meta.MinT < t.blocks[j].meta.MinT })
}

// append makes payload durable in the WAL, then applies it to the head.
// The caller has validated that payload decodes (apply of a validated
// payload cannot fail), so WAL and head never disagree.
func (t *table) append(payload []byte, applyHead func(p *part) int) error {
	if t.closed.Load() {
		return errClosed
	}
	t.mu.Lock()
	if _, err := t.wal.Append(payload); err != nil {
		t.mu.Unlock()
		return err
	}
	n := applyHead(t.head)
	t.rowsAppended.Add(int64(n))
	cut := t.needCutLocked()
	t.mu.Unlock()
	if cut {
		t.cut()
	}
	return nil
}

var errClosed = errors.New("columnar: store closed")

func (t *table) needCutLocked() bool {
	h := t.head
	if h.n == 0 {
		return false
	}
	return h.n >= t.cfg.MaxHeadRows || h.bytes >= t.cfg.MaxHeadBytes || time.Since(t.headSince) >= t.cfg.MaxHeadAge
}

// cut freezes the head and writes it out as blocks in the background.
func (t *table) cut() {
	t.mu.Lock()
	if t.head.n == 0 || t.closed.Load() {
		t.mu.Unlock()
		return
	}
	seg, err := t.wal.Rotate()
	if err != nil {
		t.mu.Unlock()
		t.log.Error("WAL rotate failed; head keeps growing", "err", err)
		return
	}
	frozen := t.head
	t.head = newPart(t.sch)
	t.headSince = time.Now()
	t.frozen = append(t.frozen, frozen)
	t.mu.Unlock()
	t.flushWG.Add(1)
	go func() {
		defer t.flushWG.Done()
		if err := t.flush(frozen, seg); err != nil {
			// The data stays in the frozen head and the WAL; a restart
			// replays it. Log loudly: disk full is the usual cause.
			t.log.Error("writing block failed", "table", t.sch.name, "err", err)
		}
	}()
}

// flush writes a frozen head as blocks, one per time partition.
func (t *table) flush(frozen *part, seg int) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	rows := frozen.sortedRows()
	byPart := map[int64][]uint32{}
	var keys []int64
	tc := frozen.cols[t.sch.time].i64
	for _, r := range rows {
		k := floorDiv(tc[r], int64(t.cfg.Partition))
		if _, ok := byPart[k]; !ok {
			keys = append(keys, k)
		}
		byPart[k] = append(byPart[k], r)
	}
	var made []*block
	for _, k := range keys {
		sub := frozen.subset(byPart[k])
		b, err := t.writeNewBlock(sub, seg, 0, k)
		if err != nil {
			for _, b := range made {
				b.retire()
				os.Remove(b.path)
			}
			return err
		}
		made = append(made, b)
	}
	t.mu.Lock()
	t.blocks = append(t.blocks, made...)
	t.sortBlocks()
	for i, f := range t.frozen {
		if f == frozen {
			t.frozen = append(t.frozen[:i], t.frozen[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	return t.wal.Truncate(seg)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (t *table) writeNewBlock(p *part, seg, level int, partition int64) (*block, error) {
	t.mu.Lock()
	seq := t.nextSeq
	t.nextSeq++
	t.mu.Unlock()
	path := filepath.Join(t.blockDir(), fmt.Sprintf("%d-%08d.blk", partition, seq))
	if _, err := writeBlock(path, p, seg, level); err != nil {
		return nil, err
	}
	return openBlock(path, t.cache)
}

// snapshot returns the parts a query reads: a view of the head, the frozen
// heads and the blocks, as of now.
func (t *table) snapshot() (heads []*part, blocks []*block) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.head.n > 0 {
		heads = append(heads, t.head.snapshot())
	}
	for _, f := range t.frozen {
		heads = append(heads, f.snapshot())
	}
	return heads, append([]*block(nil), t.blocks...)
}

// maintain runs retention and compaction once.
func (t *table) maintain(now time.Time) {
	if t.closed.Load() {
		return
	}
	t.mu.RLock()
	needCut := t.needCutLocked()
	t.mu.RUnlock()
	if needCut {
		t.cut()
	}
	t.applyRetention(now)
	t.compact(now)
}

func (t *table) applyRetention(now time.Time) {
	cutoff := now.Add(-t.cfg.Retention).UnixNano()
	t.mu.Lock()
	var keep, drop []*block
	for _, b := range t.blocks {
		if t.cfg.Retention > 0 && b.meta.MaxT < cutoff {
			drop = append(drop, b)
		} else {
			keep = append(keep, b)
		}
	}
	if t.cfg.MaxBytes > 0 {
		total := t.wal.Size()
		for _, b := range keep {
			total += b.meta.Bytes
		}
		for len(keep) > 1 && total > t.cfg.MaxBytes { // oldest first; keep the newest block
			total -= keep[0].meta.Bytes
			drop = append(drop, keep[0])
			keep = keep[1:]
		}
	}
	t.blocks = keep
	t.mu.Unlock()
	for _, b := range drop {
		b.retire()
		if err := os.Remove(b.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Error("removing expired block", "path", b.path, "err", err)
		}
	}
}

// compact merges the small blocks of a time partition once there are
// CompactMin of them, so a partition ends up in few large blocks: fewer
// files to open and bigger dictionaries that compress better. Like
// Prometheus, it leaves the partition still being written alone (a
// partition is compacted once it has ended), and it never rewrites a block
// that is already large: merging a big block again with each new small one
// rewrote gigabytes per hour under sustained ingest and starved it.
func (t *table) compact(now time.Time) {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	part := int64(t.cfg.Partition)
	current := floorDiv(now.UnixNano(), part)
	t.mu.RLock()
	groups := map[int64][]*block{}
	for _, b := range t.blocks {
		k := floorDiv(b.meta.MinT, part)
		if k >= current || b.meta.Rows >= t.cfg.CompactRows/2 {
			continue
		}
		groups[k] = append(groups[k], b)
	}
	t.mu.RUnlock()
	for k, bs := range groups {
		for len(bs) >= t.cfg.CompactMin && !t.closed.Load() {
			var pick []*block
			rows := 0
			for _, b := range bs {
				if rows+b.meta.Rows > t.cfg.CompactRows && len(pick) >= 2 {
					break
				}
				pick = append(pick, b)
				rows += b.meta.Rows
			}
			if err := t.merge(k, pick); err != nil {
				t.log.Error("compaction failed", "table", t.sch.name, "err", err)
				return
			}
			bs = bs[len(pick):]
		}
	}
}

func (t *table) merge(partition int64, bs []*block) error {
	var parts []*part
	level, seg := 0, 0
	for _, b := range bs {
		p, err := b.viewAll()
		if err != nil {
			return err
		}
		parts = append(parts, p)
		level = max(level, b.meta.Level+1)
		seg = max(seg, b.meta.WALSeg)
	}
	merged := concatParts(t.sch, parts)
	merged = merged.subset(merged.sortedRows())
	nb, err := t.writeNewBlock(merged, seg, level, partition)
	if err != nil {
		return err
	}
	drop := map[*block]bool{}
	for _, b := range bs {
		drop[b] = true
	}
	t.mu.Lock()
	keep := []*block{nb}
	for _, b := range t.blocks {
		if !drop[b] {
			keep = append(keep, b)
		}
	}
	t.blocks = keep
	t.sortBlocks()
	t.mu.Unlock()
	for _, b := range bs {
		b.retire()
		os.Remove(b.path)
	}
	return nil
}

// close writes nothing more: the head stays in the WAL and is replayed on
// the next start, which is cheaper than writing a block at shutdown.
func (t *table) close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.flushWG.Wait()
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range t.blocks {
		b.close()
	}
	return t.wal.Close()
}

type tableStats struct {
	headRows, headBytes  int64
	blocks               int
	blockBytes, walBytes int64
	rows, torn           int64
}

func (t *table) stats() tableStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := tableStats{headRows: int64(t.head.n), headBytes: t.head.bytes, blocks: len(t.blocks), walBytes: t.wal.Size(), rows: t.rowsAppended.Load(), torn: t.tornRecords.Load()}
	for _, f := range t.frozen {
		s.headRows += int64(f.n)
		s.headBytes += f.bytes
	}
	for _, b := range t.blocks {
		s.blockBytes += b.meta.Bytes
	}
	return s
}
