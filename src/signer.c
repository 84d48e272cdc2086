/* signer.c - releasing a signer (the interface itself is in signer.h). */
#include "signer.h"

#include <string.h>

void
signer_clear(struct signer *s)
{
    if (s == NULL)
        return;
    if (s->ctx_free != NULL)
        s->ctx_free(s->ctx);
    memset(s, 0, sizeof(*s));
}
