/*
 * fault.c - fault points (fault.h).  The core library holds the no-op; the
 * test binary p11enroll-faults compiles this file again with P11E_FAULTS.
 */
#include "fault.h"

#ifdef P11E_FAULTS
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
fault_point(const char *name)
{
    const char *kill_at = getenv("P11ENROLL_FAULT"), *pause_at = getenv("P11ENROLL_PAUSE");

    if (pause_at != NULL && strcmp(pause_at, name) == 0) {
        const char *s = getenv("P11ENROLL_PAUSE_SECS");
        fprintf(stderr, "p11enroll: fault: pausing at %s\n", name);
        sleep(s ? (unsigned)atoi(s) : 3);
    }
    if (kill_at != NULL && strcmp(kill_at, name) == 0) {
        fprintf(stderr, "p11enroll: fault: killed at %s\n", name);
        fflush(stderr);
        kill(getpid(), SIGKILL);
    }
}
#else
void
fault_point(const char *name)
{
    (void)name;
}
#endif
