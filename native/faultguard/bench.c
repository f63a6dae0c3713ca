/*
 * Measures the fault guard by itself (not part of the build): the cost of the first access to a
 * registered mapping after its memfd was truncated to 0 (signal delivery + replacement).
 *   gcc -O2 -o /tmp/fgbench native/faultguard/bench.c -ldl
 *   /tmp/fgbench src/VhostUserBackend/runtimes/linux-x64/native/libvhostfaultguard.so
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW); if (!h) { puts(dlerror()); return 1; }
    int (*install)(void) = dlsym(h, "vfg_install");
    int (*reg)(uintptr_t, uintptr_t) = dlsym(h, "vfg_register");
    const uint32_t *(*lost)(int) = dlsym(h, "vfg_lost_flag");
    size_t sizes[] = {2<<20, 256<<20, 1024UL<<20};
    install();
    for (int k = 0; k < 3; k++) {
        size_t n = sizes[k];
        int fd = memfd_create("bench", 0); ftruncate(fd, n);
        char *p = mmap(NULL, n, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_NORESERVE, fd, 0);
        memset(p, 1, n);
        int s = reg((uintptr_t)p, n);
        ftruncate(fd, 0);
        struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
        volatile char c = p[n - 1];
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%zu MiB populated: first faulting access %.1f us, read %d, lost %u\n", n >> 20, (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3, c, *lost(s));
        ((void (*)(int))dlsym(h, "vfg_unregister"))(s); munmap(p, n); close(fd);
    }
    return 0;
}
