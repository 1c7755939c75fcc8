/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Framer tests: chunk boundaries, overlong lines, 0xFF resync, CRLF, early stop. */
#include "framer.h"
#include "protocol.h"
#include "vectors.h"

#include <string.h>

typedef struct {
    GPtrArray *lines; /* char*, as delivered */
    guint stop_after; /* return FALSE after this many lines; 0 = never */
} Sink;

static gboolean collect(const char *line, gsize len, gpointer user_data)
{
    Sink *sink = user_data;

    g_assert_cmpuint(strlen(line), ==, len); /* NUL-terminated, no NUL inside here */
    g_ptr_array_add(sink->lines, g_strndup(line, len));
    return sink->stop_after == 0 || sink->lines->len % sink->stop_after != 0;
}

static void sink_init(Sink *sink)
{
    sink->lines = g_ptr_array_new_with_free_func(g_free);
    sink->stop_after = 0;
}

static void assert_lines(const Sink *sink, const char *const *expect)
{
    guint n = g_strv_length((char **)expect);

    g_assert_cmpuint(sink->lines->len, ==, n);
    for (guint i = 0; i < n; i++)
        g_assert_cmpstr(sink->lines->pdata[i], ==, expect[i]);
}

/* Feed all of data in chunks whose sizes come from sizes (cycled), refeeding on stop. */
static void feed_all(BlFramer *f, const char *data, gsize len, const gsize *sizes, guint n_sizes,
                     Sink *sink)
{
    gsize off = 0;

    for (guint i = 0; off < len; i++) {
        gsize chunk = MIN(sizes[i % n_sizes], len - off);

        while (chunk > 0) {
            gsize used = bl_framer_feed(f, data + off, chunk, collect, sink);

            g_assert_cmpuint(used, <=, chunk);
            off += used;
            chunk -= used;
        }
    }
}

/* All valid vectors as one stream: every split must yield the same lines. */
static void test_chunk_boundaries(void)
{
    g_autoptr(GPtrArray) vectors = vectors_load("valid");
    g_autoptr(GString) stream = g_string_new(NULL);
    g_autoptr(GRand) rand = g_rand_new_with_seed(20261127);
    g_autoptr(GPtrArray) expect = g_ptr_array_new();

    for (guint i = 0; i < vectors->len; i++) {
        const Vector *v = vectors->pdata[i];

        g_string_append_len(stream, v->line, (gssize)v->len);
        g_string_append(stream, i % 3 == 0 ? "\r\n" : "\n");
        if (i % 4 == 0)
            g_string_append(stream, "\n\n"); /* empty lines are ignored */
        g_ptr_array_add(expect, v->line);
    }
    g_ptr_array_add(expect, NULL);

    for (int round = 0; round < 40; round++) {
        g_autoptr(BlFramer) f = bl_framer_new(BL_PROTO_MAX_LINE);
        gsize sizes[64];
        Sink sink;

        sink_init(&sink);
        for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
            sizes[i] = round == 0 ? 1 : (gsize)g_rand_int_range(rand, 1, round < 20 ? 16 : 4096);
        feed_all(f, stream->str, stream->len, sizes, G_N_ELEMENTS(sizes), &sink);
        assert_lines(&sink, (const char *const *)expect->pdata);
        g_assert_cmpuint(bl_framer_stats(f)->lines, ==, vectors->len);
        g_assert_cmpuint(bl_framer_stats(f)->bytes, ==, stream->len);
        g_assert_cmpuint(bl_framer_stats(f)->overlong, ==, 0);
        /* And every line decodes like the file did. */
        for (guint i = 0; i < sink.lines->len; i++) {
            g_autoptr(GError) error = NULL;
            const char *line = sink.lines->pdata[i];
            BlMessage msg;

            g_assert_true(bl_proto_decode(line, strlen(line), &msg, &error));
        }
        g_ptr_array_unref(sink.lines);
    }
}

/* A short stream cut in two at every position gives the same lines and stats. */
static void test_every_split(void)
{
    static const char data[] = "\xff{\"type\":\"ping\",\"v\":1,\"id\":7}\r\n\n"
                               "0123456789012345678901234567890123456789\n{\"b\":2}\n"
                               "par\xfftial\xff{\"c\":3}\r\n{\"d\"";
    const char *expect[] = {"{\"type\":\"ping\",\"v\":1,\"id\":7}", "{\"b\":2}", "{\"c\":3}", NULL};
    const gsize len = sizeof data - 1;

    for (gsize cut = 0; cut <= len; cut++) {
        g_autoptr(BlFramer) f = bl_framer_new(32);
        Sink sink;

        sink_init(&sink);
        g_assert_cmpuint(bl_framer_feed(f, data, cut, collect, &sink), ==, cut);
        g_assert_cmpuint(bl_framer_feed(f, data + cut, len - cut, collect, &sink), ==, len - cut);
        assert_lines(&sink, expect);
        g_assert_cmpuint(bl_framer_stats(f)->overlong, ==, 1);
        g_assert_cmpuint(bl_framer_stats(f)->resyncs, ==, 2);
        g_assert_cmpuint(bl_framer_stats(f)->bytes, ==, len);
        g_ptr_array_unref(sink.lines);
    }
}

/* Exactly BL_PROTO_MAX_LINE bytes with the '\n' passes; one more is dropped; then recovery. */
static void test_overlong(void)
{
    const gsize max = BL_PROTO_MAX_LINE;
    g_autofree char *ok = vectors_padded_report(max - 1);
    g_autofree char *ok_cr = vectors_padded_report(max - 2);
    g_autofree char *too_long = vectors_padded_report(max);
    g_autoptr(GString) s = g_string_new(NULL);
    const char *expect[] = {ok, "{\"after\":1}", ok_cr, "{\"after\":2}", NULL};
    const gsize sizes[] = {1000, 1, 65535, 7};

    g_string_append_printf(s, "%s\n", ok);
    g_string_append_printf(s, "%s\n", too_long);
    g_string_append(s, "{\"after\":1}\n");
    g_string_append_printf(s, "%s\r\n", ok_cr);              /* the '\r' counts toward the limit */
    g_string_append_printf(s, "%s%s\n", too_long, too_long); /* long way over */
    g_string_append(s, "{\"after\":2}\n");

    for (int split = 0; split < 2; split++) {
        g_autoptr(BlFramer) f = bl_framer_new(max);
        Sink sink;

        sink_init(&sink);
        if (split)
            feed_all(f, s->str, s->len, sizes, G_N_ELEMENTS(sizes), &sink);
        else
            g_assert_cmpuint(bl_framer_feed(f, s->str, s->len, collect, &sink), ==, s->len);
        assert_lines(&sink, expect);
        g_assert_cmpuint(bl_framer_stats(f)->overlong, ==, 2);
        g_assert_cmpuint(bl_framer_stats(f)->lines, ==, 4);
        g_ptr_array_unref(sink.lines);
    }
}

static void test_resync(void)
{
    static const char data[] = "{\"partial\":\xff{\"a\":1}\n\xff\xff{\"b\":2}\nxx\xff\n{\"c\":3}\n";
    const char *expect[] = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}", NULL};
    const gsize one = 1;
    g_autoptr(BlFramer) f = bl_framer_new(64);
    g_autoptr(BlFramer) g = bl_framer_new(64);
    Sink sink, sink1;

    sink_init(&sink);
    sink_init(&sink1);
    g_assert_cmpuint(bl_framer_feed(f, data, sizeof data - 1, collect, &sink), ==, sizeof data - 1);
    assert_lines(&sink, expect);
    g_assert_cmpuint(bl_framer_stats(f)->resyncs, ==, 2); /* only the flushes of real data */
    feed_all(g, data, sizeof data - 1, &one, 1, &sink1);
    assert_lines(&sink1, expect);
    g_assert_cmpuint(bl_framer_stats(g)->resyncs, ==, 2);

    /* 0xFF also ends the discarding of an overlong line. */
    {
        g_autoptr(BlFramer) h = bl_framer_new(8);
        static const char over[] = "0123456789abcdef\xff{}\n";
        const char *expect2[] = {"{}", NULL};
        Sink sink2;

        sink_init(&sink2);
        bl_framer_feed(h, over, sizeof over - 1, collect, &sink2);
        assert_lines(&sink2, expect2);
        g_assert_cmpuint(bl_framer_stats(h)->overlong, ==, 1);
        g_ptr_array_unref(sink2.lines);
    }
    g_ptr_array_unref(sink.lines);
    g_ptr_array_unref(sink1.lines);
}

static void test_crlf_and_empty(void)
{
    static const char data[] = "\n\r\n{\"a\":1}\r\n\n\n{\"b\":2}\r\r\n \n";
    /* Only one '\r' is stripped; a lone space is a (bad) line, not an empty one. */
    const char *expect[] = {"{\"a\":1}", "{\"b\":2}\r", " ", NULL};
    g_autoptr(BlFramer) f = bl_framer_new(BL_PROTO_MAX_LINE);
    Sink sink;

    sink_init(&sink);
    bl_framer_feed(f, data, sizeof data - 1, collect, &sink);
    assert_lines(&sink, expect);
    g_assert_cmpuint(bl_framer_stats(f)->lines, ==, 3);
    g_ptr_array_unref(sink.lines);
}

/* Returning FALSE consumes through that line's '\n' only; the rest is fed again. */
static void test_stop(void)
{
    static const char data[] = "{\"a\":1}\n{\"b\":2}\npartial";
    const char *expect[] = {"{\"a\":1}", "{\"b\":2}", NULL};
    const char *expect3[] = {"{\"a\":1}", "{\"b\":2}", "partial", NULL};
    g_autoptr(BlFramer) f = bl_framer_new(BL_PROTO_MAX_LINE);
    Sink sink;
    gsize used;

    sink_init(&sink);
    sink.stop_after = 1;
    used = bl_framer_feed(f, data, sizeof data - 1, collect, &sink);
    g_assert_cmpuint(used, ==, 8);
    used += bl_framer_feed(f, data + used, sizeof data - 1 - used, collect, &sink);
    g_assert_cmpuint(used, ==, 16);
    used += bl_framer_feed(f, data + used, sizeof data - 1 - used, collect, &sink);
    g_assert_cmpuint(used, ==, sizeof data - 1); /* the partial line is buffered */
    assert_lines(&sink, expect);
    g_assert_cmpuint(bl_framer_stats(f)->bytes, ==, sizeof data - 1);
    bl_framer_feed(f, "\n", 1, collect, &sink);
    assert_lines(&sink, expect3);

    /* reset drops the partial line */
    bl_framer_feed(f, "junk", 4, collect, &sink);
    bl_framer_reset(f);
    bl_framer_feed(f, "{}\n", 3, collect, &sink);
    g_assert_cmpstr(sink.lines->pdata[sink.lines->len - 1], ==, "{}");
    g_ptr_array_unref(sink.lines);
}

/* Embedded NUL bytes reach the decoder with their length, which rejects them. */
static gboolean decode_expect_json_error(const char *line, gsize len, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    BlMessage msg;

    *(gsize *)user_data = len;
    g_assert_false(bl_proto_decode(line, len, &msg, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON);
    return TRUE;
}

static void test_nul(void)
{
    static const char data[] = "{\"type\":\"ping\",\"v\":1,\"id\":7}\0x\n";
    g_autoptr(BlFramer) f = bl_framer_new(BL_PROTO_MAX_LINE);
    gsize seen = 0;

    bl_framer_feed(f, data, sizeof data - 1, decode_expect_json_error, &seen);
    g_assert_cmpuint(seen, ==, sizeof data - 2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/framer/chunk-boundaries", test_chunk_boundaries);
    g_test_add_func("/framer/every-split", test_every_split);
    g_test_add_func("/framer/overlong", test_overlong);
    g_test_add_func("/framer/resync", test_resync);
    g_test_add_func("/framer/crlf-and-empty", test_crlf_and_empty);
    g_test_add_func("/framer/stop", test_stop);
    g_test_add_func("/framer/nul", test_nul);
    return g_test_run();
}
