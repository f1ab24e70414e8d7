// Package objcache keeps local copies of a lake's remote objects (the Parquet data files of
// its Iceberg tables on S3) in a directory bounded in size, so that DuckDB, which cannot read
// S3 here, reads local files. Objects are immutable: a key (the object's full location,
// s3://bucket/prefix/db/t/year=2026/month=12/day=01/<uuid>.parquet) always names the same
// bytes, so a cached file is never refreshed, only evicted.
//
// # Layout
//
// The cache directory holds, flat:
//
//	<sha256 hex of the key>-<tail>   a cached object; tail is the end of the key's last path
//	                                 element (".parquet" kept), other bytes than [A-Za-z0-9._-]
//	                                 replaced by '_' (Name)
//	tmp-<random>                     a download in progress, exclusively flocked by its writer
//	evict.lock                       flocked by the process running an eviction pass
//
// Nothing of the key reaches a file name but the hash and the sanitized tail, so no key can
// name a path outside the directory. Anything else in the directory is left alone.
//
// # Get, and what appears when
//
// Get returns the path of the object's file, downloading it on a miss through the caller's
// Fetch, which writes the content and reports the checksum the store gives (S3's
// x-amz-checksum-* values, or an ETag's MD5). The download goes to a temporary file; its size
// is checked against the size the caller expects (an Iceberg manifest's file_size_in_bytes),
// its checksum recomputed from the bytes read back from the file, and only then is it hard-
// linked under its name: the name appears whole or not at all. A mismatch is an error and
// caches nothing. Nothing is fsynced: after a crash a file may be lost or torn by the file
// system, which is why a cache directory must not outlive a machine crash unchecked (a Get
// checks a cached file's size, not its checksum).
//
// Publishing never replaces a file: if two processes download the same key at once, the
// second link fails and that process uses the first one's file. Within a process, concurrent
// Gets of a key download once and the others wait (a canceled download lets a waiter try
// again).
//
// # Pins and eviction, between processes
//
// A Get pins the file until its release: the process holds a shared flock on an open
// descriptor of the file (one per file per process, counted). Eviction removes a file only
// after taking an exclusive flock on it without waiting, and after checking that the name
// still holds the inode it locked; a pin, once its shared lock is granted, checks the same,
// and treats a removed file as a miss. So a file pinned by any process using the directory is
// never removed, and a path Get returned exists until its release.
//
// Files are evicted least recently used first: each use (a hit, a download) sets the file's
// modification time, which every process sees. A download that would take the directory's
// total over the limit first runs an eviction pass: under evict.lock it reads the directory,
// sums the sizes of the cached files (every process's) and removes the oldest unpinned ones
// until the total is at most 7/8 of the limit, so that passes are rare. The limit is a target:
// if the files pinned exceed it, Get still succeeds, Stats says so (Bytes above Limit,
// OverLimit counted), and the next pass waits for another eighth of the limit to be added.
//
// Open removes the temporary files that no live process holds locked (downloads of crashed
// processes) and runs a pass. Flock is advisory and per open file description: the cache works
// on a local file system of a Unix system; a directory on NFS is not supported.
package objcache
