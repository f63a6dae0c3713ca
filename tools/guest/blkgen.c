/*
 * blkgen: a guest-side block writer with many writes in flight whose data says which write it is,
 * so a lost, stale, torn or misplaced write shows in the disk afterwards. Built static by
 * mkinitramfs.sh into the test guest as /usr/bin/blkgen.
 *
 *   blkgen write DEV LANES BLOCKS BLOCK_SIZE SEED GENS
 *     LANES threads, each with exactly one O_DIRECT pwrite in flight (so LANES writes are in
 *     flight at once). Lane l owns blocks l, l+LANES, l+2*LANES, ... below BLOCKS and writes each
 *     of them GENS times, generation 1 to GENS, the next generation only after the previous one
 *     completed, then moves to its next block. Prints "started" once every lane runs and, at the
 *     end, "writes=N errors=E seconds=S"; each failed or short write is printed as
 *     "error lane=L block=B gen=G result=R". Exit status 0 when every write succeeded.
 *
 *   blkgen passes DEV A B CHUNK CHUNKS DIR
 *     One process, one O_DIRECT pwrite at a time, no fork per write (a shell loop of dd churns
 *     pages, which QEMU 7.2's TCG migration mishandles: docs/vm-lifecycle.md). Pass p writes file
 *     A (p even) or B (p odd) to DEV, CHUNK bytes at a time, chunks 0 to CHUNKS-1, then the next
 *     pass; after each completed write it replaces DIR/progress with "p next-chunk" (written to a
 *     temporary file and renamed, so a reader never sees it empty). It stops when DIR/stop
 *     exists; a failed write leaves the reason in DIR/writer.failed and exits 1.
 *
 *   blkgen reads DEV CHUNK CHUNKS PAUSE_US DIR
 *     One process reads DEV once through the page cache (buffered, read-ahead off), CHUNK bytes at
 *     a time, chunks 0 to CHUNKS-1, into one buffer it reuses (no fork and no page freed per chunk,
 *     for the same reason as passes), sleeping PAUSE_US microseconds after each chunk (so the read
 *     spans a known time). After each chunk it replaces DIR/read with the number of chunks read
 *     (temporary file and rename). A failed read leaves the reason in DIR/reader.failed, exit 1.
 *
 *   blkgen verify DEV BLOCKS BLOCK_SIZE SEED GEN
 *     Reads every block with O_DIRECT (256 KiB per read) and checks it holds generation GEN exactly. Prints
 *     "verify ok=N stale=N zero=N bad=N" and the first mismatches. Exit status 0 when all are ok.
 *
 * Block B, generation G (G >= 1) of a run with SEED: bytes 0-7 "VTBLKGEN", then little-endian
 * u64 SEED, B and G, then u64 words i = 4.. of splitmix64(key + i) with
 * key = SEED ^ B * 0x9E3779B97F4A7C15 ^ G * 0xC2B2AE3D27D4EB4F (BlkGenPattern in the tests has the
 * same function).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char magic[8] = { 'V', 'T', 'B', 'L', 'K', 'G', 'E', 'N' };

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill(uint64_t *w, size_t bytes, uint64_t seed, uint64_t block, uint64_t gen)
{
    uint64_t key = seed ^ (block * 0x9E3779B97F4A7C15ull) ^ (gen * 0xC2B2AE3D27D4EB4Full);
    memcpy(&w[0], magic, 8);
    w[1] = seed;
    w[2] = block;
    w[3] = gen;
    for (size_t i = 4; i < bytes / 8; i++) {
        w[i] = splitmix64(key + i);
    }
}

static uint64_t number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *s == '\0' || *end != '\0') {
        fprintf(stderr, "blkgen: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

struct run {
    int fd;
    uint64_t lanes, blocks, block_size, seed, gens;
    atomic_ulong writes, errors;
    atomic_uint running;
};

struct lane {
    struct run *run;
    uint64_t index;
    pthread_t thread;
};

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    struct run *r = l->run;
    uint64_t *buf;
    if (posix_memalign((void **)&buf, 4096, r->block_size) != 0) {
        fprintf(stderr, "error lane=%" PRIu64 " no memory\n", l->index);
        atomic_fetch_add(&r->errors, 1);
        return NULL;
    }
    atomic_fetch_add(&r->running, 1);
    for (uint64_t b = l->index; b < r->blocks; b += r->lanes) {
        for (uint64_t g = 1; g <= r->gens; g++) {
            fill(buf, r->block_size, r->seed, b, g);
            ssize_t n = pwrite(r->fd, buf, r->block_size, (off_t)(b * r->block_size));
            if (n != (ssize_t)r->block_size) {
                fprintf(stderr, "error lane=%" PRIu64 " block=%" PRIu64 " gen=%" PRIu64 " result=%zd errno=%d\n", l->index, b, g, n, n < 0 ? errno : 0);
                atomic_fetch_add(&r->errors, 1);
            }
            atomic_fetch_add(&r->writes, 1);
        }
    }
    free(buf);
    return NULL;
}

static int do_write(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: blkgen write DEV LANES BLOCKS BLOCK_SIZE SEED GENS\n");
        return 2;
    }
    struct run r = { 0 };
    r.lanes = number(argv[3], "LANES");
    r.blocks = number(argv[4], "BLOCKS");
    r.block_size = number(argv[5], "BLOCK_SIZE");
    r.seed = number(argv[6], "SEED");
    r.gens = number(argv[7], "GENS");
    if (r.lanes == 0 || r.lanes > 1024 || r.blocks < r.lanes || r.block_size < 512 || r.block_size % 512 != 0 || r.gens == 0) {
        fprintf(stderr, "blkgen: need 1 <= LANES <= 1024, BLOCKS >= LANES, BLOCK_SIZE a multiple of 512, GENS >= 1\n");
        return 2;
    }
    r.fd = open(argv[2], O_WRONLY | O_DIRECT);
    if (r.fd < 0) {
        fprintf(stderr, "blkgen: open %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    struct lane *lanes = calloc(r.lanes, sizeof *lanes);
    double start = now();
    for (uint64_t i = 0; i < r.lanes; i++) {
        lanes[i].run = &r;
        lanes[i].index = i;
        if (pthread_create(&lanes[i].thread, NULL, lane_main, &lanes[i]) != 0) {
            fprintf(stderr, "blkgen: cannot start lane %" PRIu64 "\n", i);
            return 1;
        }
    }
    while (atomic_load(&r.running) < r.lanes && atomic_load(&r.errors) == 0) {
        usleep(1000);
    }
    printf("started lanes=%" PRIu64 "\n", r.lanes);
    fflush(stdout);
    for (uint64_t i = 0; i < r.lanes; i++) {
        pthread_join(lanes[i].thread, NULL);
    }
    printf("writes=%lu errors=%lu seconds=%.2f\n", atomic_load(&r.writes), atomic_load(&r.errors), now() - start);
    fflush(stdout);
    close(r.fd);
    return atomic_load(&r.errors) == 0 ? 0 : 1;
}

static int fail_in(const char *dir, const char *file, const char *mode, const char *what, long result, int err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "blkgen %s: %s: result %ld: %s\n", mode, what, result, err != 0 ? strerror(err) : "short");
        fclose(f);
    }
    fprintf(stderr, "blkgen %s: %s: result %ld: %s\n", mode, what, result, err != 0 ? strerror(err) : "short");
    return 1;
}

static int fail_passes(const char *dir, const char *what, long result, int err)
{
    return fail_in(dir, "writer.failed", "passes", what, result, err);
}

/* Replaces DIR/NAME with TEXT through DIR/NAME.tmp and rename(2): a reader never sees it empty. */
static int publish(const char *dir, const char *name, const char *text)
{
    char path[4096], temp[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(temp, sizeof temp, "%s/%s.tmp", dir, name);
    FILE *f = fopen(temp, "w");
    if (f == NULL) {
        return -1;
    }
    if (fputs(text, f) < 0) {
        fclose(f);
        return -1;
    }
    return fclose(f) != 0 || rename(temp, path) != 0 ? -1 : 0;
}

static int do_passes(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: blkgen passes DEV A B CHUNK CHUNKS DIR\n");
        return 2;
    }
    uint64_t chunk = number(argv[5], "CHUNK");
    uint64_t chunks = number(argv[6], "CHUNKS");
    const char *dir = argv[7];
    if (chunk < 512 || chunk % 512 != 0 || chunks == 0) {
        fprintf(stderr, "blkgen: need CHUNK a multiple of 512 and CHUNKS >= 1\n");
        return 2;
    }
    int dev = open(argv[2], O_WRONLY | O_DIRECT);
    int src[2] = { open(argv[3], O_RDONLY), open(argv[4], O_RDONLY) };
    if (dev < 0 || src[0] < 0 || src[1] < 0) {
        return fail_passes(dir, "open", -1, errno);
    }
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, chunk) != 0) {
        return fail_passes(dir, "no memory", -1, ENOMEM);
    }
    char stop[4096], what[64], text[64];
    snprintf(stop, sizeof stop, "%s/stop", dir);
    for (uint64_t p = 0, i = 0; access(stop, F_OK) != 0;) {
        off_t at = (off_t)(i * chunk);
        ssize_t n = pread(src[p % 2], buf, chunk, at);
        if (n != (ssize_t)chunk) {
            snprintf(what, sizeof what, "read pattern chunk %" PRIu64, i);
            return fail_passes(dir, what, n, n < 0 ? errno : 0);
        }
        n = pwrite(dev, buf, chunk, at);
        if (n != (ssize_t)chunk) {
            snprintf(what, sizeof what, "write chunk %" PRIu64 " of pass %" PRIu64, i, p);
            return fail_passes(dir, what, n, n < 0 ? errno : 0);
        }
        if (++i == chunks) {
            i = 0;
            p++;
        }
        snprintf(text, sizeof text, "%" PRIu64 " %" PRIu64 "\n", p, i);
        if (publish(dir, "progress", text) != 0) {
            return fail_passes(dir, "write progress", -1, errno);
        }
    }
    close(dev);
    return 0;
}

static int do_reads(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: blkgen reads DEV CHUNK CHUNKS PAUSE_US DIR\n");
        return 2;
    }
    uint64_t chunk = number(argv[3], "CHUNK");
    uint64_t chunks = number(argv[4], "CHUNKS");
    uint64_t pause = number(argv[5], "PAUSE_US");
    const char *dir = argv[6];
    if (chunk == 0 || chunks == 0) {
        fprintf(stderr, "blkgen: need CHUNK >= 1 and CHUNKS >= 1\n");
        return 2;
    }
    int dev = open(argv[2], O_RDONLY);
    if (dev < 0) {
        return fail_in(dir, "reader.failed", "reads", "open", -1, errno);
    }
    int advice = posix_fadvise(dev, 0, 0, POSIX_FADV_RANDOM);
    if (advice != 0) {
        return fail_in(dir, "reader.failed", "reads", "fadvise", -1, advice);
    }
    uint8_t *buf = malloc(chunk);
    if (buf == NULL) {
        return fail_in(dir, "reader.failed", "reads", "no memory", -1, ENOMEM);
    }
    char what[64], text[32];
    for (uint64_t i = 0; i < chunks; i++) {
        ssize_t n = pread(dev, buf, chunk, (off_t)(i * chunk));
        if (n != (ssize_t)chunk) {
            snprintf(what, sizeof what, "read chunk %" PRIu64, i);
            return fail_in(dir, "reader.failed", "reads", what, n, n < 0 ? errno : 0);
        }
        snprintf(text, sizeof text, "%" PRIu64 "\n", i + 1);
        if (publish(dir, "read", text) != 0) {
            return fail_in(dir, "reader.failed", "reads", "write progress", -1, errno);
        }
        struct timespec nap = { (time_t)(pause / 1000000), (long)(pause % 1000000) * 1000 };
        nanosleep(&nap, NULL);
    }
    close(dev);
    free(buf);
    return 0;
}

static int do_verify(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: blkgen verify DEV BLOCKS BLOCK_SIZE SEED GEN\n");
        return 2;
    }
    uint64_t blocks = number(argv[3], "BLOCKS");
    uint64_t block_size = number(argv[4], "BLOCK_SIZE");
    uint64_t seed = number(argv[5], "SEED");
    uint64_t gen = number(argv[6], "GEN");
    if (block_size < 512 || block_size % 512 != 0) {
        fprintf(stderr, "blkgen: BLOCK_SIZE must be a multiple of 512\n");
        return 2;
    }
    int fd = open(argv[2], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "blkgen: open %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    /* Up to 256 KiB per read: a slow back-end (--latency) then answers in a few dozen requests. */
    uint64_t per_read = block_size >= 256 * 1024 ? 1 : 256 * 1024 / block_size;
    uint8_t *chunk;
    uint64_t *want;
    if (posix_memalign((void **)&chunk, 4096, per_read * block_size) != 0 || posix_memalign((void **)&want, 4096, block_size) != 0) {
        fprintf(stderr, "blkgen: no memory\n");
        return 1;
    }
    unsigned long ok = 0, stale = 0, zero = 0, bad = 0, shown = 0;
    for (uint64_t first = 0; first < blocks; first += per_read) {
        uint64_t count = blocks - first < per_read ? blocks - first : per_read;
        ssize_t n = pread(fd, chunk, count * block_size, (off_t)(first * block_size));
        if (n != (ssize_t)(count * block_size)) {
            fprintf(stderr, "blkgen: read blocks %" PRIu64 "+%" PRIu64 ": result %zd: %s\n", first, count, n, n < 0 ? strerror(errno) : "short");
            return 1;
        }
        for (uint64_t b = first; b < first + count; b++) {
            uint64_t *got = (uint64_t *)(chunk + (b - first) * block_size);
            fill(want, block_size, seed, b, gen);
            if (memcmp(got, want, block_size) == 0) {
                ok++;
                continue;
            }
            const char *what = "bad";
            int is_zero = 1;
            for (uint64_t i = 0; i < block_size / 8; i++) {
                if (got[i] != 0) {
                    is_zero = 0;
                    break;
                }
            }
            if (is_zero) {
                zero++;
                what = "zero";
            } else if (memcmp(got, magic, 8) == 0 && got[1] == seed && got[2] == b && got[3] >= 1 && got[3] < gen) {
                fill(want, block_size, seed, b, got[3]);
                if (memcmp(got, want, block_size) == 0) {
                    stale++;
                    what = "stale";
                } else {
                    bad++;
                }
            } else {
                bad++;
            }
            if (shown++ < 8) {
                printf("mismatch block=%" PRIu64 " %s header-block=%" PRIu64 " header-gen=%" PRIu64 "\n", b, what, got[2], got[3]);
            }
        }
    }
    printf("verify ok=%lu stale=%lu zero=%lu bad=%lu\n", ok, stale, zero, bad);
    close(fd);
    return ok == blocks ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "write") == 0) {
        return do_write(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "passes") == 0) {
        return do_passes(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "reads") == 0) {
        return do_reads(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
        return do_verify(argc, argv);
    }
    fprintf(stderr, "usage: blkgen write DEV LANES BLOCKS BLOCK_SIZE SEED GENS | blkgen passes DEV A B CHUNK CHUNKS DIR | blkgen reads DEV CHUNK CHUNKS PAUSE_US DIR | blkgen verify DEV BLOCKS BLOCK_SIZE SEED GEN\n");
    return 2;
}
