/*
 * errcodes.h - the registry of error codes: every "E_..." code that
 * p11enroll reports (in --json error objects and plan errors) is listed
 * here once, with the exit code it comes with and what it means.
 *
 * Call sites pass the code as a string literal ("E_TOKEN"); the test
 * tests/integration/errcodes.sh checks that every literal in src/ is listed
 * here, that no code is listed twice, and that README.md and the man page
 * document each one.  A script may match on any code in this table; codes
 * are never renamed or reused for another meaning.
 *
 * X(code, exit, meaning): exit is 1 (runtime: token, CA, network, files) or
 * 2 (usage or input; nothing was changed).
 */
#ifndef P11E_ERRCODES_H
#define P11E_ERRCODES_H

#define P11E_ERRCODES(X) \
    /* usage and command line */ \
    X(E_USAGE, 2, "bad option, missing option value or stray argument") \
    X(E_INPUT, 2, "input error with no more specific code") \
    X(E_RUNTIME, 1, "runtime failure with no more specific code") \
    X(E_NOMEM, 1, "out of memory") \
    X(E_NO_CORE, 1, "core dumps could not be switched off at start") \
    /* profile file */ \
    X(E_PROFILE_READ, 2, "the profile cannot be read, or is too large") \
    X(E_PROFILE_SYNTAX, 2, "profile syntax error (section header, key = value)") \
    X(E_PROFILE_ENCODING, 2, "profile line is not UTF-8 or holds a NUL or control byte") \
    X(E_PROFILE_LINE_TOO_LONG, 2, "profile line longer than the limit") \
    X(E_PROFILE_UNKNOWN, 2, "unknown profile section or key") \
    X(E_PROFILE_DUPLICATE, 2, "profile section or key given twice") \
    X(E_PROFILE_EMPTY, 2, "profile key with an empty value") \
    X(E_PROFILE_VALUE, 2, "profile value of the wrong form (duration, key type, yes/no ...)") \
    X(E_PROFILE_CONFLICT, 2, "profile keys that contradict each other") \
    X(E_PROFILE, 2, "profile setting unusable for this command") \
    X(E_MISSING, 2, "a required profile key or option is absent") \
    /* planner (shared/spec/edge-san-rules.md) */ \
    X(E_NAME_EMPTY, 2, "a name is empty after normalisation") \
    X(E_SINGLE_LABEL, 2, "a name has fewer than two labels") \
    X(E_LABEL_EMPTY, 2, "a name has an empty label") \
    X(E_LABEL_TOO_LONG, 2, "a name has a label over 63 characters") \
    X(E_LABEL_CHARS, 2, "a name has a character outside [a-z0-9-]") \
    X(E_LABEL_HYPHEN, 2, "a name has a label starting or ending with '-'") \
    X(E_NON_ASCII, 2, "a name has a non-ASCII byte") \
    X(E_NAME_TOO_LONG, 2, "a name is over 253 characters") \
    X(E_IP_LITERAL, 2, "an IP address where a DNS name is needed") \
    X(E_WILDCARD, 2, "a wildcard where none is allowed") \
    X(E_CN_TOO_LONG, 2, "the subject CN is over 64 characters") \
    X(E_NO_SIP_DOMAIN, 2, "external Edge certificate without a SIP domain") \
    X(E_XMPP_UNSUPPORTED, 2, "XMPP domains with a product that has no XMPP gateway") \
    X(E_HLB_NAT, 2, "hardware load balancing with NAT") \
    X(E_CONFLICT, 2, "Edge profile keys that contradict each other") \
    X(E_VALUE, 2, "an Edge profile key with a value it does not take") \
    X(E_SUBJECT, 2, "a subject attribute of the wrong form") \
    X(E_NAMES, 2, "no names, or names that cannot be ordered") \
    X(E_KEY_TYPE, 2, "unknown key type, or one the plan or token refuses") \
    X(E_DIGEST, 2, "unknown [csr] hash") \
    X(E_TEMPLATE, 2, "[csr] ms-template is not printable ASCII") \
    /* token, PIN and keys */ \
    X(E_URI, 2, "not a usable PKCS#11 URI") \
    X(E_MODULE, 1, "a PKCS#11 module cannot be loaded or started") \
    X(E_NO_TOKEN, 1, "no token matches the URI") \
    X(E_AMBIGUOUS_TOKEN, 1, "several tokens match the URI") \
    X(E_TOKEN, 1, "the token failed or returned something unusable") \
    X(E_NO_PIN, 2, "the token needs a PIN and no PIN source gave one") \
    X(E_PIN, 2, "the PIN given is empty or could not be read") \
    X(E_PIN_FILE, 2, "the PIN file cannot be used (unreadable, not a regular file)") \
    X(E_PIN_FILE_MODE, 2, "the PIN file can be read by others or written by group/others") \
    X(E_TERMINAL, 1, "the terminal cannot be put in no-echo mode for the PIN prompt") \
    X(E_PIN_INCORRECT, 1, "the token rejected the PIN (never retried)") \
    X(E_PIN_LOCKED, 1, "the user PIN is locked") \
    X(E_PIN_FINAL_TRY, 1, "one PIN attempt left; refused without --allow-final-pin-try") \
    X(E_PIN_EXPIRED, 1, "the PIN has expired") \
    X(E_LOGIN, 1, "C_Login failed for another reason") \
    X(E_LABEL, 2, "a key label that is empty, too long or not UTF-8") \
    X(E_ID, 2, "a key id that is not hex or is too long") \
    X(E_LABEL_TAKEN, 1, "the token already has a key with this label") \
    X(E_ID_TAKEN, 1, "the token already has an object with this id") \
    X(E_LABEL_IMMUTABLE, 1, "the token refuses to change labels") \
    X(E_NO_KEY, 1, "no key with this label on the token") \
    X(E_AMBIGUOUS_KEY, 1, "several keys match") \
    X(E_KEY, 1, "a key on the token is malformed, of an unsupported type or unusable") \
    X(E_KEY_MISMATCH, 1, "the key on the token is of another type than the profile asks") \
    X(E_UNSUPPORTED, 1, "the token cannot generate this key type") \
    X(E_KEYGEN, 1, "key generation on the token failed") \
    X(E_KEY_UNSAFE, 1, "a key is not sensitive and never-extractable") \
    X(E_RANDOM, 1, "no random bytes") \
    X(E_SIGN, 1, "signing on the token failed or gave a bad signature") \
    X(E_CRYPTO, 1, "an OpenSSL encoding step failed") \
    /* certificates and files */ \
    X(E_CERT_FILE, 2, "a certificate file is unreadable, corrupt or truncated") \
    X(E_CERT_KEY, 1, "the certificate is not for the key") \
    X(E_CERT, 1, "a certificate is unusable (validity, EKU, CA flag, encoding)") \
    X(E_CERT_NAMES, 1, "the certificate's names differ from the plan") \
    X(E_CHAIN, 1, "the chain does not link to the certificate") \
    X(E_CERT_INVALID, 2, "an input certificate that is expired, not yet valid, a CA or lacks a planned EKU") \
    X(E_FILE, 1, "a file or directory cannot be written or read") \
    /* CA and network */ \
    X(E_URL, 2, "a CA URL that is not https, or of another origin") \
    X(E_ACME_ORIGIN, 1, "the CA sent a URL outside the directory's origin and [ca] allow-origins") \
    X(E_CA_BUNDLE, 2, "[ca] ca-bundle cannot be read") \
    X(E_CA_TYPE, 2, "the command needs another [ca] type") \
    X(E_EAB, 2, "the External Account Binding key cannot be read") \
    X(E_EAB_REQUIRED, 2, "the CA requires External Account Binding") \
    X(E_ACCOUNT_KEY, 2, "[ca] account-key does not name a usable key") \
    X(E_HTTP, 1, "the HTTP client cannot be set up") \
    X(E_NETWORK, 1, "the CA cannot be reached") \
    X(E_TLS, 1, "TLS with the CA failed") \
    X(E_HTTP_SIZE, 1, "a response larger than allowed") \
    X(E_HTTP_LISTEN, 2, "[ca] http-listen is not a usable HOST:PORT") \
    X(E_HTTP_RESPONDER, 1, "the http-01 responder cannot listen or start") \
    X(E_ACME, 1, "the CA returned an ACME problem") \
    X(E_ACME_RESPONSE, 1, "the CA returned a malformed response") \
    X(E_ACME_CHALLENGE, 1, "the CA could not validate a challenge") \
    X(E_JWK, 1, "the account key cannot sign JWS") \
    X(E_JWS, 1, "a JWS request cannot be built") \
    X(E_TIMEOUT, 1, "the run's deadline passed") \
    X(E_WEBROOT, 1, "the http-01 webroot cannot be written") \
    X(E_HOOK, 1, "a hook failed, timed out or cannot be run") \
    /* renewal */ \
    X(E_STATE, 1, "the renewal state is inconsistent with the token") \
    X(E_LOCKED, 1, "another run holds the profile's lock") \
    X(E_POOL_BUSY, 1, "another pool member holds the pool's lease (renew --no-wait)")

#endif
