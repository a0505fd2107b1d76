/* The pure rules of replication; see replica_logic.h. */
#include "replica_logic.h"

#include <assert.h>
#include <stddef.h>

bool replica_contains(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static const replica_progress_t *find_progress(const replica_progress_t *prog, int32_t nprog,
                                               int32_t id)
{
    for (int32_t i = 0; i < nprog; i++)
        if (prog[i].id == id)
            return &prog[i];
    return NULL;
}

void replica_progress_reset(replica_progress_t *p, int32_t id, int64_t now_ms)
{
    p->id = id;
    p->leo = -1;
    p->caught_up_ms = now_ms;
    p->last_fetch_leader_leo = -1;
    p->last_fetch_ms = now_ms;
}

void replica_progress_on_fetch(replica_progress_t *p, int64_t fetch_offset, int64_t leader_leo,
                               int64_t now_ms)
{
    assert(fetch_offset >= 0);
    assert(fetch_offset <= leader_leo);
    if (fetch_offset >= leader_leo)
        p->caught_up_ms = now_ms;
    else if (p->last_fetch_leader_leo >= 0 && fetch_offset >= p->last_fetch_leader_leo &&
             p->last_fetch_ms > p->caught_up_ms)
        p->caught_up_ms = p->last_fetch_ms;
    p->leo = fetch_offset;
    p->last_fetch_leader_leo = leader_leo;
    p->last_fetch_ms = now_ms;
}

int64_t replica_isr_high_watermark(int32_t self, int64_t leader_leo, const int32_t *isr,
                                   int32_t nisr, const replica_progress_t *prog, int32_t nprog)
{
    assert(leader_leo >= 0);
    int64_t hw = leader_leo;
    for (int32_t i = 0; i < nisr; i++) {
        if (isr[i] == self)
            continue;
        const replica_progress_t *p = find_progress(prog, nprog, isr[i]);
        if (!p || p->leo < 0)
            return -1;
        if (p->leo < hw)
            hw = p->leo;
    }
    return hw;
}

int32_t replica_desired_isr(int32_t self, const int32_t *replicas, int32_t nreplicas,
                            const int32_t *isr, int32_t nisr, const replica_progress_t *prog,
                            int32_t nprog, int64_t hw, int64_t epoch_start_offset, int64_t lag_ms,
                            int64_t now_ms, int32_t *out)
{
    assert(lag_ms > 0);
    int32_t n = 0;
    for (int32_t i = 0; i < nreplicas; i++) {
        int32_t id = replicas[i];
        bool keep;
        if (id == self) {
            keep = true;
        } else {
            const replica_progress_t *p = find_progress(prog, nprog, id);
            bool recent = p && now_ms - p->caught_up_ms <= lag_ms;
            if (replica_contains(isr, nisr, id))
                keep = recent;
            else
                keep = recent && p->leo >= 0 && p->leo >= hw && p->leo >= epoch_start_offset;
        }
        if (keep)
            out[n++] = id;
    }
    assert(n <= nreplicas);
    return n;
}

bool replica_same_set(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    if (na != nb)
        return false;
    for (int32_t i = 0; i < na; i++)
        if (!replica_contains(b, nb, a[i]))
            return false;
    return true;
}

int64_t replica_truncation_offset(int32_t leader_epoch, int64_t leader_end_offset,
                                  int32_t local_epoch, int64_t local_end_offset, int64_t local_leo)
{
    assert(local_leo >= 0);
    int64_t target = leader_end_offset < 0 ? 0 : leader_end_offset;
    /* Past the end of the epoch we share (or of our largest epoch below
     * it), the history is not known to match: the next fetch checks again
     * from there, so each round truncates further until the two agree. */
    if (leader_epoch >= 0 && local_end_offset >= 0 && local_end_offset < target)
        target = local_end_offset;
    if (leader_epoch >= 0 && local_end_offset < 0)
        target = 0; /* we have no epoch <= leader_epoch at all */
    (void)local_epoch;
    if (target > local_leo)
        target = local_leo;
    return target;
}
