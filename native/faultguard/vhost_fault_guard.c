/*
 * vhost_fault_guard: survives a guest-RAM file shrunk under the daemon.
 *
 * A front-end that truncates a guest-memory file the daemon has mapped (one that cannot carry
 * F_SEAL_SHRINK: memory-backend-file on tmpfs or hugetlbfs, a memfd without MFD_ALLOW_SEALING)
 * makes every access of the daemon to a page past the new end of the file raise SIGBUS
 * (BUS_ADRERR). The .NET runtime turns that into a fatal AccessViolationException.
 *
 * This SIGBUS handler is installed after the runtime's and chains to it for every fault it does
 * not own. It owns a fault at an address inside a registered range (a guest-memory mapping): it
 * replaces the whole range with private anonymous memory (MAP_FIXED), marks the range lost and
 * returns; the faulting access is retried and reads zeros. The daemon sees the mark, fails the
 * connection's rings and drops the connection.
 *
 * Async-signal-safe by construction: the handler uses atomics on a fixed static table, mmap and
 * sigaction only; no allocation, no lock, no managed code. Registration is lock-free too (a slot
 * is claimed with a compare-and-swap; a generation number lets the handler reject a slot that
 * was rewritten while it read it).
 *
 * Build: native/faultguard/build.sh (reproducible; the result is checked in under
 * src/VhostUserBackend/runtimes/linux-x64/native/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#define VFG_EXPORT __attribute__((visibility("default")))
#define VFG_SLOTS 4096
#define VFG_VERSION 1

enum { SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_ACTIVE = 2 };

struct vfg_slot {
    _Atomic uint32_t state;
    _Atomic uint32_t lost;
    _Atomic uint64_t generation;
    _Atomic uintptr_t start;
    _Atomic uintptr_t end; /* exclusive */
};

static struct vfg_slot slots[VFG_SLOTS];
static _Atomic uint64_t faults_handled;
static _Atomic int installed;
static struct sigaction previous;

static void chain(int sig, siginfo_t *info, void *context)
{
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        /* What the kernel would have done: back to the default action; the access faults
           again on return and the process dies of SIGBUS, as it would have without us. */
        struct sigaction dfl;
        dfl.sa_handler = SIG_DFL;
        dfl.sa_flags = 0;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
    } else {
        previous.sa_handler(sig);
    }
}

/* The slot whose active range holds addr, read consistently; -1 when none. */
static int find(uintptr_t addr, uintptr_t *start, uintptr_t *end)
{
    for (int i = 0; i < VFG_SLOTS; i++) {
        struct vfg_slot *s = &slots[i];
        uint64_t g1 = atomic_load(&s->generation);
        if (atomic_load(&s->state) != SLOT_ACTIVE) {
            continue;
        }
        uintptr_t a = atomic_load(&s->start);
        uintptr_t b = atomic_load(&s->end);
        if (atomic_load(&s->state) != SLOT_ACTIVE || atomic_load(&s->generation) != g1) {
            continue;
        }
        if (addr >= a && addr < b) {
            *start = a;
            *end = b;
            return i;
        }
    }
    return -1;
}

static void handler(int sig, siginfo_t *info, void *context)
{
    int saved = errno;
    if (info != NULL && info->si_code == BUS_ADRERR) {
        uintptr_t start, end;
        int i = find((uintptr_t)info->si_addr, &start, &end);
        if (i >= 0) {
            void *r = mmap((void *)start, end - start, PROT_READ | PROT_WRITE,
                           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (r != MAP_FAILED) {
                atomic_store(&slots[i].lost, 1);
                atomic_fetch_add(&faults_handled, 1);
                errno = saved;
                return;
            }
        }
    }
    errno = saved;
    chain(sig, info, context);
}

/* The ABI version this library implements (the managed side checks it). */
VFG_EXPORT int vfg_version(void)
{
    return VFG_VERSION;
}

/* Installs the handler on top of the current SIGBUS action (once; later calls return 0 at once).
   Returns 0, or -errno. */
VFG_EXPORT int vfg_install(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) {
        return 0;
    }
    if (sigaction(SIGBUS, NULL, &previous) != 0) {
        int e = errno;
        atomic_store(&installed, 0);
        return -e;
    }
    struct sigaction action;
    action.sa_sigaction = handler;
    /* The stack and restart behaviour of the handler we chain to, so it runs as it always did. */
    action.sa_flags = SA_SIGINFO | (previous.sa_flags & (SA_ONSTACK | SA_RESTART));
    action.sa_mask = previous.sa_mask;
    if (sigaction(SIGBUS, &action, NULL) != 0) {
        int e = errno;
        atomic_store(&installed, 0);
        return -e;
    }
    return 0;
}

/* Registers [start, start + length); returns the slot, or -1 when the table is full. */
VFG_EXPORT int vfg_register(uintptr_t start, uintptr_t length)
{
    if (length == 0 || start + length < start) {
        return -1;
    }
    for (int i = 0; i < VFG_SLOTS; i++) {
        uint32_t expected = SLOT_FREE;
        if (atomic_compare_exchange_strong(&slots[i].state, &expected, SLOT_WRITING)) {
            atomic_fetch_add(&slots[i].generation, 1);
            atomic_store(&slots[i].start, start);
            atomic_store(&slots[i].end, start + length);
            atomic_store(&slots[i].lost, 0);
            atomic_store(&slots[i].state, SLOT_ACTIVE);
            return i;
        }
    }
    return -1;
}

/* Unregisters a slot (before its range is unmapped). */
VFG_EXPORT void vfg_unregister(int slot)
{
    if (slot < 0 || slot >= VFG_SLOTS) {
        return;
    }
    atomic_store(&slots[slot].state, SLOT_WRITING);
    atomic_fetch_add(&slots[slot].generation, 1);
    atomic_store(&slots[slot].state, SLOT_FREE);
}

/* The address of the slot's lost flag (0, or 1 once the handler replaced the range). */
VFG_EXPORT const _Atomic uint32_t *vfg_lost_flag(int slot)
{
    return slot >= 0 && slot < VFG_SLOTS ? &slots[slot].lost : NULL;
}

/* The address of the count of faults the handler took over (never decreases). */
VFG_EXPORT const _Atomic uint64_t *vfg_fault_counter(void)
{
    return &faults_handled;
}
