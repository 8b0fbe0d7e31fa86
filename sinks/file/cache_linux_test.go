package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cdcd-dev/cdcd/cdc"
)

// With fsync on, what a Write synced leaves the page cache.
func TestSyncedWritesLeaveThePageCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the page cache is a tmpfs's storage")
	}
	path := filepath.Join(dir, "events.jsonl")
	ctx := context.Background()
	for _, fsync := range []bool{true, false} {
		_ = os.Remove(path)
		s := newFile(path, fsync, testEnv(t, nil))
		var batch []cdc.Event
		for range 300 {
			batch = append(batch, events()...)
		}
		for range 4 {
			if err := s.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		resident, pages := residentPages(t, path)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if pages < 16 {
			t.Fatalf("fsync %v: the file has %d pages; want a test of more", fsync, pages)
		}
		switch {
		case fsync && resident > 1: // the page the next write extends may stay
			t.Errorf("fsync on: %d of %d pages still cached", resident, pages)
		case !fsync && resident == 0:
			t.Errorf("fsync off: no page cached, want the unsynced writes left alone")
		}
	}
}

// residentPages maps the file and counts its pages in the page cache.
func residentPages(t *testing.T, path string) (resident, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			resident++
		}
	}
	return resident, len(vec)
}
