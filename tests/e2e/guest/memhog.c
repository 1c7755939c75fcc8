/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memhog: the end-to-end suite's guest workload. Allocates anonymous memory
 * in 1 MiB steps at a chosen rate up to a chosen size, writes every page (with
 * page-unique contents, so neither the zero page nor KSM can share them), holds
 * it for a while and exits 0. Under memory pressure the kernel stalls it or
 * kills it; the suite tells the two apart by its exit status.
 *
 *   memhog --size MIB [--rate MIB_PER_S] [--hold SECONDS] [--quiet]
 *
 * Progress goes to standard output every 50 MiB, flushed, so that a log file
 * shows how far it got before an OOM kill. Plain libc, linked statically.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "guest-clock.h"

#define MIB (1024L * 1024L)

static long parse_num(const char *what, const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "memhog: bad %s '%s' (%ld..%ld)\n", what, s, min, max);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: memhog --size MIB [--rate MIB_PER_S] [--hold SECONDS] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"size", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"hold", required_argument, NULL, 'h'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    long size = -1, rate = 0, hold = 0;
    int quiet = 0, c;
    long page = sysconf(_SC_PAGESIZE);
    double t0, t;

    while ((c = getopt_long(argc, argv, "s:r:h:q", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            size = parse_num("size", optarg, 1, 1L << 20);
            break;
        case 'r':
            rate = parse_num("rate", optarg, 0, 1L << 20);
            break;
        case 'h':
            hold = parse_num("hold", optarg, 0, 86400);
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            usage();
        }
    }
    if (size < 0 || optind != argc)
        usage();

    printf("memhog: start size=%ld MiB rate=%ld MiB/s hold=%ld s\n", size, rate, hold);
    fflush(stdout);
    t0 = now_s();
    for (long i = 0; i < size; i++) {
        /* One mapping per MiB: no realloc copies, nothing freed until exit. */
        char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED) {
            printf("memhog: mmap failed at %ld MiB: %s\n", i, strerror(errno));
            return 1;
        }
        for (long off = 0; off < MIB; off += page) {
            uint64_t tag = ((uint64_t)i << 32) | (uint64_t)off;

            memcpy(p + off, &tag, sizeof(tag));
            p[off + sizeof(tag)] = (char)getpid();
        }
        if (!quiet && (i + 1) % 50 == 0) {
            printf("memhog: %ld MiB at %.2f s\n", i + 1, now_s() - t0);
            fflush(stdout);
        }
        if (rate > 0)
            sleep_s(t0 + (double)(i + 1) / (double)rate - now_s());
    }
    t = now_s() - t0;
    printf("memhog: reached %ld MiB in %.2f s (%.1f MiB/s)\n", size, t, (double)size / t);
    fflush(stdout);
    sleep_s((double)hold);
    printf("memhog: done\n");
    return 0;
}
