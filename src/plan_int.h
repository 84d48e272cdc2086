/*
 * plan_int.h - the planner's internals shared by plan.c (builder, [names]),
 * plan_names.c (names) and plan_edge.c (Edge rules).  Not for other modules;
 * every function here takes the builder of one plan_build() call.
 */
#ifndef P11E_PLAN_INT_H
#define P11E_PLAN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "keytype.h"
#include "plan.h"

/* A name as written in the profile and normalised. */
struct item {
    char *raw;
    char *norm;
};

struct list {
    struct item *v;
    size_t n;
};

struct builder {
    const struct profile *p;
    struct plan *pl;
    bool oom;
};

/* The builder (plan.c). */

/* Record the plan's one error (the first wins).  Always returns -1. */
int pb_fail(struct builder *b, const char *code, const char *section,
    const char *key, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Append a warning to the plan (out of memory sets b->oom). */
void pb_warn(struct builder *b, const char *code, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The SAN entry for a normalised name, or NULL (borrowed). */
struct plan_name *pb_san_find(struct plan *pl, const char *name);
/* Add a name to the SAN list; a repeat is another reason for the name (§3). */
void pb_san_add(struct builder *b, const char *name, const char *from, const char *rule);
/* W_DUPLICATE_FOLDED for entry i of l, which repeats entry j. */
void pb_warn_repeat(struct builder *b, const char *key, const struct list *l, size_t i, long j);
/* extra-sans in the order given, repeats and names already there dropped. */
void pb_add_extra_sans(struct builder *b, const struct list *extra, const char *rule);
/* The static spelling of v in set, dflt when v is NULL, NULL after failing. */
const char *pb_pick(struct builder *b, const char *key, const char *v,
    const char *const *set, const char *dflt);
/* A yes/no value into *out (false when absent).  0 or -1. */
int pb_pick_bool(struct builder *b, const char *key, const char *v, bool *out);
/* The subject: CN, then the [subject] extras; from/rule say why. */
void pb_make_subject(struct builder *b, const char *cn, const char *from, const char *rule);
/* The subject CN fits RFC 5280's 64 characters.  0 or -1. */
int pb_check_cn(struct builder *b, const char *section, const char *key, const struct item *it);
/* W_IDN_ALABEL for every distinct name on the certificate. */
void pb_warn_idn_all(struct builder *b);
/* The [key] type (default rsa:2048), or NULL after failing (borrowed). */
const struct keytype *pb_key_type(struct builder *b);
/* serverAuth, and clientAuth when asked. */
void pb_set_eku(struct plan *pl, bool client_auth);

/* Names (plan_names.c). */

/* Free the items of a list and empty it. */
void pb_list_free(struct list *l);
/* Append s[0..len), blanks trimmed, and its normal form.  0 or -1 (b->oom). */
int pb_list_add(struct builder *b, struct list *l, const char *s, size_t len);
/* Split a comma-separated value (NULL: empty list).  0 or -1 (b->oom). */
int pb_list_split(struct builder *b, const char *v, struct list *l);
/* Validate one name of `key`; 0, or -1 after failing. */
int pb_check_item(struct builder *b, const char *section, const char *key,
    const struct item *it, bool wildcard);
/* Validate every name of a list; 0, or -1 at the first failure. */
int pb_check_list(struct builder *b, const char *section, const char *key,
    const struct list *l, bool wildcard);
/* d is onmicrosoft.com or below it. */
bool pb_is_onmicrosoft(const char *d);
/* d equals base or lies below it. */
bool pb_at_or_below(const char *d, const char *base);
/* Index of an earlier entry of l with the same normal form as entry i, or -1. */
long pb_list_repeat(const struct list *l, size_t i);

/* Edge certificates (plan_edge.c): external, internal, av.  0 or -1. */
int pb_build_edge(struct builder *b);

#endif
