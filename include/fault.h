/*
 * fault.h - named fault points for the crash tests of `renew`.
 *
 * In the product (the core library) fault_point() does nothing.  The test
 * binary p11enroll-faults links its own fault.c compiled with P11E_FAULTS
 * (tests/meson.build), which the linker takes instead of the library's
 * copy; there, P11ENROLL_FAULT=NAME kills the process with SIGKILL at the
 * point NAME (a crash: no cleanup, no flushing), and P11ENROLL_PAUSE=NAME
 * sleeps P11ENROLL_PAUSE_SECS (default 3) seconds there (to hold the lock
 * while a second run starts).  The environment is never read otherwise.
 */
#ifndef P11E_FAULT_H
#define P11E_FAULT_H

void fault_point(const char *name);

#endif
