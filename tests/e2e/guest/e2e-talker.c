/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * e2e-talker: guest-side stand-ins for the agent, for the end-to-end suite.
 *
 *   e2e-talker --hostile [--flood N]   garbage, overlong lines, bad values and a
 *                                      flood of N valid-looking lines per second
 *                                      (reports, one in ten a lie claiming
 *                                      pressure, and a hello every 1000)
 *   e2e-talker --newer-minor [--minor M]  a well-behaved agent that announces
 *                                      protocol minor M (default 7) and sends
 *                                      fields and (every 5th report) a message
 *                                      type this broker does not know
 *   e2e-talker --liar                  a consistent liar: every second the real
 *                                      agent's report with MemAvailable 8 MiB
 *                                      and PSI stalls (some 90 %, full 50 %,
 *                                      totals growing to match); it touches
 *                                      no memory
 *
 * The message texts come from the real agent (`ballast-agent --once --port -`),
 * so this tool does not duplicate the protocol's encoder; it edits the minor,
 * the seq and adds unknown fields with plain string operations.
 * Writes are non-blocking: while the host side is closed they are dropped.
 * The hostile mode never sends another protocol major: the broker rightly ends
 * such a session (goodbye), which would end the flood test before it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest-clock.h"

#define PORT         "/dev/virtio-ports/org.ballast.agent.0"
#define AGENT        "/usr/sbin/ballast-agent --once --port -"
#define LINE_MAX_LEN 8192

static int port_fd = -1;
static unsigned long long n_sent, n_dropped;

static void open_port(void)
{
    while ((port_fd = open(PORT, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
        fprintf(stderr, "e2e-talker: %s: %s\n", PORT, strerror(errno));
        sleep_s(1);
    }
}

/* Drain what the broker sent (welcome, requests): nobody answers here. The
 * first lines are logged so that a test can see that a welcome came. */
static void drain(void)
{
    static unsigned logged;
    char buf[4096];
    ssize_t n;

    while ((n = read(port_fd, buf, sizeof(buf) - 1)) > 0) {
        if (logged < 20) {
            buf[n] = '\0';
            fprintf(stderr, "e2e-talker: received: %s%s", buf, buf[n - 1] == '\n' ? "" : "\n");
            logged++;
        }
    }
}

/* Write all of buf, waiting briefly while the port is full; give up (drop)
 * after 50 ms so that a closed host side never blocks us. */
static void put(const char *buf, size_t len)
{
    double give_up = now_s() + 0.05;

    while (len > 0) {
        ssize_t n = write(port_fd, buf, len);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "e2e-talker: write: %s\n", strerror(errno));
            n_dropped++;
            return;
        }
        if (now_s() > give_up) {
            n_dropped++;
            return;
        }
        sleep_s(0.001);
    }
    n_sent++;
}

static void put_str(const char *s)
{
    put(s, strlen(s));
}

/* Read the agent's hello and report lines (without '\n'). */
static int agent_lines(char *hello, char *report)
{
    FILE *f = popen(AGENT, "r");
    int ok;

    if (!f)
        return 0;
    ok = fgets(hello, LINE_MAX_LEN, f) && fgets(report, LINE_MAX_LEN, f);
    pclose(f);
    if (!ok)
        return 0;
    hello[strcspn(hello, "\n")] = '\0';
    report[strcspn(report, "\n")] = '\0';
    return strchr(hello, '{') && strchr(report, '{');
}

/* Where the value of "key": starts in line, or NULL. */
static char *find_value(char *line, const char *key)
{
    char pat[64];
    char *v;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    v = strstr(line, pat);
    if (!v)
        return NULL;
    v += strlen(pat);
    while (*v == ' ' || *v == ':')
        v++;
    return v;
}

/* Replace the number after "key": in line (in place, LINE_MAX_LEN buffer). */
static void set_number(char *line, const char *key, unsigned long long value)
{
    char num[32], tmp[LINE_MAX_LEN];
    char *v = find_value(line, key), *e;

    if (!v)
        return;
    e = v;
    while (*e >= '0' && *e <= '9')
        e++;
    snprintf(num, sizeof(num), "%llu", value);
    snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(v - line), line, num, e);
    strcpy(line, tmp);
}

/* Replace the string after "key": in line (in place, LINE_MAX_LEN buffer). */
static void set_string(char *line, const char *key, const char *value)
{
    char tmp[LINE_MAX_LEN];
    char *v = find_value(line, key), *e;

    if (!v || *v != '"')
        return;
    e = strchr(v + 1, '"');
    if (!e)
        return;
    snprintf(tmp, sizeof(tmp), "%.*s\"%s%s", (int)(v - line), line, value, e);
    strcpy(line, tmp);
}

/* Insert text right after the opening '{'. */
static void insert_front(char *line, const char *text)
{
    char tmp[LINE_MAX_LEN];
    char *p = strchr(line, '{');

    if (!p)
        return;
    snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p + 1 - line), line, text, p + 1);
    strcpy(line, tmp);
}

/* Send one line and its '\n'. */
static void put_line(const char *line)
{
    static char out[LINE_MAX_LEN + 2];

    snprintf(out, sizeof(out), "%s\n", line);
    put_str(out);
}

/* A second later: drain what the broker sent, take fresh template lines. */
static int next_lines(char *hello, char *report)
{
    sleep_s(1);
    drain();
    return agent_lines(hello, report);
}

/* set_number() on the first `key` after the first `after` (e.g. "full"). */
static void set_number_after(char *line, const char *after, const char *key,
                             unsigned long long value)
{
    char pat[64];
    char *p;

    snprintf(pat, sizeof(pat), "\"%s\"", after);
    p = strstr(line, pat);
    if (p)
        set_number(p, key, value);
}

static int liar(void)
{
    static char hello[LINE_MAX_LEN], report[LINE_MAX_LEN];
    unsigned long long some_us = 0, full_us = 0, n = 0;

    if (!agent_lines(hello, report)) {
        fprintf(stderr, "e2e-talker: cannot get template lines from '%s'\n", AGENT);
        return 1;
    }
    put_line(hello);
    for (;;) {
        if (!next_lines(hello, report))
            continue;
        some_us += 900000;
        full_us += 500000;
        set_number(report, "available_kib", 8192);
        set_number_after(report, "some", "avg10", 90);
        set_number_after(report, "some", "total_us", some_us);
        set_number_after(report, "full", "avg10", 50);
        set_number_after(report, "full", "total_us", full_us);
        put_line(report);
        if (n++ % 10 == 0)
            fprintf(stderr, "e2e-talker: liar report: %s\n", report);
    }
}

static int newer_minor(unsigned minor)
{
    static char hello[LINE_MAX_LEN], report[LINE_MAX_LEN];
    static const char unknown[] =
        "\"x_future_object\":{\"nested\":[1,\"two\",null,{\"deep\":true}]},"
        "\"x_future_number\":12345678901234,\"x_future_string\":\"from a newer agent\",";
    unsigned long long seq = 0;

    if (!agent_lines(hello, report)) {
        fprintf(stderr, "e2e-talker: cannot get template lines from '%s'\n", AGENT);
        return 1;
    }
    set_number(hello, "minor", minor);
    insert_front(hello, unknown);
    fprintf(stderr, "e2e-talker: hello: %s\n", hello);
    put_line(hello);
    for (;;) {
        if (!next_lines(hello, report))
            continue;
        set_number(report, "seq", ++seq);
        insert_front(report, unknown);
        put_line(report);
        /* A message type a newer minor might add: to be skipped, not fatal. */
        if (seq % 5 == 0)
            put_str("{\"type\":\"x-future-message\",\"v\":1,\"payload\":{\"n\":1}}\n");
        if (seq % 10 == 1)
            fprintf(stderr, "e2e-talker: report %llu: %s\n", seq, report);
    }
}

static int hostile(unsigned flood)
{
    static char hello[LINE_MAX_LEN], report[LINE_MAX_LEN], lie[LINE_MAX_LEN],
        line[LINE_MAX_LEN + 2];
    static const char *bad[] = {
        "{\"type\":\"report\"",
        "not json at all",
        "[1,2,3]",
        "\"a string\"",
        "{\"type\":\"no-such-type\",\"v\":1}",
        "{\"type\":\"report\",\"v\":1,\"seq\":-5}",
        "{\"type\":\"report\",\"v\":1,\"seq\":1e999}",
        "{\"v\":1}",
        "\xff\xfe\xfd invalid utf-8 \xc3\x28",
        "{\"type\":\"report\",\"v\":1,\"seq\":1,\"mem\":{\"total_kib\":1,\"available_kib\":"
        "999999999999}}",
        "",
    };
    const size_t overlong = 300 * 1024;
    char *big = malloc(overlong + 1);
    unsigned long long seq = 0;
    double t_stat = now_s();

    if (!big || !agent_lines(hello, report)) {
        fprintf(stderr, "e2e-talker: cannot get template lines from '%s'\n", AGENT);
        return 1;
    }
    /* a lie: pressure claimed, nothing touched (every 10th report) */
    memcpy(lie, report, sizeof(lie));
    set_string(lie, "reason", "pressure");
    set_number(lie, "available_kib", 1024);
    memset(big, 'A', overlong);
    big[0] = '{';
    big[overlong] = '\n';
    for (;;) {
        double t0 = now_s();
        unsigned char garbage[4096];

        /* 1. random binary garbage (newlines included) */
        for (size_t i = 0; i < sizeof(garbage); i++)
            garbage[i] = (unsigned char)rand();
        put((char *)garbage, sizeof(garbage));
        /* 2. malformed, wrong-version and out-of-range lines */
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(line, sizeof(line), "%s\n", bad[i]);
            put_str(line);
        }
        /* 3. an overlong line, and a deeply nested one */
        put(big, overlong + 1);
        memset(line, '[', 5000);
        strcpy(line + 5000, "\n");
        put_str(line);
        /* 4. a flood of valid-looking reports and hellos for the rest of the second */
        for (unsigned i = 0; i < flood; i++) {
            if (i % 100 == 0) {
                drain();
                sleep_s(t0 + (double)i / flood - now_s());
            }
            if (i % 1000 == 0) {
                snprintf(line, sizeof(line), "%s\n", hello);
            } else if (i % 10 == 0) {
                set_number(lie, "seq", ++seq);
                snprintf(line, sizeof(line), "%s\n", lie);
            } else {
                set_number(report, "seq", ++seq);
                snprintf(line, sizeof(line), "%s\n", report);
            }
            put_str(line);
        }
        if (now_s() - t_stat >= 5) {
            fprintf(stderr, "e2e-talker: hostile: %llu writes, %llu dropped\n", n_sent, n_dropped);
            t_stat = now_s();
        }
        sleep_s(t0 + 1 - now_s());
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"hostile", no_argument, NULL, 'H'},     {"newer-minor", no_argument, NULL, 'N'},
        {"liar", no_argument, NULL, 'L'},        {"flood", required_argument, NULL, 'f'},
        {"minor", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0},
    };
    int mode = 0, c;
    unsigned flood = 10000, minor = 7;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
        case 'N':
        case 'L':
            mode = c;
            break;
        case 'f':
            flood = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            minor = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!mode) {
        fprintf(stderr,
                "usage: e2e-talker --hostile [--flood N] | --newer-minor [--minor M] | --liar\n");
        return 2;
    }
    srand((unsigned)time(NULL));
    open_port();
    if (mode == 'L')
        return liar();
    return mode == 'H' ? hostile(flood) : newer_minor(minor);
}
