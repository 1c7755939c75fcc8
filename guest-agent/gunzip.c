/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Bounded gunzip with zlib: see gunzip.h. */
#include "gunzip.h"

#include <zlib.h>

/* 16 + MAX_WBITS: a gzip header and trailer, not a raw zlib stream. */
#define GUNZIP_WINDOW_BITS (16 + MAX_WBITS)

GBytes *gunzip_bytes(const void *data, gsize len, gsize max_out, GError **error)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    z_stream z = {0};
    unsigned char chunk[16384];
    int r;

    if (len > G_MAXUINT32) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "input too large");
        return NULL;
    }
    if (inflateInit2(&z, GUNZIP_WINDOW_BITS) != Z_OK) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "zlib: cannot initialise");
        return NULL;
    }
    z.next_in = (Bytef *)data; /* zlib's API is not const-correct; it never writes */
    z.avail_in = (uInt)len;
    do {
        gsize produced;

        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        r = inflate(&z, Z_NO_FLUSH);
        produced = sizeof(chunk) - z.avail_out;
        if (r != Z_OK && r != Z_STREAM_END) {
            /* Z_BUF_ERROR with input left unread cannot happen: it means truncation */
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s",
                        r == Z_BUF_ERROR ? "truncated stream" : (z.msg ? z.msg : "corrupt stream"));
            break;
        }
        if (out->len + produced > max_out) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "decompressed data larger than %" G_GSIZE_FORMAT " bytes", max_out);
            r = Z_DATA_ERROR;
            break;
        }
        g_byte_array_append(out, chunk, (guint)produced);
        if (r == Z_OK && produced == 0 && z.avail_in == 0) {
            g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "truncated stream");
            r = Z_BUF_ERROR;
            break;
        }
    } while (r != Z_STREAM_END);
    inflateEnd(&z);
    if (r != Z_STREAM_END)
        return NULL;
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}
