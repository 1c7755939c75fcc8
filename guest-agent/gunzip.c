/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Lazily loaded GZlibDecompressor: see gunzip.h. */
#include "gunzip.h"

#include <dlfcn.h>
#include <gio/gio.h> /* types and enums only: nothing here links against GIO */

#define GUNZIP_GIO_SONAME "libgio-2.0.so.0"

typedef gpointer (*GunzipNewFunc)(GZlibCompressorFormat format);
typedef GConverterResult (*GunzipConvertFunc)(gpointer converter, const void *inbuf,
                                              gsize inbuf_size, void *outbuf, gsize outbuf_size,
                                              GConverterFlags flags, gsize *bytes_read,
                                              gsize *bytes_written, GError **error);
typedef void (*GunzipUnrefFunc)(gpointer object);

GBytes *gunzip_bytes(const void *data, gsize len, gsize max_out, GError **error)
{
    /* GIO marks itself unloadable (it registers GTypes): keep the handle. */
    static void *gio;
    GunzipNewFunc new_fn;
    GunzipConvertFunc convert_fn;
    GunzipUnrefFunc unref_fn;
    g_autoptr(GByteArray) out = NULL;
    const guint8 *in = data;
    gpointer z;
    char chunk[16384];

    if (gio == NULL)
        gio = dlopen(GUNZIP_GIO_SONAME, RTLD_NOW | RTLD_LOCAL);
    new_fn = gio ? (GunzipNewFunc)dlsym(gio, "g_zlib_decompressor_new") : NULL;
    convert_fn = gio ? (GunzipConvertFunc)dlsym(gio, "g_converter_convert") : NULL;
    unref_fn = gio ? (GunzipUnrefFunc)dlsym(gio, "g_object_unref") : NULL;
    if (new_fn == NULL || convert_fn == NULL || unref_fn == NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSYS, "cannot load %s: %s",
                    GUNZIP_GIO_SONAME, dlerror());
        return NULL;
    }

    z = new_fn(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    out = g_byte_array_new();
    for (;;) {
        gsize nread = 0, written = 0;
        GConverterResult r;

        r = convert_fn(z, in, len, chunk, sizeof(chunk), G_CONVERTER_INPUT_AT_END, &nread, &written,
                       error);
        if (r == G_CONVERTER_ERROR)
            break;
        in += nread;
        len -= nread;
        if (out->len + written > max_out) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "decompressed data larger than %" G_GSIZE_FORMAT " bytes", max_out);
            break;
        }
        g_byte_array_append(out, (const guint8 *)chunk, (guint)written);
        if (r == G_CONVERTER_FINISHED) {
            unref_fn(z);
            return g_byte_array_free_to_bytes(g_steal_pointer(&out));
        }
        if (nread == 0 && written == 0) {
            g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "truncated stream");
            break;
        }
    }
    unref_fn(z);
    return NULL;
}
