//go:build !linux

package file

// dropCache does nothing where posix_fadvise is not used.
func dropCache(output, int64, int64) {}

// startWriteback does nothing where sync_file_range is not used.
func startWriteback(output, int64, int64) {}
