/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration engine's value types: one parser and one formatter per
 * type, shared by every group of ballastd.conf and by the per-VM metadata, so
 * that `5s`, `256MiB`, `yes` or `10%` mean the same wherever they are written.
 * Internal to the engine (config*.c) and its tests.
 */
#pragma once

#include <glib.h>

typedef enum {
    CONFIG_KIND_UINT,     /* whole number */
    CONFIG_KIND_SIZE,     /* whole number with an optional binary unit */
    CONFIG_KIND_DURATION, /* whole number with an optional unit: us, ms, s, min, h */
    CONFIG_KIND_PERCENT,  /* decimal number, optional '%' */
    CONFIG_KIND_RATE,     /* decimal number per second */
    CONFIG_KIND_BOOL,     /* true/yes/1, false/no/0, any case */
    CONFIG_KIND_ENUM,     /* one of names[] */
    CONFIG_KIND_PATH,     /* absolute path that fits the field */
    CONFIG_KIND_ADDRESS,  /* ADDR:PORT (IPv6 in brackets), or empty */
    CONFIG_KIND_GROUP,    /* a unix group name, or empty */
    CONFIG_KIND_DOMAINS,  /* ';'-separated libvirt domain names */
} ConfigKind;

/* How the value is kept in its struct. */
typedef enum {
    CONFIG_STORE_U32,    /* guint32 / guint */
    CONFIG_STORE_U64,    /* guint64 */
    CONFIG_STORE_DOUBLE, /* double */
    CONFIG_STORE_BOOL,   /* gboolean */
    CONFIG_STORE_ENUM,   /* an enum (int) */
    CONFIG_STORE_CHARS,  /* char[size] */
    CONFIG_STORE_STRV,   /* char ** (owned) */
} ConfigStore;

/* The unit a bare number is in, and the value is kept in. */
typedef enum {
    CONFIG_UNIT_NONE,
    CONFIG_UNIT_BYTES,
    CONFIG_UNIT_KIB,
    CONFIG_UNIT_MIB,
    CONFIG_UNIT_US,
    CONFIG_UNIT_MS,
    CONFIG_UNIT_S,
} ConfigUnit;

typedef struct {
    const char *group; /* NULL for a metadata attribute */
    const char *name;
    ConfigKind kind;
    ConfigStore store;
    ConfigUnit unit;
    gsize offset;             /* of the value in the struct it fills */
    gsize size;               /* CONFIG_STORE_CHARS: the field's size */
    gssize has_offset;        /* metadata: the gboolean set with it; -1 none */
    double min, max;          /* inclusive, in unit (numbers) */
    const char *const *names; /* CONFIG_KIND_ENUM: the values, by number */
    const char *def;          /* the default, written as in the file */
    const char *doc;          /* one line */
} ConfigKey;

/* A rule between two keys of a group: a OP b x factor. */
typedef enum {
    CONFIG_RULE_BELOW,    /* a < b */
    CONFIG_RULE_AT_MOST,  /* a <= b */
    CONFIG_RULE_AT_LEAST, /* a >= b x factor */
} ConfigRuleOp;

typedef struct {
    const char *group;
    const char *a;
    ConfigRuleOp op;
    const char *b;
    double factor;
    const char *why; /* "must be below psi_trigger_window_us" */
} ConfigRule;

typedef struct {
    const char *name;
    const char *doc; /* a paragraph for the man page and the example */
} ConfigGroup;

/* The tables (config-keys.c). */
extern const ConfigGroup config_group_table[];
extern const gsize config_group_count;
extern const ConfigKey config_key_table[];
extern const gsize config_key_count;
extern const ConfigRule config_rule_table[];
extern const gsize config_rule_count;
extern const ConfigKey config_meta_table[];
extern const gsize config_meta_count;

gboolean config_group_known(const char *group);
const ConfigKey *config_key_find(const char *group, const char *name);

/*
 * Parse text as key k into base + k->offset (and set the has_offset flag).
 * On a bad value nothing is written and error says, in one line,
 * `invalid value "TEXT" (want ...)`; the caller prefixes where it was.
 */
gboolean config_value_parse(const ConfigKey *k, const char *text, void *base, GError **error);

/* The value at base + k->offset, written so that config_value_parse reads it back. */
char *config_value_format(const ConfigKey *k, const void *base);

/* "100 – 60000", "1 MiB – 64 GiB", "auto, observe, off": the documented range. */
char *config_value_range(const ConfigKey *k);

/* "size", "ms", "%", "bool", ...: the unit column of the docs. */
const char *config_value_unit(const ConfigKey *k);

/* Printable, short (64 bytes) and escaped: for messages about values (and
 * names) from a file or a guest, which may hold any bytes. */
char *config_value_printable(const char *text);

/* The number parsers, for tests: FALSE on garbage or overflow. */
gboolean config_parse_size(const char *text, ConfigUnit unit, guint64 *out);
gboolean config_parse_duration(const char *text, ConfigUnit unit, guint64 *out);
gboolean config_parse_bool(const char *text, gboolean *value);
