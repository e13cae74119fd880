package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"time"
)

// bbolt trusts its file: a damaged page can make it panic, fault on the
// memory map, allocate without bound or loop forever (a branch page that
// points back at itself). Open therefore reads the file's page structure
// itself, with bounds checks, before bbolt maps it: both meta pages, the
// freelist, and every branch and leaf page reachable from the root (their
// headers, element arrays and nested-bucket headers, not the values). It
// visits each page at most once, so it ends, and it costs one small read per
// tree page. The format is bbolt's version 2 (unchanged since 2014), in the
// machine's byte order as bbolt writes it.

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elementSize    = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	metaSize       = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagFreelist   = 0x10
	bucketLeafFlag = 0x01
	noFreelist     = ^uint64(0)
	bucketHeader   = 16 // root pgid u64, sequence u64
	// maxNesting bounds bucket nesting; this layout nests two deep.
	maxNesting = 16
	// minPageSize and maxPageSize bound the page sizes bbolt uses.
	minPageSize = 1024
	maxPageSize = 1 << 24
)

var ne = binary.NativeEndian

// boltMeta is the part of a meta page the check needs.
type boltMeta struct {
	valid    error // nil when magic, version and checksum are right
	pageSize uint64
	root     uint64
	freelist uint64
	hwm      uint64 // high-water mark: pages in use, meta pages included
	txid     uint64
}

// parseMeta decodes a meta page (page header included).
func parseMeta(page []byte) boltMeta {
	if len(page) < pageHeaderSize+metaSize {
		return boltMeta{valid: errors.New("short meta page")}
	}
	m := page[pageHeaderSize : pageHeaderSize+metaSize]
	bm := boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		bm.valid = errors.New("no bbolt magic number")
	case ne.Uint32(m[4:]) != boltVersion:
		bm.valid = fmt.Errorf("bbolt format version %d, want %d", ne.Uint32(m[4:]), boltVersion)
	case ne.Uint64(m[56:]) != h.Sum64():
		bm.valid = errors.New("meta page checksum mismatch")
	}
	return bm
}

// fileCheck holds the state of one structural check.
type fileCheck struct {
	r        io.ReaderAt
	size     uint64
	pageSize uint64
	hwm      uint64
	used     []uint64 // bitmap: page is part of the tree, freelist or meta
	freed    []uint64 // bitmap: page is on the freelist
}

func bit(m []uint64, i uint64) bool { return m[i/64]&(1<<(i%64)) != 0 }
func set(m []uint64, i uint64)      { m[i/64] |= 1 << (i % 64) }

// corrupt makes an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

// readAt reads n bytes at off; a read past the end of the file means the
// file is damaged, another read error is returned as it is.
func (c *fileCheck) readAt(off, n uint64) ([]byte, error) {
	if off > c.size || n > c.size-off {
		return nil, corrupt("bytes %d to %d lie past the end of the file (%d bytes)", off, off+n, c.size)
	}
	b := make([]byte, n)
	if _, err := c.r.ReadAt(b, int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, corrupt("bytes %d to %d lie past the end of the file", off, off+n)
		}
		return nil, err
	}
	return b, nil
}

// verifyFile checks the structure of a bbolt file of size bytes read through
// r. An empty file is fine (bbolt initialises it).
func verifyFile(r io.ReaderAt, size int64) error {
	if size <= 0 {
		return nil
	}
	c := &fileCheck{r: r, size: uint64(size)}
	readMeta := func(off uint64) boltMeta {
		b, err := c.readAt(off, pageHeaderSize+metaSize)
		if err != nil {
			return boltMeta{valid: err}
		}
		return parseMeta(b)
	}
	// The page size, found the way bbolt finds it: from the first meta
	// page, else from the second one at 1 KiB, 2 KiB, ... 16 MiB.
	m0 := readMeta(0)
	if m0.valid == nil {
		c.pageSize = m0.pageSize
	} else {
		for i := range 15 {
			off := uint64(1024) << i
			if off+1024 >= c.size {
				break
			}
			if m := readMeta(off); m.valid == nil && m.pageSize == off {
				c.pageSize = off
				break
			}
		}
	}
	if c.pageSize == 0 {
		return corrupt("not a bbolt file: no valid meta page (%v)", m0.valid)
	}
	if c.pageSize < minPageSize || c.pageSize > maxPageSize || c.pageSize&(c.pageSize-1) != 0 {
		return corrupt("page size %d is not a power of two from %d to %d", c.pageSize, minPageSize, maxPageSize)
	}
	// The meta bbolt will use: the valid one with the higher transaction id.
	m0, m1 := readMeta(0), readMeta(c.pageSize)
	if m1.txid > m0.txid {
		m0, m1 = m1, m0
	}
	m := m0
	if m.valid != nil {
		m = m1
	}
	if m.valid != nil {
		return corrupt("both meta pages are invalid (%v; %v)", m0.valid, m1.valid)
	}
	if m.pageSize != c.pageSize {
		return corrupt("meta pages disagree on the page size (%d, %d)", m.pageSize, c.pageSize)
	}
	c.hwm = m.hwm
	if c.hwm < 3 {
		return corrupt("high-water mark %d is below 3 pages", c.hwm)
	}
	if c.hwm > c.size/c.pageSize {
		return corrupt("file is truncated: %d bytes, its meta page needs %d pages of %d bytes", c.size, c.hwm, c.pageSize)
	}
	words := (c.hwm + 63) / 64
	c.used, c.freed = make([]uint64, words), make([]uint64, words)
	set(c.used, 0)
	set(c.used, 1)
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return err
		}
	}
	return c.tree(m.root)
}

// header reads and checks a page header: a freelist page, or a branch or
// leaf page when tree is set. It returns the page's flags, its element count
// and its extent in bytes (overflow pages included), and marks the pages
// used.
func (c *fileCheck) header(id uint64, tree bool) (flags uint16, count, extent uint64, err error) {
	if id < 2 || id >= c.hwm {
		return 0, 0, 0, corrupt("page %d is outside pages 2 to %d", id, c.hwm-1)
	}
	h, err := c.readAt(id*c.pageSize, pageHeaderSize)
	if err != nil {
		return 0, 0, 0, err
	}
	pid, flags, count16, overflow := ne.Uint64(h[0:]), ne.Uint16(h[8:]), ne.Uint16(h[10:]), uint64(ne.Uint32(h[12:]))
	switch {
	case pid != id:
		return 0, 0, 0, corrupt("page %d identifies itself as page %d", id, pid)
	case tree && flags != flagBranch && flags != flagLeaf:
		return 0, 0, 0, corrupt("page %d is neither a branch nor a leaf (flags %#x)", id, flags)
	case !tree && flags != flagFreelist:
		return 0, 0, 0, corrupt("page %d is not a freelist page (flags %#x)", id, flags)
	case overflow >= c.hwm-id:
		return 0, 0, 0, corrupt("page %d overflows %d pages past the high-water mark %d", id, overflow, c.hwm)
	}
	for p := id; p <= id+overflow; p++ {
		switch {
		case bit(c.used, p):
			return 0, 0, 0, corrupt("page %d is referenced twice", p)
		case bit(c.freed, p):
			return 0, 0, 0, corrupt("page %d is in use and on the freelist", p)
		}
		set(c.used, p)
	}
	return flags, uint64(count16), (overflow + 1) * c.pageSize, nil
}

// freelist checks the freelist page and records the free pages.
func (c *fileCheck) freelist(id uint64) error {
	_, count, extent, err := c.header(id, false)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	base := id*c.pageSize + pageHeaderSize
	if count == 0xFFFF { // the real count is the first id
		b, err := c.readAt(base, 8)
		if err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
		count, base = ne.Uint64(b), base+8
	}
	if count > (extent-(base-id*c.pageSize))/8 {
		return corrupt("freelist page %d: %d ids do not fit in %d bytes", id, count, extent)
	}
	b, err := c.readAt(base, count*8)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	for i := range count {
		p := ne.Uint64(b[i*8:])
		switch {
		case p < 2 || p >= c.hwm:
			return corrupt("freelist page %d: free page %d is outside pages 2 to %d", id, p, c.hwm-1)
		case bit(c.used, p):
			return corrupt("freelist page %d: free page %d is in use", id, p)
		case bit(c.freed, p):
			return corrupt("freelist page %d: page %d is free twice", id, p)
		}
		set(c.freed, p)
	}
	return nil
}

// pageRef is a page still to visit and the bucket nesting it belongs to.
type pageRef struct {
	id    uint64
	depth int
}

// tree visits every page reachable from the root bucket's root page.
func (c *fileCheck) tree(root uint64) error {
	stack := []pageRef{{root, 0}}
	for len(stack) > 0 {
		ref := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		flags, count, extent, err := c.header(ref.id, true)
		if err != nil {
			return err
		}
		if pageHeaderSize+count*elementSize > extent {
			return corrupt("page %d: %d elements do not fit in %d bytes", ref.id, count, extent)
		}
		start := ref.id * c.pageSize
		elems, err := c.readAt(start+pageHeaderSize, count*elementSize)
		if err != nil {
			return err
		}
		if flags == flagBranch {
			if count == 0 {
				return corrupt("branch page %d has no elements", ref.id)
			}
			for i := range count {
				e := elems[i*elementSize:]
				off := pageHeaderSize + i*elementSize
				if off+uint64(ne.Uint32(e[0:]))+uint64(ne.Uint32(e[4:])) > extent {
					return corrupt("branch page %d element %d: key lies outside the page", ref.id, i)
				}
				stack = append(stack, pageRef{ne.Uint64(e[8:]), ref.depth})
			}
			continue
		}
		err = c.leafElements(elems, count, extent, func(i, valueOff, vsize uint64) ([]byte, error) {
			return c.readAt(start+valueOff, vsize)
		}, ref.depth, func(root uint64, depth int) { stack = append(stack, pageRef{root, depth}) })
		if err != nil {
			return fmt.Errorf("leaf page %d: %w", ref.id, err)
		}
	}
	return nil
}

// leafElements checks the elements of a leaf page (in the file, or inline
// in a bucket value) whose extent is extent bytes; value reads a bucket
// value at its offset in the page, and push queues a nested bucket's root
// page.
func (c *fileCheck) leafElements(elems []byte, count, extent uint64, value func(i, off, n uint64) ([]byte, error),
	depth int, push func(root uint64, depth int)) error {
	for i := range count {
		e := elems[i*elementSize:]
		flags, pos, ksize, vsize := ne.Uint32(e[0:]), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		off := pageHeaderSize + i*elementSize
		if off+pos+ksize+vsize > extent {
			return corrupt("element %d: key or value lies outside the page", i)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		if depth+1 > maxNesting {
			return corrupt("element %d: buckets nested more than %d deep", i, maxNesting)
		}
		if vsize < bucketHeader || vsize > bucketHeader+c.pageSize {
			return corrupt("element %d: bucket header of %d bytes", i, vsize)
		}
		v, err := value(i, off+pos+ksize, vsize)
		if err != nil {
			return err
		}
		if root := ne.Uint64(v); root != 0 {
			push(root, depth+1)
			continue
		}
		if err := c.inline(v[bucketHeader:], depth+1, push); err != nil {
			return fmt.Errorf("element %d: inline bucket: %w", i, err)
		}
	}
	return nil
}

// inline checks an inline bucket's page, held in its bucket value.
func (c *fileCheck) inline(p []byte, depth int, push func(root uint64, depth int)) error {
	if len(p) < pageHeaderSize {
		return corrupt("%d bytes, shorter than a page header", len(p))
	}
	if flags := ne.Uint16(p[8:]); flags != flagLeaf {
		return corrupt("flags %#x, want a leaf", flags)
	}
	count, extent := uint64(ne.Uint16(p[10:])), uint64(len(p))
	if pageHeaderSize+count*elementSize > extent {
		return corrupt("%d elements do not fit in %d bytes", count, extent)
	}
	return c.leafElements(p[pageHeaderSize:], count, extent, func(_, off, n uint64) ([]byte, error) {
		return p[off : off+n], nil
	}, depth, push)
}

// verifyPath checks the file at path before bbolt opens it, holding a
// shared lock so that no other process writes it meanwhile. A missing file
// is fine (Open creates it).
func verifyPath(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockShared(f, timeout); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	return verifyFile(f, fi.Size())
}
