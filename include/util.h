/*
 * util.h - the helpers every module shares, as one include: error
 * reporting and exit codes (log.h), file I/O (file.h), text (text.h).
 * New code may include the one it needs instead.
 */
#ifndef P11E_UTIL_H
#define P11E_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "file.h"
#include "log.h"
#include "text.h"

#endif
