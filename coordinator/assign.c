/* Replica assignment and leader election: the controller's pure decisions. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "xalloc.h"

bool coord_contains(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

int32_t *coord_copy_ids(const int32_t *ids, int32_t n)
{
    assert(n >= 0);
    int32_t *out = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(*out));
    if (n > 0)
        memcpy(out, ids, (size_t)n * sizeof(*out));
    return out;
}

static int cmp_broker_id(const void *a, const void *b)
{
    const assign_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static const char *rack_of(const assign_broker_t *b)
{
    return b->rack ? b->rack : "";
}

/* Orders brokers so that consecutive entries are on different racks while
 * racks remain: racks sorted by name, and then one broker from each rack in
 * turn (brokers within a rack by id). Without racks this is the id order. */
static void rack_alternate(assign_broker_t *sorted, size_t n)
{
    const char **racks = xcalloc(n, sizeof(*racks));
    size_t nracks = 0;
    for (size_t i = 0; i < n; i++) {
        size_t r = 0;
        while (r < nracks && strcmp(racks[r], rack_of(&sorted[i])) != 0)
            r++;
        if (r == nracks)
            racks[nracks++] = rack_of(&sorted[i]);
    }
    for (size_t i = 1; i < nracks; i++) /* insertion sort: few racks */
        for (size_t j = i; j > 0 && strcmp(racks[j - 1], racks[j]) > 0; j--) {
            const char *t = racks[j];
            racks[j] = racks[j - 1];
            racks[j - 1] = t;
        }
    assign_broker_t *out = xcalloc(n, sizeof(*out));
    bool *taken = xcalloc(n, sizeof(*taken));
    size_t o = 0;
    while (o < n) {
        for (size_t r = 0; r < nracks; r++) {
            for (size_t i = 0; i < n; i++) {
                if (!taken[i] && strcmp(rack_of(&sorted[i]), racks[r]) == 0) {
                    taken[i] = true;
                    out[o++] = sorted[i];
                    break;
                }
            }
        }
    }
    assert(o == n);
    memcpy(sorted, out, n * sizeof(*out));
    free(taken);
    free(out);
    free(racks);
}

int coord_assign_replicas(const assign_broker_t *brokers, size_t nbrokers, int32_t first_partition,
                          int32_t count, int32_t rf, int32_t start_index, int32_t *out)
{
    assert(first_partition >= 0 && count >= 0);
    if (rf < 1 || (size_t)rf > nbrokers)
        return -1;
    const int32_t n = (int32_t)nbrokers;
    assign_broker_t *order = xcalloc(nbrokers, sizeof(*order));
    memcpy(order, brokers, nbrokers * sizeof(*order));
    qsort(order, nbrokers, sizeof(*order), cmp_broker_id);
    bool racks = false;
    for (size_t i = 0; i < nbrokers; i++)
        racks = racks || (order[i].rack && order[i].rack[0]);
    if (racks)
        rack_alternate(order, nbrokers);
    size_t nracks = 0;
    for (int32_t i = 0; i < n; i++) {
        bool seen = false;
        for (int32_t j = 0; j < i; j++)
            seen = seen || strcmp(rack_of(&order[i]), rack_of(&order[j])) == 0;
        nracks += !seen;
    }

    if (start_index < 0)
        start_index = 0;
    for (int32_t k = 0; k < count; k++) {
        int32_t p = first_partition + k;
        int32_t *replicas = out + (size_t)k * (size_t)rf;
        int32_t leader_pos = (start_index + p) % n;
        /* The follower shift grows by one each time the leaders wrap
         * around, so the followers of one broker's partitions spread. */
        int32_t shift = n > 1 ? (p / n) % (n - 1) : 0;
        replicas[0] = order[leader_pos].id;
        const char *used_racks[COORD_MAX_REPLICAS];
        size_t nused = 0;
        used_racks[nused++] = rack_of(&order[leader_pos]);
        for (int32_t j = 1; j < rf; j++) {
            int32_t chosen = -1;
            /* Walk candidates from the shifted position: first pass wants a
             * new rack, second takes any unused broker. */
            for (int pass = 0; pass < 2 && chosen < 0; pass++) {
                for (int32_t step = 0; step < n - 1 && chosen < 0; step++) {
                    int32_t pos = (leader_pos + 1 + (shift + j - 1 + step) % (n - 1)) % n;
                    const assign_broker_t *b = &order[pos];
                    if (coord_contains(replicas, j, b->id))
                        continue;
                    bool rack_used = false;
                    for (size_t u = 0; u < nused; u++)
                        rack_used = rack_used || strcmp(used_racks[u], rack_of(b)) == 0;
                    if (pass == 0 && rack_used && nused < nracks)
                        continue;
                    chosen = pos;
                }
            }
            assert(chosen >= 0);
            replicas[j] = order[chosen].id;
            if (nused < COORD_MAX_REPLICAS)
                used_racks[nused++] = rack_of(&order[chosen]);
        }
    }
    free(order);
    return 0;
}

int32_t coord_elect_leader(const int32_t *replicas, int32_t nreplicas, const int32_t *isr,
                           int32_t nisr, broker_live_fn live, void *live_arg, bool unclean,
                           bool *unclean_used)
{
    assert(nreplicas >= 0 && nisr >= 0);
    *unclean_used = false;
    for (int32_t i = 0; i < nreplicas; i++)
        if (coord_contains(isr, nisr, replicas[i]) && live(live_arg, replicas[i]))
            return replicas[i];
    if (!unclean)
        return -1;
    for (int32_t i = 0; i < nreplicas; i++) {
        if (live(live_arg, replicas[i])) {
            *unclean_used = true;
            return replicas[i];
        }
    }
    return -1;
}
