/*
 * file.h - file I/O: capped reads of regular files and atomic, private
 * writes (temp file, fsync, chmod, rename).
 */
#ifndef P11E_FILE_H
#define P11E_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Read a whole file of at most `cap` bytes.  Returns 0 and a NUL-terminated
 * buffer (caller frees), or -1 with errno set (EFBIG when over the cap).
 * Does not report.
 */
int read_file_capped(const char *path, size_t cap, uint8_t **out, size_t *outlen);
/*
 * The same, also filling *st (may be NULL) from the descriptor that was
 * read.  Only regular files are read (a FIFO or device gives EINVAL,
 * a directory EISDIR), so no input can hang the program.
 */
struct stat;
int read_file_capped_st(const char *path, size_t cap, uint8_t **out, size_t *outlen,
    struct stat *st);

/*
 * Write `len` bytes to `path` atomically: a temp file in the same directory,
 * fsync, chmod `mode`, rename; the temp file is removed on any error and
 * `path` is then left as it was.  Reports with err_runtime() on failure.
 */
int write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode);

/*
 * Can `path` be written by write_file_atomic()?  Its directory must exist
 * and be writable, and `path` must not be a directory.  `what` names the
 * input in the message ("[output] cert", "--pubout").  0, or -1 after
 * reporting (exit 1).  Called before anything changes.
 */
int file_writable(const char *path, const char *what);

/*
 * The two halves of write_file_atomic(), for writing several files all or
 * nothing: file_prepare() writes, fsyncs and chmods a temp file next to
 * `path` (refusing a `path` that is a directory) and returns its name in
 * *tmp; file_commit() renames it into place (freeing tmp; on failure the
 * temp file is removed); file_abort() removes and frees it (NULL is fine).
 */
int file_prepare(const char *path, const void *buf, size_t len, unsigned mode, char **tmp);
int file_commit(char *tmp, const char *path);
void file_abort(char *tmp);

/*
 * Remove the temp files write_file_atomic()/file_prepare() left in `dir`
 * (".p11enroll-tmp.*", regular files only) that were last changed before
 * `before`: a run killed between mkstemp and rename leaves one.  The
 * caller holds the profile's lock and passes the time it took it, so a
 * file of a live run is never touched.  Returns the number removed;
 * failures are warnings (a leftover temp file harms nothing).
 */
struct timespec;
int file_clean_tmp(const char *dir, const struct timespec *before);

#endif
