/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * e2e-chan: run one shell command in an end-to-end test guest through its
 * virtio-serial port org.ballast.test.0 (the unix socket libvirt made for it).
 *
 *   e2e-chan [-t SECONDS] SOCKET COMMAND
 *
 * Sends "<nonce> <command>\n"; the guest's /init answers "\035<nonce>\n",
 * the output, then "\036<nonce> <status>\n". Output from an earlier client that
 * gave up (it waits in the port until someone reads) is skipped by nonce.
 * Prints the command's output and exits with its status; 124 on timeout,
 * 125 when the socket cannot be used.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    double timeout = 30;
    char nonce[32], start[40], end[40];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    long long deadline;
    int fd, c, started = 0;

    while ((c = getopt(argc, argv, "t:")) != -1) {
        if (c == 't') {
            timeout = atof(optarg);
        } else {
            fprintf(stderr, "usage: e2e-chan [-t SECONDS] SOCKET COMMAND\n");
            return 125;
        }
    }
    if (argc - optind != 2 || strlen(argv[optind]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: e2e-chan [-t SECONDS] SOCKET COMMAND\n");
        return 125;
    }
    strcpy(sa.sun_path, argv[optind]);
    snprintf(nonce, sizeof(nonce), "n%ld%lld", (long)getpid(), now_ms());
    snprintf(start, sizeof(start), "\035%s\n", nonce);
    snprintf(end, sizeof(end), "\036%s ", nonce);
    deadline = now_ms() + (long long)(timeout * 1000);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "e2e-chan: %s: %s\n", sa.sun_path, strerror(errno));
        return 125;
    }
    if (dprintf(fd, "%s %s\n", nonce, argv[optind + 1]) < 0) {
        fprintf(stderr, "e2e-chan: write: %s\n", strerror(errno));
        return 125;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        char *p, *e;
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            fprintf(stderr, "e2e-chan: timeout after %.1f s: %s\n", timeout, argv[optind + 1]);
            if (started)
                fwrite(buf, 1, len, stdout);
            return 124;
        }
        if (len + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                return 125;
        }
        n = read(fd, buf + len, 4096);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "e2e-chan: connection closed\n");
            return 125;
        }
        len += (size_t)n;
        buf[len] = '\0';
        if (!started) {
            p = memmem(buf, len, start, strlen(start));
            if (!p)
                continue;
            /* Drop everything up to and including our start marker. */
            p += strlen(start);
            len -= (size_t)(p - buf);
            memmove(buf, p, len);
            buf[len] = '\0';
            started = 1;
        }
        p = memmem(buf, len, end, strlen(end));
        if (p && (e = memchr(p, '\n', len - (size_t)(p - buf)))) {
            fwrite(buf, 1, (size_t)(p - buf), stdout);
            return atoi(p + strlen(end));
        }
    }
}
