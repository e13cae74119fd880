package kernels

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Cache is a directory of compiled kernel images (cubin or PTX), one file
// per key. Writes are atomic (a temporary file renamed into place), so
// concurrent writers and readers, in one process or several, never see a
// partial entry; an entry that is short, truncated or fails its checksum is
// a miss, never an error, and the next Put replaces it.
type Cache struct {
	Dir string
}

// cacheEnv overrides the default cache folder.
const cacheEnv = "KRONFED_KERNEL_CACHE"

// DefaultCache is $KRONFED_KERNEL_CACHE, else os.UserCacheDir()/kronfed/kernels.
// The folder is created by the first Put.
func DefaultCache() (*Cache, error) {
	if d := os.Getenv(cacheEnv); d != "" {
		return &Cache{Dir: d}, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("kernels: no cache folder (set %s): %w", cacheEnv, err)
	}
	return &Cache{Dir: filepath.Join(base, "kronfed", "kernels")}, nil
}

// CacheKey names the image of one source compiled for one target: a sha256
// over the source's hash, the architecture ("sm_90", "compute_90"), the
// driver version and the NVRTC version, so a change to any of them compiles
// afresh.
func CacheKey(srcHash, arch string, driverVersion, nvrtcMajor, nvrtcMinor int) string {
	h := sha256.New()
	// Length-prefixed fields: no two different inputs share a key by
	// sliding text from one field into the next.
	for _, f := range []string{"kronfed-kernel-v1", srcHash, arch, strconv.Itoa(driverVersion),
		strconv.Itoa(nvrtcMajor), strconv.Itoa(nvrtcMinor)} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// An entry file is a header then the image:
//
//	magic "KFKC0001" | image length (8 bytes, little endian) | sha256(image) | image
var cacheMagic = []byte("KFKC0001")

const cacheHeader = 8 + 8 + sha256.Size

// validKey accepts what CacheKey makes (lower-case hex), which also keeps a
// key from naming a path outside Dir.
func validKey(key string) bool {
	if len(key) == 0 || len(key) > 128 {
		return false
	}
	for _, c := range key {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (c *Cache) path(key string) string { return filepath.Join(c.Dir, key+".bin") }

// Get returns the image stored under key. A missing, unreadable, short or
// corrupt entry is a miss.
func (c *Cache) Get(key string) ([]byte, bool) {
	if c == nil || c.Dir == "" || !validKey(key) {
		return nil, false
	}
	data, err := os.ReadFile(c.path(key))
	if err != nil || len(data) < cacheHeader || !bytes.Equal(data[:8], cacheMagic) {
		return nil, false
	}
	n := binary.LittleEndian.Uint64(data[8:16])
	img := data[cacheHeader:]
	if n != uint64(len(img)) {
		return nil, false
	}
	if sum := sha256.Sum256(img); !bytes.Equal(sum[:], data[16:cacheHeader]) {
		return nil, false
	}
	return img, true
}

// Put stores image under key atomically, creating the folder if needed.
func (c *Cache) Put(key string, image []byte) error {
	if c == nil || c.Dir == "" {
		return errors.New("kernels: cache has no folder")
	}
	if !validKey(key) {
		return fmt.Errorf("kernels: invalid cache key %q (want lower-case hex from CacheKey)", key)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("kernels: cache folder: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, key+".*.tmp")
	if err != nil {
		return fmt.Errorf("kernels: cache entry %s: %w", key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	var hdr [cacheHeader]byte
	copy(hdr[:8], cacheMagic)
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(len(image)))
	sum := sha256.Sum256(image)
	copy(hdr[16:], sum[:])
	_, err = f.Write(hdr[:])
	if err == nil {
		_, err = f.Write(image)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path(key))
	}
	if err != nil {
		return fmt.Errorf("kernels: write cache entry %s: %w", key, err)
	}
	return nil
}
