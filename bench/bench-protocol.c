/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Protocol throughput, each figure next to a baseline run in the same process:
 *   decode+validate of a typical report  vs  plain json_tokener_parse of the same line
 *   encode of that report                vs  json_object_to_json_string of its tree
 *   framer over a stream of reports      vs  a bare memchr('\n') split of the same bytes
 * Prints figures only; there is no pass/fail on timing.
 */
#include "framer.h"
#include "protocol.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const char report_line[] =
    "{\"type\":\"report\",\"v\":1,\"seq\":42,\"uptime_ms\":4021,\"reason\":\"periodic\","
    "\"mem\":{\"total_kib\":496412,\"available_kib\":401220,\"free_kib\":380124,"
    "\"cached_kib\":30412,\"swap_total_kib\":1048572,\"swap_free_kib\":1048000,"
    "\"committed_as_kib\":61240},\"psi\":{\"some\":{\"avg10\":12.34,\"avg60\":5.5,"
    "\"avg300\":0.91,\"total_us\":1203456},\"full\":{\"avg10\":3,\"avg60\":1.25,\"avg300\":0,"
    "\"total_us\":802}},\"vmstat\":{\"pgmajfault\":120,\"pswpin\":7,\"pswpout\":19,"
    "\"workingset_refault_anon\":4,\"workingset_refault_file\":3,\"oom_kill\":1}}";

#define MIN_SECONDS 0.5
#define BATCH       1000

typedef void (*Op)(gpointer data);

/* Run op in batches until MIN_SECONDS have passed; returns operations per second. */
static double rate(Op op, gpointer data)
{
    gint64 start = g_get_monotonic_time(), now;
    guint64 n = 0;

    do {
        for (int i = 0; i < BATCH; i++)
            op(data);
        n += BATCH;
        now = g_get_monotonic_time();
    } while (now - start < (gint64)(MIN_SECONDS * G_USEC_PER_SEC));
    return (double)n * G_USEC_PER_SEC / (double)(now - start);
}

static volatile guint64 sink; /* keeps results alive */

static void op_decode(gpointer data)
{
    BlMessage msg;

    if (!bl_proto_decode(report_line, sizeof report_line - 1, &msg, NULL))
        g_error("the benchmark report does not decode");
    sink += msg.u.report.seq;
}

static void op_json_parse(gpointer data)
{
    json_object *o = json_tokener_parse(report_line);

    sink += o != NULL;
    json_object_put(o);
}

static BlMessage bench_msg;

static void op_encode_report(gpointer data)
{
    GString *out = data;

    g_string_truncate(out, 0);
    if (!bl_proto_encode(&bench_msg, out, NULL))
        g_error("the benchmark report does not encode");
    sink += out->len;
}

static void op_json_serialise(gpointer data)
{
    json_object *o = data;

    /* json-c caches the text per object; dropping the cache forces real work. */
    json_object_object_add(o, "seq", json_object_new_int64(42));
    sink += strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

typedef struct {
    GString *stream;
    BlFramer *framer;
    guint64 lines;
} FrameBench;

static gboolean count_line(const char *line, gsize len, gpointer user_data)
{
    ((FrameBench *)user_data)->lines++;
    return TRUE;
}

static void op_frame(gpointer data)
{
    FrameBench *fb = data;

    for (gsize off = 0; off < fb->stream->len; off += 4096)
        bl_framer_feed(fb->framer, fb->stream->str + off, MIN(4096, fb->stream->len - off),
                       count_line, fb);
}

static void op_memchr(gpointer data)
{
    FrameBench *fb = data;
    const char *p = fb->stream->str, *end = p + fb->stream->len;

    while ((p = memchr(p, '\n', (gsize)(end - p)))) {
        fb->lines++;
        p++;
    }
}

static void report(const char *what, double ours, const char *base_name, double base)
{
    printf("%-28s %12.0f /s   %-28s %12.0f /s   ratio %.2f\n", what, ours, base_name, base,
           ours / base);
}

int main(void)
{
    g_autoptr(GString) out = g_string_new(NULL);
    json_object *tree = json_tokener_parse(report_line);
    FrameBench fb = {.stream = g_string_new(NULL), .framer = bl_framer_new(BL_PROTO_MAX_LINE)};
    double ours, base;

    if (!bl_proto_decode(report_line, sizeof report_line - 1, &bench_msg, NULL))
        g_error("the benchmark report does not decode");
    printf("line: a typical report, %zu bytes; each figure from a run of at least %.1f s\n",
           sizeof report_line - 1, MIN_SECONDS);

    ours = rate(op_decode, NULL);
    base = rate(op_json_parse, NULL);
    report("decode+validate", ours, "json_tokener_parse", base);

    ours = rate(op_encode_report, out);
    base = rate(op_json_serialise, tree);
    report("encode (validate+write)", ours, "json-c to_json_string", base);

    for (int i = 0; i < 1000; i++)
        g_string_append_printf(fb.stream, "%s\n", report_line);
    ours = rate(op_frame, &fb);
    base = rate(op_memchr, &fb);
    report("framer, 1000-line stream", ours, "memchr split", base);
    printf("framer: %.0f MB/s, %.0f lines/s\n", ours * (double)fb.stream->len / 1e6, ours * 1000);

    json_object_put(tree);
    bl_framer_free(fb.framer);
    g_string_free(fb.stream, TRUE);
    return 0;
}
