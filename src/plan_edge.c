/*
 * plan_edge.c - the Edge planner's rules (edge-san-rules.md §1, §3, §4): the
 * shape of an [edge] profile as a table, its names, and one builder per
 * certificate kind (external, internal, A/V Authentication).
 *
 * The order of work is the spec's: read the keys and check their shape
 * (required, conflicting, unsupported), normalise and validate every name
 * given or derived, and only then build the SAN list in the canonical order
 * of §3.  The first failure becomes the plan's one error.
 */
#include "plan.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytype.h"
#include "plan_int.h"

#define POOL_MAX 12         /* R-E20 */

#define SHARED_KEY_NOTE \
    "every pool member must use the same key object (R-E12/R-I5): with an HSM " \
    "that means one network-HSM partition shared by all members; p11enroll " \
    "never makes a key exportable"

static const char *const set_certificate[] = { "external", "internal", "av", NULL };
static const char *const set_product[] = { "lync2013", "sfb2015", "sfb2019", NULL };
static const char *const set_topology[] = { "single", "pool", NULL };
static const char *const set_lb[] = { "dns", "hardware", NULL };
static const char *const set_internal_san[] = { "none", "subject", NULL };
static const char *const set_ca_kind[] = { "public", "private", NULL };

/* R-E15: key types Lync/SfB can use for Edge certificates. */
static int
check_edge_key(struct builder *b, const struct keytype *kt)
{
    /*
     * Decision: rsa:2048, rsa:4096 and the three NIST curves, exactly the
     * list of R-E15 (Request-CsCertificate -KeySize 2048/4096, -KeyAlg ECC).
     * rsa:3072 is refused although SChannel could verify it: Microsoft's
     * tooling and documentation never offer it for Edge.  ed25519 is refused:
     * SChannel on the Windows versions Lync/SfB run on has no Ed25519
     * certificates at all.  A [names] profile may use any supported type.
     */
    if ((kt->alg == KEY_RSA && (kt->bits == 2048 || kt->bits == 4096)) || kt->alg == KEY_EC)
        return 0;
    return pb_fail(b, "E_KEY_TYPE", "key", "type", kt->name,
        "type = '%s': Lync/SfB Edge certificates take rsa:2048, rsa:4096, ec:p256, "
        "ec:p384 or ec:p521 (R-E15)", kt->name);
}

/* Where an [edge] key's value lives in the profile. */
#define EDGE(m) offsetof(struct profile, edge.m)

static const char *
edge_value(const struct profile *p, size_t off)
{
    return *(char *const *)((const char *)p + off);
}

/* The name keys of [edge], in the order their names are checked (§3). */
enum edge_name {
    EN_ACCESS, EN_WEBCONF, EN_AV, EN_SIP, EN_XHOST, EN_XMPP, EN_EXTRA,
    EN_IFQDN, EN_PFQDN, EN_MEMBERS, EN_COUNT
};

static const struct edge_key {
    const char *key;
    size_t off;                 /* the value in struct profile */
    bool split;                 /* a comma-separated list, else one name */
} edge_names[EN_COUNT] = {
    [EN_ACCESS] = { "access-edge", EDGE(access_edge), false },
    [EN_WEBCONF] = { "webconf-edge", EDGE(webconf_edge), false },
    [EN_AV] = { "av-edge", EDGE(av_edge), false },
    [EN_SIP] = { "sip-domains", EDGE(sip_domains), true },
    [EN_XHOST] = { "xmpp-host", EDGE(xmpp_host), false },
    [EN_XMPP] = { "xmpp-domains", EDGE(xmpp_domains), true },
    [EN_EXTRA] = { "extra-sans", EDGE(extra_sans), true },
    [EN_IFQDN] = { "internal-fqdn", EDGE(internal_fqdn), false },
    [EN_PFQDN] = { "pool-fqdn", EDGE(pool_fqdn), false },
    [EN_MEMBERS] = { "members", EDGE(members), true },
};

/* What an [edge] profile says: its picked values and its names. */
struct edge {
    const char *cert, *product, *lb, *isan, *ca_kind;
    bool split_av, nat, client_auth, pool;
    struct list n[EN_COUNT];
};

/*
 * The shape of an [edge] profile: required, conflicting and unsupported
 * keys, checked in this order before any name is looked at.  A row fires
 * when the certificate kind is in `kinds`, the topology matches, `key` is
 * given or missing as `presence` says, and `fact` holds; its error is
 * "<message> (<rule>)", naming `key` (and its value when `name_is_value`).
 */
enum shape_topo { TOPO_ANY, TOPO_SINGLE, TOPO_POOL };
enum shape_presence { KEY_ANY, KEY_GIVEN, KEY_MISSING };
enum shape_fact { FACT_NONE, FACT_NO_SPLIT_AV, FACT_HW_LB_NAT, FACT_SFB2019, FACT_ISAN_NOT_SUBJECT };

#define KIND_EXT (1u << PLAN_EXTERNAL)
#define KIND_INT (1u << PLAN_INTERNAL)
#define KIND_AV (1u << PLAN_AV)
#define KIND_ALL (KIND_EXT | KIND_INT | KIND_AV)

static const struct shape_rule {
    unsigned kinds;
    enum shape_topo topo;
    const char *key;
    size_t off;                 /* key's value in struct profile */
    enum shape_presence presence;
    enum shape_fact fact;
    bool name_is_value;
    const char *code, *rule, *message;
} shape_rules[] = {
    { KIND_AV, TOPO_ANY, "certificate", EDGE(certificate), KEY_ANY, FACT_NO_SPLIT_AV, false,
        "E_CONFLICT", "R-E1", "certificate = av needs split-av = yes: without it A/V "
        "Authentication uses the external certificate" },
    { KIND_ALL, TOPO_POOL, "load-balancing", EDGE(load_balancing), KEY_MISSING, FACT_NONE,
        false, "E_MISSING", NULL, "topology = pool needs load-balancing = dns or hardware" },
    { KIND_ALL, TOPO_SINGLE, "load-balancing", EDGE(load_balancing), KEY_GIVEN, FACT_NONE,
        false, "E_CONFLICT", NULL, "load-balancing is for topology = pool" },
    { KIND_ALL, TOPO_SINGLE, "members", EDGE(members), KEY_GIVEN, FACT_NONE, false,
        "E_CONFLICT", NULL, "members is for topology = pool" },
    { KIND_ALL, TOPO_ANY, "nat", EDGE(nat), KEY_ANY, FACT_HW_LB_NAT, false, "E_HLB_NAT",
        "R-E19", "nat = yes with load-balancing = hardware: NAT is supported with DNS "
        "load balancing only" },
    { KIND_ALL, TOPO_ANY, "xmpp-domains", EDGE(xmpp_domains), KEY_GIVEN, FACT_SFB2019, true,
        "E_XMPP_UNSUPPORTED", "R-E8", "xmpp-domains with product = sfb2019: SfB Server "
        "2019 has no XMPP gateway" },
    { KIND_ALL, TOPO_ANY, "xmpp-host", EDGE(xmpp_host), KEY_GIVEN, FACT_SFB2019, true,
        "E_XMPP_UNSUPPORTED", "R-E8", "xmpp-host with product = sfb2019: SfB Server 2019 "
        "has no XMPP gateway" },
    { KIND_EXT, TOPO_ANY, "access-edge", EDGE(access_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E3", "the external certificate needs access-edge, the Access Edge "
        "external FQDN" },
    { KIND_AV, TOPO_ANY, "access-edge", EDGE(access_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E3", "the av certificate needs access-edge, the Access Edge "
        "external FQDN" },
    { KIND_EXT, TOPO_ANY, "webconf-edge", EDGE(webconf_edge), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-E5; the same name as access-edge in single-FQDN mode, R-E18",
        "the external certificate needs webconf-edge, the Web Conferencing Edge external "
        "FQDN" },
    { KIND_EXT, TOPO_ANY, "sip-domains", EDGE(sip_domains), KEY_MISSING, FACT_NONE, false,
        "E_NO_SIP_DOMAIN", "R-E6", "the external certificate needs sip-domains: every SIP "
        "domain d gets sip.<d>" },
    { KIND_INT, TOPO_SINGLE, "internal-fqdn", EDGE(internal_fqdn), KEY_MISSING, FACT_NONE,
        false, "E_MISSING", "R-I1", "the internal certificate of a single Edge needs "
        "internal-fqdn" },
    { KIND_INT, TOPO_POOL, "pool-fqdn", EDGE(pool_fqdn), KEY_MISSING, FACT_NONE, false,
        "E_MISSING", "R-I1", "the internal certificate of an Edge pool needs pool-fqdn, the "
        "internal pool (or VIP) FQDN" },
    { KIND_INT, TOPO_ANY, "extra-sans", EDGE(extra_sans), KEY_GIVEN, FACT_ISAN_NOT_SUBJECT,
        false, "E_CONFLICT", "R-I2", "extra-sans on the internal certificate needs "
        "internal-san = subject: without it there is no SAN" },
    { KIND_AV, TOPO_ANY, "extra-sans", EDGE(extra_sans), KEY_GIVEN, FACT_NONE, false,
        "E_CONFLICT", NULL, "the A/V Authentication certificate has the subject as its only "
        "SAN" },
};

static bool
shape_fact_holds(const struct edge *e, enum shape_fact fact)
{
    switch (fact) {
    case FACT_NONE:
        return true;
    case FACT_NO_SPLIT_AV:
        return !e->split_av;
    case FACT_HW_LB_NAT:
        return e->nat && e->lb != NULL && strcmp(e->lb, "hardware") == 0;
    case FACT_SFB2019:
        return strcmp(e->product, "sfb2019") == 0;
    case FACT_ISAN_NOT_SUBJECT:
        return strcmp(e->isan, "subject") != 0;
    }
    return false;
}

/* The first shape_rules row that fires becomes the plan's error.  0 or -1. */
static int
check_edge_shape(struct builder *b, const struct edge *e)
{
    for (size_t i = 0; i < sizeof(shape_rules) / sizeof(shape_rules[0]); i++) {
        const struct shape_rule *r = &shape_rules[i];
        const char *v = edge_value(b->p, r->off);

        if (!(r->kinds & (1u << b->pl->kind)) ||
            (r->topo == TOPO_SINGLE && e->pool) || (r->topo == TOPO_POOL && !e->pool) ||
            (r->presence == KEY_GIVEN && v == NULL) ||
            (r->presence == KEY_MISSING && v != NULL) || !shape_fact_holds(e, r->fact))
            continue;
        return pb_fail(b, r->code, "edge", r->key, r->name_is_value ? v : NULL, "%s%s%s%s",
            r->message, r->rule ? " (" : "", r->rule ? r->rule : "", r->rule ? ")" : "");
    }
    return 0;
}

/* Pick the [edge] values (defaults of §4) and the certificate kind.  0 or -1. */
static int
read_edge(struct builder *b, struct edge *e)
{
    const struct profile *p = b->p;
    struct plan *pl = b->pl;
    const char *topology;

    if ((e->cert = pb_pick(b, "certificate", p->edge.certificate, set_certificate, "external")) == NULL ||
        (e->product = pb_pick(b, "product", p->edge.product, set_product, "lync2013")) == NULL ||
        (topology = pb_pick(b, "topology", p->edge.topology, set_topology, "single")) == NULL ||
        (e->isan = pb_pick(b, "internal-san", p->edge.internal_san, set_internal_san, "none")) == NULL ||
        pb_pick_bool(b, "split-av", p->edge.split_av, &e->split_av) == -1 ||
        pb_pick_bool(b, "nat", p->edge.nat, &e->nat) == -1 ||
        pb_pick_bool(b, "client-auth", p->edge.client_auth, &e->client_auth) == -1)
        return -1;
    e->lb = pb_pick(b, "load-balancing", p->edge.load_balancing, set_lb, NULL);
    pl->kind = strcmp(e->cert, "external") == 0 ? PLAN_EXTERNAL :
        strcmp(e->cert, "internal") == 0 ? PLAN_INTERNAL : PLAN_AV;
    e->ca_kind = pb_pick(b, "ca-kind", p->edge.ca_kind, set_ca_kind,
        pl->kind == PLAN_INTERNAL ? "private" : "public");
    if (pl->error.code != NULL)
        return -1;
    pl->certificate = e->cert;
    pl->product = e->product;
    pl->ca_kind = e->ca_kind;
    e->pool = strcmp(topology, "pool") == 0;
    return 0;
}

/* sip-domains: each domain, then the sip.<d> it gives (none for onmicrosoft.com). */
static int
check_sip_domains(struct builder *b, const struct list *sip)
{
    for (size_t i = 0; i < sip->n; i++) {
        char *derived;
        char why[200];
        const char *code;

        if (pb_check_item(b, "edge", "sip-domains", &sip->v[i], false) == -1)
            return -1;
        if (pb_is_onmicrosoft(sip->v[i].norm))
            continue;
        if (asprintf(&derived, "sip.%s", sip->v[i].norm) == -1) {
            b->oom = true;
            return -1;
        }
        code = plan_check_name(derived, false, why, sizeof(why));
        if (code != NULL)
            pb_fail(b, code, "edge", "sip-domains", sip->v[i].raw,
                "sip-domains = '%s': the derived name %s: %s", sip->v[i].raw, derived, why);
        free(derived);
        if (code != NULL)
            return -1;
    }
    return 0;
}

/* Read every name key into e->n and check each name, given or derived (§3). */
static int
read_edge_names(struct builder *b, struct edge *e)
{
    for (size_t i = 0; i < EN_COUNT; i++) {
        const char *v = edge_value(b->p, edge_names[i].off);

        if (v != NULL && (edge_names[i].split ? pb_list_split(b, v, &e->n[i]) :
                pb_list_add(b, &e->n[i], v, strlen(v))) == -1)
            return -1;
    }
    for (size_t i = 0; i < EN_COUNT; i++) {
        /* A wildcard only in extra-sans of the internal certificate (R-I2). */
        bool wildcard = i == EN_EXTRA && b->pl->kind == PLAN_INTERNAL;

        if ((i == EN_SIP ? check_sip_domains(b, &e->n[i]) :
                pb_check_list(b, "edge", edge_names[i].key, &e->n[i], wildcard)) == -1)
            return -1;
    }
    return 0;
}

/* sip.<d> for every SIP domain (R-E6, R-E21).  0, or -1 when none is left. */
static int
add_sip_sans(struct builder *b, const struct edge *e)
{
    const struct list *sip = &e->n[EN_SIP];
    size_t nsip = 0;

    for (size_t i = 0; i < sip->n; i++) {
        char *derived;
        long j = pb_list_repeat(sip, i);

        if (j >= 0) {
            pb_warn_repeat(b, "sip-domains", sip, i, j);
            continue;
        }
        if (pb_is_onmicrosoft(sip->v[i].norm)) {
            pb_warn(b, "W_ONMICROSOFT_SKIPPED", "sip-domains", "sip-domains: '%s' is "
                "an onmicrosoft.com domain, served by Microsoft 365: no sip.<d> (R-E21)",
                sip->v[i].raw);
            continue;
        }
        if (strncmp(sip->v[i].norm, "sip.", 4) == 0)
            pb_warn(b, "W_SIP_PREFIX_IN_DOMAIN", "sip-domains", "sip-domains: '%s' "
                "begins with 'sip.', giving sip.%s: list the SIP domain itself",
                sip->v[i].raw, sip->v[i].norm);
        if (asprintf(&derived, "sip.%s", sip->v[i].norm) == -1) {
            b->oom = true;
            return -1;
        }
        pb_san_add(b, derived, "sip-domains", "R-E6");
        free(derived);
        nsip++;
    }
    if (nsip == 0)
        return pb_fail(b, "E_NO_SIP_DOMAIN", "edge", "sip-domains", b->p->edge.sip_domains,
            "sip-domains = '%s': no SIP domain is left for the external "
            "certificate (onmicrosoft.com domains are skipped, R-E21)",
            b->p->edge.sip_domains);
    return 0;
}

/* xmpp-host, then xmpp-domains, each warned about unless at or below a SIP domain (R-E8). */
static void
add_xmpp_sans(struct builder *b, const struct edge *e)
{
    const struct list *sip = &e->n[EN_SIP], *xmpp = &e->n[EN_XMPP];

    if (e->n[EN_XHOST].n > 0)
        pb_san_add(b, e->n[EN_XHOST].v[0].norm, "xmpp-host", "R-E8");
    for (size_t i = 0; i < xmpp->n; i++) {
        long j = pb_list_repeat(xmpp, i);
        bool under = false;

        if (j >= 0) {
            pb_warn_repeat(b, "xmpp-domains", xmpp, i, j);
            continue;
        }
        for (size_t k = 0; k < sip->n && !under; k++)
            under = pb_at_or_below(xmpp->v[i].norm, sip->v[k].norm);
        if (!under)
            pb_warn(b, "W_XMPP_NOT_SIP_DOMAIN", "xmpp-domains", "xmpp-domains: '%s' "
                "is neither a SIP domain nor below one", xmpp->v[i].raw);
        pb_san_add(b, xmpp->v[i].norm, "xmpp-domains", "R-E8");
    }
}

/* Names that must not end up on the external certificate (R-E7, R-E11).  0 or -1. */
static int
check_external_conflicts(struct builder *b, const struct edge *e)
{
    const struct list *access = &e->n[EN_ACCESS], *webconf = &e->n[EN_WEBCONF];
    const struct list *av = &e->n[EN_AV], *members = &e->n[EN_MEMBERS];
    struct plan_name *found;

    /* R-E7: the A/V Edge FQDN only when it is also a name that must be there. */
    if (av->n > 0 && strcmp(av->v[0].norm, access->v[0].norm) != 0 &&
        strcmp(av->v[0].norm, webconf->v[0].norm) != 0 &&
        (found = pb_san_find(b->pl, av->v[0].norm)) != NULL)
        return pb_fail(b, "E_CONFLICT", "edge", found->src.from, av->v[0].raw, "%s puts the "
            "A/V Edge external FQDN '%s' on the certificate: it belongs in "
            "neither subject nor SAN (R-E7)", found->src.from, av->v[0].raw);
    /* R-E11: member FQDNs never on the external certificate. */
    for (size_t i = 0; i < members->n; i++)
        if ((found = pb_san_find(b->pl, members->v[i].norm)) != NULL)
            return pb_fail(b, "E_CONFLICT", "edge", found->src.from, members->v[i].raw, "%s "
                "puts the pool member '%s' on the external certificate: pools use "
                "pool-level names only (R-E11)", found->src.from, members->v[i].raw);
    return 0;
}

/* The external certificate, in the canonical order of §3.  0 or -1. */
static int
build_external(struct builder *b, const struct edge *e)
{
    const struct item *access = &e->n[EN_ACCESS].v[0];

    pb_make_subject(b, access->norm, "access-edge", "R-E3");
    pb_san_add(b, e->n[EN_WEBCONF].v[0].norm, "webconf-edge", "R-E5");
    pb_san_add(b, access->norm, "access-edge", "R-E4");
    if (add_sip_sans(b, e) == -1)
        return -1;
    add_xmpp_sans(b, e);
    pb_add_extra_sans(b, &e->n[EN_EXTRA], "R-X1");
    return check_external_conflicts(b, e);
}

/* The internal certificate: the internal or pool FQDN (R-I1), SANs only if asked (R-I2). */
static int
build_internal(struct builder *b, const struct edge *e)
{
    const struct item *subj = &e->n[e->pool ? EN_PFQDN : EN_IFQDN].v[0];

    pb_make_subject(b, subj->norm, e->pool ? "pool-fqdn" : "internal-fqdn", "R-I1");
    if (strcmp(e->isan, "subject") == 0) {
        pb_san_add(b, subj->norm, "internal-san", "R-I2");
        pb_add_extra_sans(b, &e->n[EN_EXTRA], "R-I2");
    }
    return 0;
}

/* The A/V Authentication certificate: the Access Edge FQDN only (R-E3, R-E4). */
static int
build_av(struct builder *b, const struct edge *e)
{
    const struct item *access = &e->n[EN_ACCESS].v[0];

    pb_make_subject(b, access->norm, "access-edge", "R-E3");
    pb_san_add(b, access->norm, "access-edge", "R-E4");
    return 0;
}

/* Pool facts: members (repeats dropped), shared-key and pool-size warnings. */
static int
edge_pool(struct builder *b, const struct edge *e)
{
    struct plan *pl = b->pl;
    const struct list *members = &e->n[EN_MEMBERS];

    pl->pool = true;
    pl->load_balancing = e->lb;
    pl->shared_key_note = SHARED_KEY_NOTE;
    for (size_t i = 0; i < members->n; i++) {
        long j = pb_list_repeat(members, i);
        char **m;

        if (j >= 0) {
            pb_warn_repeat(b, "members", members, i, j);
            continue;
        }
        if ((m = realloc(pl->members, (pl->nmembers + 1) * sizeof(*m))) == NULL) {
            b->oom = true;
            return -1;
        }
        pl->members = m;
        if ((m[pl->nmembers] = strdup(members->v[i].norm)) == NULL) {
            b->oom = true;
            return -1;
        }
        pl->nmembers++;
    }
    pb_warn(b, "W_KEY_SHARED_MEMBERS", "topology", "an Edge pool (%zu member%s "
        "listed): every member uses this certificate and must use the same key "
        "object, with an HSM a shared network-HSM partition (%s)", pl->nmembers,
        pl->nmembers == 1 ? "" : "s", pl->kind == PLAN_INTERNAL ? "R-I5" : "R-E12");
    if (pl->nmembers > POOL_MAX)
        pb_warn(b, "W_POOL_GT_12", "members", "members: %zu servers, but an Edge pool "
            "supports at most %d (R-E20)", pl->nmembers, POOL_MAX);
    return 0;
}

/*
 * Edge certificates: external, internal, av (§1, §3, §4).  The shape of the
 * profile first (required, conflicting, unsupported), then every name given
 * or derived, and only then the certificate of its kind.
 */
int
pb_build_edge(struct builder *b)
{
    static int (*const build_kind[])(struct builder *, const struct edge *) = {
        [PLAN_EXTERNAL] = build_external,
        [PLAN_INTERNAL] = build_internal,
        [PLAN_AV] = build_av,
    };
    struct plan *pl = b->pl;
    struct edge e = { 0 };
    const struct keytype *kt;
    int rc = -1;

    if (read_edge(b, &e) == -1 || check_edge_shape(b, &e) == -1)
        goto out;
    if ((kt = pb_key_type(b)) == NULL || check_edge_key(b, kt) == -1)
        goto out;
    pl->key = kt->name;
    if (read_edge_names(b, &e) == -1)
        goto out;
    if (pl->kind == PLAN_INTERNAL) {
        if (pb_check_cn(b, "edge", e.pool ? "pool-fqdn" : "internal-fqdn",
                &e.n[e.pool ? EN_PFQDN : EN_IFQDN].v[0]) == -1)
            goto out;
    } else if (pb_check_cn(b, "edge", "access-edge", &e.n[EN_ACCESS].v[0]) == -1) {
        goto out;
    }
    if (build_kind[pl->kind](b, &e) == -1)
        goto out;
    pb_set_eku(pl, e.client_auth);
    if (e.pool && edge_pool(b, &e) == -1)
        goto out;
    pl->nat = e.nat;
    if (e.client_auth && strcmp(e.ca_kind, "public") == 0)
        pb_warn(b, "W_CLIENT_EKU_PUBLIC_CA", "client-auth", "client-auth = yes from a "
            "public CA: public CAs are dropping clientAuth from TLS certificates "
            "(2025-2027), so the issued certificate may lack it (R-E13)");
    if (pl->kind != PLAN_INTERNAL && strcmp(e.ca_kind, "private") == 0)
        pb_warn(b, "W_EXTERNAL_PRIVATE_CA", "ca-kind", "ca-kind = private for the %s "
            "certificate: federation partners and remote clients need a public CA (R-E2)",
            e.cert);
    pb_warn_idn_all(b);
    rc = 0;
out:
    for (size_t i = 0; i < EN_COUNT; i++)
        pb_list_free(&e.n[i]);
    return pl->error.code != NULL || b->oom ? -1 : rc;
}
