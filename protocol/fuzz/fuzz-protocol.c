/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the input is a byte stream from a hostile peer. It goes
 * through the framer twice (whole, and in chunks whose sizes come from the
 * input) and both must yield the lines and counters of a plain byte-at-a-time
 * model of PROTOCOL.md section 2, also with a small line limit so that the
 * overlong paths are reached by small inputs. Every line goes through the
 * decoder, and whatever decodes must re-encode, and decode again to the same
 * struct (and encode to the same text). The whole input is also decoded as a
 * single line, so a seed corpus of vector files hits the decoder directly.
 * Finally the raw bytes are handed to the encoder as a struct (check_struct).
 */
#include "framer.h"
#include "protocol.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz-protocol: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_line(const char *line, gsize len)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) again = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    BlMessage msg, back;
    gboolean is_goodbye = bl_proto_line_is_goodbye(line, len);

    if (!bl_proto_decode(line, len, &msg, &error)) {
        CHECK(error != NULL && error->domain == BL_PROTO_ERROR);
        CHECK(error->code >= BL_PROTO_ERROR_JSON && error->code <= BL_PROTO_ERROR_TOO_LONG);
        CHECK(error->message != NULL && g_utf8_validate(error->message, -1, NULL));
        return;
    }
    CHECK(error == NULL);
    CHECK(len < BL_PROTO_MAX_LINE);
    CHECK(is_goodbye == (msg.type == BL_MSG_GOODBYE));
    CHECK(bl_proto_encode(&msg, out, &error));
    CHECK(out->len >= 2 && out->str[out->len - 1] == '\n');
    CHECK(memchr(out->str, '\n', out->len - 1) == NULL);
    CHECK(bl_proto_decode(out->str, out->len - 1, &back, &error));
    CHECK(memcmp(&msg, &back, sizeof msg) == 0);
    CHECK(bl_proto_encode(&back, again, &error));
    CHECK(g_string_equal(out, again));
}

/*
 * The input's bytes taken as a C struct, as a buggy sender might hand to the
 * encoder: it must refuse it or write a line that decodes and re-encodes to
 * the same text. Never crash on unterminated strings or wild enums.
 */
static void check_struct(const uint8_t *data, size_t size)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) again = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    BlMessage msg, back;

    memset(&msg, 0, sizeof msg);
    memcpy(&msg, data, MIN(size, sizeof msg));
    if (size > 0)
        msg.type = (BlMsgType)(data[0] % (BL_MSG_GOODBYE + 2)); /* one past the last, too */
    msg.v = size > 1 && data[1] == 0xAA ? 2 : BL_PROTO_MAJOR;
    if (!bl_proto_encode(&msg, out, &error)) {
        CHECK(error != NULL && error->domain == BL_PROTO_ERROR && out->len == 0);
        return;
    }
    CHECK(bl_proto_decode(out->str, out->len - 1, &back, &error));
    CHECK(bl_proto_encode(&back, again, &error));
    CHECK(g_string_equal(out, again));
}

static gboolean collect(const char *line, gsize len, gpointer user_data)
{
    CHECK(len > 0 && line[len] == '\0');
    g_ptr_array_add(user_data, g_bytes_new(line, len));
    return TRUE;
}

/*
 * PROTOCOL.md section 2 written as plainly as possible, one byte at a time:
 * the oracle the real framer's lines and counters must match.
 */
static void model_frame(const uint8_t *data, size_t size, gsize max_line, GPtrArray *lines,
                        BlFramerStats *st)
{
    g_autoptr(GString) cur = g_string_new(NULL);
    gboolean discarding = FALSE;

    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < size; i++) {
        if (data[i] == 0xFF) {
            st->resyncs += cur->len > 0 || discarding;
            g_string_truncate(cur, 0);
            discarding = FALSE;
        } else if (data[i] == '\n') {
            gsize n = cur->len;

            if (!discarding && n > 0 && cur->str[n - 1] == '\r')
                n--;
            if (!discarding && n > 0) {
                g_ptr_array_add(lines, g_bytes_new(cur->str, n));
                st->lines++;
            }
            g_string_truncate(cur, 0);
            discarding = FALSE;
        } else if (!discarding && cur->len == max_line - 1) {
            st->overlong++;
            g_string_truncate(cur, 0);
            discarding = TRUE;
        } else if (!discarding) {
            g_string_append_c(cur, (char)data[i]);
        }
    }
    st->bytes = size;
}

/*
 * Frame the input whole and in chunks whose sizes (1..64) come from the input
 * itself; both must agree with the model. Returns the lines.
 */
static GPtrArray *frame(const uint8_t *data, size_t size, gsize max_line)
{
    g_autoptr(BlFramer) whole = bl_framer_new(max_line);
    g_autoptr(BlFramer) chunked = bl_framer_new(max_line);
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) b = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) m = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    BlFramerStats model;
    size_t off = 0;

    CHECK(bl_framer_feed(whole, data, size, collect, a) == size);
    for (size_t i = 0; off < size; i++) {
        size_t n = MIN((size_t)(data[i % size] % 64) + 1, size - off);

        CHECK(bl_framer_feed(chunked, data + off, n, collect, b) == n);
        off += n;
    }
    model_frame(data, size, max_line, m, &model);
    CHECK(a->len == b->len && a->len == m->len);
    for (guint i = 0; i < a->len; i++) {
        CHECK(g_bytes_get_size(a->pdata[i]) < max_line);
        CHECK(g_bytes_equal(a->pdata[i], b->pdata[i]));
        CHECK(g_bytes_equal(a->pdata[i], m->pdata[i]));
    }
    CHECK(memcmp(bl_framer_stats(whole), &model, sizeof model) == 0);
    CHECK(memcmp(bl_framer_stats(chunked), &model, sizeof model) == 0);
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) lines = frame(data, size, BL_PROTO_MAX_LINE);

    /* A small limit, so that short inputs reach the overlong paths. */
    g_ptr_array_unref(frame(data, size, 48));
    for (guint i = 0; i < lines->len; i++)
        check_line(g_bytes_get_data(lines->pdata[i], NULL), g_bytes_get_size(lines->pdata[i]));
    /* The input as one line, as the vector files are meant. */
    check_line((const char *)data, size > 0 && data[size - 1] == '\n' ? size - 1 : size);
    check_struct(data, size);
    return 0;
}
