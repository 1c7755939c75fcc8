/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "evlog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

typedef struct {
    double tokens;
    gint64 at_us;
    guint64 suppressed; /* since the last one let through */
} EvlogBucket;

struct Evlog {
    FILE *file;
    char *path;
    gboolean verbose;
    guint64 size; /* of the open file: what was there plus what we wrote */
    guint64 written, suppressed, max_bytes;
    gboolean full;       /* "event-log-full" written: nothing more until reopened */
    GHashTable *buckets; /* "vm\nevent" -> EvlogBucket */
    gboolean journal;    /* stderr is the journal: structured lines */
    struct {
        gint64 mono_us;
        char *text;
    } recent[EVLOG_RECENT_MAX];
    guint n_recent, next_recent;
};

static guint64 evlog_file_size(FILE *f)
{
    long end;

    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0)
        return 0;
    return (guint64)end;
}

/* systemd's way to tell a service its stderr is the journal: JOURNAL_STREAM
 * holds the device and inode of the stream (systemd.exec(5)). A stderr
 * redirected elsewhere by a child or a wrapper no longer matches. */
static gboolean stderr_is_journal(void)
{
    const char *env = g_getenv("JOURNAL_STREAM");
    guint64 dev, ino;
    struct stat st;

    if (env == NULL || sscanf(env, "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, &dev, &ino) != 2)
        return FALSE;
    if (fstat(STDERR_FILENO, &st) != 0)
        return FALSE;
    return (guint64)st.st_dev == dev && (guint64)st.st_ino == ino;
}

Evlog *evlog_new(const char *path, GError **error)
{
    Evlog *log = g_new0(Evlog, 1);

    log->max_bytes = EVLOG_MAX_BYTES;
    log->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    log->journal = stderr_is_journal();

    if (path != NULL) {
        log->file = fopen(path, "ae");
        if (log->file == NULL) {
            int saved = errno;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
                        g_strerror(saved));
            g_free(log);
            return NULL;
        }
        setvbuf(log->file, NULL, _IOLBF, 0);
        log->size = evlog_file_size(log->file);
        log->path = g_strdup(path);
    }
    return log;
}

gboolean evlog_reopen(Evlog *log, GError **error)
{
    FILE *f;

    if (log->path == NULL)
        return TRUE;
    f = fopen(log->path, "ae");
    if (f == NULL) {
        int saved = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", log->path,
                    g_strerror(saved));
        return FALSE;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    fclose(log->file);
    log->file = f;
    log->size = evlog_file_size(f);
    log->written = 0;
    log->full = FALSE;
    return TRUE;
}

void evlog_free(Evlog *log)
{
    if (log == NULL)
        return;
    if (log->file)
        fclose(log->file);
    g_free(log->path);
    g_hash_table_destroy(log->buckets);
    for (guint i = 0; i < EVLOG_RECENT_MAX; i++)
        g_free(log->recent[i].text);
    g_free(log);
}

void evlog_set_verbose(Evlog *log, gboolean verbose)
{
    log->verbose = verbose;
}

gboolean evlog_verbose(const Evlog *log)
{
    return log->verbose;
}

void evlog_set_max_bytes(Evlog *log, guint64 max_bytes)
{
    log->max_bytes = max_bytes;
}

guint64 evlog_bytes_written(const Evlog *log)
{
    return log->written;
}

guint64 evlog_suppressed(const Evlog *log)
{
    return log->suppressed;
}

/* FALSE: this VM's events of this kind come too fast, hold this one back.
 * *before: how many were held back before this one. */
static gboolean evlog_take(Evlog *log, const char *event, const char *vm, guint64 *before)
{
    /* Looked up in a buffer on the stack: a key is allocated only for a
     * new bucket, not for each of the events of every report. */
    char stack_key[256];
    g_autofree char *long_key = NULL;
    const char *key = stack_key;
    gint64 now = g_get_monotonic_time();

    if ((gsize)g_snprintf(stack_key, sizeof(stack_key), "%s\n%s", vm, event) >= sizeof(stack_key))
        key = long_key = g_strdup_printf("%s\n%s", vm, event);
    EvlogBucket *b = g_hash_table_lookup(log->buckets, key);
    if (b == NULL) {
        b = g_new0(EvlogBucket, 1);
        b->tokens = EVLOG_VM_BURST;
        b->at_us = now;
        g_hash_table_insert(log->buckets, g_strdup(key), b);
    }
    if (now > b->at_us)
        b->tokens = MIN(EVLOG_VM_BURST, b->tokens + (double)(now - b->at_us) * EVLOG_VM_RATE_PER_S /
                                                        G_USEC_PER_SEC);
    b->at_us = MAX(b->at_us, now);
    if (b->tokens < 1.0) {
        b->suppressed++;
        log->suppressed++;
        return FALSE;
    }
    b->tokens -= 1.0;
    *before = b->suppressed;
    b->suppressed = 0;
    return TRUE;
}

/* Write one line, within the size cap. */
static void evlog_write(Evlog *log, const char *line)
{
    gsize n = strlen(line) + 1;
    static const char full[] =
        "{\"event\":\"event-log-full\",\"text\":\"size cap reached: nothing more is written "
        "until the file is reopened (SIGHUP)\"}\n";

    if (log->full) {
        log->suppressed++;
        return;
    }
    if (log->max_bytes > 0 && log->size + n + sizeof(full) > log->max_bytes) {
        fputs(full, log->file);
        fflush(log->file);
        log->full = TRUE;
        log->size += sizeof(full) - 1;
        log->written += sizeof(full) - 1;
        log->suppressed++;
        g_printerr("ballastd: the event log %s reached its size cap (%" G_GUINT64_FORMAT
                   " bytes): nothing more is written until it is reopened (SIGHUP)\n",
                   log->path, log->max_bytes);
        return;
    }
    fputs(line, log->file);
    fputc('\n', log->file);
    fflush(log->file);
    log->size += n;
    log->written += n;
}

gboolean evlog_emits(const Evlog *log)
{
    return log != NULL && (log->file != NULL || log->verbose);
}

void evlog_emit(Evlog *log, const char *event, const char *vm, json_object *fields)
{
    guint64 before = 0;

    /* The packaged service runs without an event log: building and
     * serialising an object per agent report only to drop it was a fifth
     * of the broker's cost of a report (bench-scale, 1000 guests). */
    if (!evlog_emits(log) || (vm != NULL && !evlog_take(log, event, vm, &before))) {
        if (fields != NULL)
            json_object_put(fields);
        return;
    }
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ts", json_object_new_double(g_get_real_time() / 1e6));
    json_object_object_add(o, "mono_us", json_object_new_int64(g_get_monotonic_time()));
    json_object_object_add(o, "event", json_object_new_string(event));
    if (vm != NULL)
        json_object_object_add(o, "vm", json_object_new_string(vm));
    if (fields != NULL) {
        json_object_object_foreach(fields, k, v)
        {
            json_object_object_add(o, k, json_object_get(v));
        }
        json_object_put(fields);
    }
    if (before > 0)
        json_object_object_add(o, "suppressed", json_object_new_uint64(before));
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (log->file)
        evlog_write(log, s);
    if (log->verbose)
        g_printerr("ballastd: event %s\n", s);
    json_object_put(o);
}

gboolean evlog_to_journal(const Evlog *log)
{
    return log && log->journal;
}

/* One human line to the journal (structured) or to stderr (plain). */
static void evlog_output(const Evlog *log, gboolean recent, const EvlogTags *tags, const char *text)
{
    if (!evlog_to_journal(log)) {
        g_printerr("ballastd: %s\n", text);
        return;
    }
    int pri = tags && tags->priority > 0 ? tags->priority : recent ? LOG_NOTICE : LOG_INFO;
    char pri_text[2] = {(char)('0' + CLAMP(pri, 0, 7)), '\0'};
    GLogField fields[6] = {
        {"MESSAGE", text, -1},
        {"PRIORITY", pri_text, -1},
        {"SYSLOG_IDENTIFIER", "ballastd", -1},
    };
    gsize n = 3;
    if (tags && tags->domain)
        fields[n++] = (GLogField){"BALLAST_DOMAIN", tags->domain, -1};
    if (tags && tags->action)
        fields[n++] = (GLogField){"BALLAST_ACTION", tags->action, -1};
    if (tags && tags->reason)
        fields[n++] = (GLogField){"BALLAST_REASON", tags->reason, -1};
    /* G_LOG_LEVEL_MESSAGE whatever the priority: GLib's default writer
     * drops INFO and DEBUG unless G_MESSAGES_DEBUG is set, and the journal
     * takes the priority from the PRIORITY field. */
    g_log_structured_array(G_LOG_LEVEL_MESSAGE, fields, n);
}

static void evlog_sayv(Evlog *log, gboolean recent, const EvlogTags *tags, const char *fmt,
                       va_list ap) G_GNUC_PRINTF(4, 0);
static void evlog_sayv(Evlog *log, gboolean recent, const EvlogTags *tags, const char *fmt,
                       va_list ap)
{
    g_autofree char *text = g_strdup_vprintf(fmt, ap);

    evlog_output(log, recent, tags, text);
    if (log && recent) {
        guint i = log->next_recent;
        g_free(log->recent[i].text);
        log->recent[i].text = g_steal_pointer(&text);
        log->recent[i].mono_us = g_get_monotonic_time();
        log->next_recent = (i + 1) % EVLOG_RECENT_MAX;
        if (log->n_recent < EVLOG_RECENT_MAX)
            log->n_recent++;
    }
}

void evlog_say(Evlog *log, gboolean recent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evlog_sayv(log, recent, NULL, fmt, ap);
    va_end(ap);
}

void evlog_say_tagged(Evlog *log, gboolean recent, const EvlogTags *tags, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evlog_sayv(log, recent, tags, fmt, ap);
    va_end(ap);
}

json_object *evlog_recent(const Evlog *log)
{
    json_object *a = json_object_new_array();

    for (guint k = 0; log && k < log->n_recent; k++) {
        guint i = (log->next_recent + EVLOG_RECENT_MAX - log->n_recent + k) % EVLOG_RECENT_MAX;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "mono_us", json_object_new_int64(log->recent[i].mono_us));
        json_object_object_add(e, "text", json_object_new_string(log->recent[i].text));
        json_object_array_add(a, e);
    }
    return a;
}

json_object *evlog_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}
