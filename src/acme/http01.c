/*
 * http01.c - the built-in http-01 responder: a tiny HTTP server thread
 * that serves the key authorizations of its own challenge tokens and
 * nothing else, while the CA validates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "acme_int.h"
#include "util.h"

/*
 * The http-01 responder: a tiny HTTP/1.1 server in its own thread that
 * answers "GET /.well-known/acme-challenge/<token>" for its own tokens and
 * 404 to everything else, one connection at a time (Connection: close).
 * The thread never reports errors (the error state is not thread-safe);
 * it only counts.
 */
struct acme_responder {
    int lfd;
    int stop[2];
    pthread_t thread;
    struct acme_http01 *items;      /* owned copies */
    size_t n;
    unsigned port;
    unsigned long served, refused;
};

static void
respond(int fd, const struct acme_responder *rs, unsigned long *served, unsigned long *refused)
{
    static const char prefix[] = "GET /.well-known/acme-challenge/";
    char req[4096];
    size_t n = 0;
    const char *body = NULL;
    char head[256];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    struct timespec start, now;
    long left;

    /* Read the request head: 2 s in all (a slow sender cannot hold us), 4 KiB at most. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n < sizeof(req) - 1) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = 2000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
            break;
    }
    req[n] = '\0';
    if (strncmp(req, prefix, sizeof(prefix) - 1) == 0) {
        const char *tok = req + sizeof(prefix) - 1;
        size_t tl = strcspn(tok, " ");
        if (strncmp(tok + tl, " HTTP/1.", 8) == 0) {
            for (size_t i = 0; i < rs->n; i++) {
                if (strlen(rs->items[i].token) == tl &&
                    memcmp(rs->items[i].token, tok, tl) == 0) {
                    body = rs->items[i].key_authorization;
                    break;
                }
            }
        }
    }
    if (body != NULL) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
        (*served)++;
    } else {
        body = "not found\n";
        snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
        (*refused)++;
    }
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) > 0)
        (void)send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void *
responder_main(void *arg)
{
    struct acme_responder *rs = arg;
    struct pollfd pfd[2] = {
        { .fd = rs->lfd, .events = POLLIN }, { .fd = rs->stop[0], .events = POLLIN },
    };
    int fl = fcntl(rs->lfd, F_GETFL);

    /* Non-blocking listener: a connection reset between poll and accept must not block. */
    if (fl != -1)
        (void)fcntl(rs->lfd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents != 0)
            break;
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(rs->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd == -1)
                continue;
            respond(fd, rs, &rs->served, &rs->refused);
            close(fd);
        }
    }
    return NULL;
}

/* Split "host:port", "[v6]:port" or ":port" (all addresses). */
static int
split_hostport(const char *s, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= hsize)
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || (size_t)(colon - s) >= hsize)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    if (colon[1] == '\0' || strlen(colon + 1) >= psize ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -1;
    snprintf(port, psize, "%s", colon + 1);
    return 0;
}

static void
responder_free(struct acme_responder *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free((char *)rs->items[i].token);
        free((char *)rs->items[i].key_authorization);
    }
    free(rs->items);
    free(rs);
}

int
acme_responder_start(const char *listen_addr, const struct acme_http01 *items, size_t n,
    struct acme_responder **out)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    struct acme_responder *rs;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[256], port[16];
    int one = 1, gai, e;

    *out = NULL;
    if (split_hostport(listen_addr, host, sizeof(host), port, sizeof(port)) != 0) {
        err_input("E_HTTP_LISTEN", "http-listen %s: want host:port", listen_addr);
        return -1;
    }
    if ((gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
        err_input("E_HTTP_LISTEN", "http-listen %s: %s", listen_addr, gai_strerror(gai));
        return -1;
    }
    if ((rs = calloc(1, sizeof(*rs))) == NULL ||
        (rs->items = calloc(n + 1, sizeof(*rs->items))) == NULL) {
        free(rs);
        freeaddrinfo(res);
        err_runtime("E_NOMEM", "out of memory");
        return -1;
    }
    rs->stop[0] = rs->stop[1] = -1;
    rs->lfd = -1;
    for (; rs->n < n; rs->n++) {
        /* Only tokens that are safe in a URL path (acme_parse_authz checked them). */
        if (!b64url_valid(items[rs->n].token, ACME_TOKEN_MAX)) {
            err_runtime("E_ACME_RESPONSE", "http-01: refusing a token outside base64url");
            goto fail;
        }
        rs->items[rs->n].token = strdup(items[rs->n].token);
        rs->items[rs->n].key_authorization = strdup(items[rs->n].key_authorization);
        if (rs->items[rs->n].token == NULL || rs->items[rs->n].key_authorization == NULL) {
            rs->n++;
            err_runtime("E_NOMEM", "out of memory");
            goto fail;
        }
    }
    rs->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rs->lfd == -1 ||
        setsockopt(rs->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(rs->lfd, res->ai_addr, res->ai_addrlen) == -1 || listen(rs->lfd, 16) == -1 ||
        getsockname(rs->lfd, (struct sockaddr *)&ss, &sslen) == -1) {
        err_runtime("E_HTTP_RESPONDER", "http-01 responder on %s: %s", listen_addr,
            strerror(errno));
        goto fail;
    }
    rs->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(rs->stop, O_CLOEXEC) == -1) {
        err_runtime("E_HTTP_RESPONDER", "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((e = pthread_create(&rs->thread, NULL, responder_main, rs)) != 0) {
        err_runtime("E_HTTP_RESPONDER", "http-01 responder thread: %s", strerror(e));
        goto fail;
    }
    freeaddrinfo(res);
    verbose("http-01 responder listening on %s", listen_addr);
    *out = rs;
    return 0;
fail:
    freeaddrinfo(res);
    if (rs->lfd != -1)
        close(rs->lfd);
    if (rs->stop[0] != -1) {
        close(rs->stop[0]);
        close(rs->stop[1]);
    }
    responder_free(rs);
    return -1;
}

unsigned
acme_responder_port(const struct acme_responder *rs)
{
    return rs->port;
}

void
acme_responder_stop(struct acme_responder *rs)
{
    if (rs == NULL)
        return;
    (void)!write(rs->stop[1], "x", 1);
    pthread_join(rs->thread, NULL);
    close(rs->lfd);
    close(rs->stop[0]);
    close(rs->stop[1]);
    verbose("http-01 responder stopped: %lu served, %lu refused", rs->served, rs->refused);
    responder_free(rs);
}

