/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballastd.conf and the per-VM metadata values: one engine.
 *
 * Every key of every group is one row of a table (config-keys.c: group, name,
 * type, unit, default, range, one-line doc, place in Config). The same rows
 * load a file over the defaults, validate it with one set of parsers
 * (config-value.c), print the effective configuration, and generate the key
 * tables of docs/configuration.md, policy.md and ksm.md, ballastd.conf(5) and
 * packaging/ballastd.conf (config-doc.c; a test keeps the committed files
 * equal to the output).
 *
 * A reload builds a new Config aside and swaps it in only when the whole file
 * is good: on any error the running configuration stays in force. Modules
 * copy the scalars they need rather than keep pointers into a Config.
 */
#pragma once

#include <glib.h>

#include "ksm.h"
#include "policy.h"
#include "session.h"

#define CONFIG_DEFAULT_PATH BALLAST_SYSCONFDIR "/ballast/ballastd.conf"
#define CONFIG_PATH_MAX     108 /* sizeof(sun_path) */

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

typedef enum {
    CONFIG_ERROR_MISSING, /* the file does not exist (explicit --config, or a reload) */
    CONFIG_ERROR_SYNTAX,  /* not a key file */
    CONFIG_ERROR_GROUP,   /* unknown group (only with CONFIG_LOAD_STRICT) */
    CONFIG_ERROR_KEY,     /* unknown key (likewise) */
    CONFIG_ERROR_VALUE,   /* bad value */
} ConfigError;

typedef enum {
    CONFIG_PSI_TRIGGER_NONE,
    CONFIG_PSI_TRIGGER_SOME,
    CONFIG_PSI_TRIGGER_FULL,
} ConfigPsiTrigger;

/* What happens to the guests when ballastd stops. */
typedef enum {
    CONFIG_ON_STOP_KEEP,    /* leave balloons where they are */
    CONFIG_ON_STOP_RELEASE, /* as ballastctl release --all: deflate to maximum */
} ConfigOnStop;

#define CONFIG_GROUP_MAX 64

typedef struct {
    /* [broker] */
    guint32 interval_ms;         /* report interval asked of every agent (welcome) */
    guint32 tick_ms;             /* period of the decision cycle */
    guint32 stats_period_s;      /* virDomainSetMemoryStatsPeriod; 0 leaves it alone */
    PolicyMode default_mode;     /* for VMs without ballast metadata */
    PolicyKsm default_ksm;       /* likewise */
    gboolean allow_qemu_monitor; /* KSM live exclusion through the QEMU monitor */
    char control_socket[CONFIG_PATH_MAX];
    char control_group[CONFIG_GROUP_MAX]; /* "" = root only */
    ConfigOnStop on_stop;
    ConfigPsiTrigger psi_trigger; /* PSI trigger asked of agents */
    guint32 psi_trigger_stall_us;
    guint32 psi_trigger_window_us;
    guint32 rate_limit_per_s;   /* messages per second accepted from one guest */
    guint32 rate_limit_burst;   /* ... and in one burst */
    guint32 read_budget_bytes;  /* bytes read from one guest per wakeup */
    guint32 channel_poll_ms;    /* re-check for agent channels without a session */
    guint32 session_retry_ms;   /* first delay before reopening a failed channel */
    guint32 reconnect_min_ms;   /* libvirt reconnect backoff, first delay */
    guint32 reconnect_max_ms;   /* ... and its cap */
    guint32 libvirt_timeout_ms; /* how long the main loop waits for one libvirt call */

    /* [metrics] */
    char metrics_listen[128]; /* "ADDR:PORT" of the Prometheus listener; "" = off */

    /* [policy] */
    PolicyConfig policy;

    /* [ksm] (ksm.h, docs/ksm.md) */
    KsmConfig ksm;

    /* [metrics] (docs/metrics.md) */
} Config;

typedef enum {
    CONFIG_LOAD_DEFAULT = 0,
    CONFIG_LOAD_MUST_EXIST = 1 << 0, /* a missing file is an error, not the defaults */
    CONFIG_LOAD_STRICT = 1 << 1,     /* unknown groups and keys are errors, not warnings */
} ConfigLoadFlags;

/* Every key at its default (the table's). */
void config_init_defaults(Config *cfg);
/* Free what loading allocated ([ksm] latency_sensitive). */
void config_clear(Config *cfg);

/*
 * Load path over the defaults into *cfg (cleared first on success, so *cfg
 * must be initialised). On error *cfg is unchanged and error holds the first
 * problem, one line: "FILE:LINE: [group] key: what is wrong". Every problem
 * (all of them, not only the first) is appended to errors, and every warning
 * (unknown group or key, unless CONFIG_LOAD_STRICT makes it an error) to
 * warnings, when those are not NULL (char *, one line each). Without
 * CONFIG_LOAD_MUST_EXIST a missing file loads the defaults.
 */
gboolean config_load_file(Config *cfg, const char *path, ConfigLoadFlags flags, GPtrArray *warnings,
                          GPtrArray *errors, GError **error);

/* Same, over text already in memory (name is used in messages). */
gboolean config_load_data(Config *cfg, const char *name, const char *text, gsize len,
                          ConfigLoadFlags flags, GPtrArray *warnings, GPtrArray *errors,
                          GError **error);

/* The effective configuration as a key file every key of which is set: what
 * `ballastd --check-config` prints, and loads back to the same Config. */
char *config_to_text(const Config *cfg);

/* 1-based line of key in group (or of the group header when key is NULL)
 * in key-file text; 0 when not found. Locates only, does not parse. */
guint config_locate(const char *text, gsize len, const char *group, const char *key);

/* The groups, and the keys of one group, NULL-terminated, in table order. */
GStrv config_groups(void);
GStrv config_keys(const char *group);

/* The documentation generated from the table (docs and man page):
 * "markdown:GROUP" (table), "summary:GROUP" (key = default lines),
 * "metadata" (the per-VM attributes), "man" (ballastd.conf(5)),
 * "example" (packaging/ballastd.conf). NULL for an unknown format. */
char *config_doc(const char *format);

const char *config_mode_name(PolicyMode mode);
gboolean config_parse_mode(const char *text, PolicyMode *mode);
const char *config_ksm_name(PolicyKsm ksm);
gboolean config_parse_ksm(const char *text, PolicyKsm *ksm);

/* What a session needs of cfg (config-session.c). */
void config_session(const Config *cfg, SessionConfig *out);
/*
 * One attribute of <ballast:policy .../> (domain metadata) into *policy, with
 * the parsers and the wording of the file's keys: FALSE and a one-line
 * "attr: what is wrong" for a bad value (nothing set). Unknown attributes are
 * ignored (TRUE): a newer ballast may add some.
 */
struct DomxmlPolicy;
gboolean config_meta_set(struct DomxmlPolicy *policy, const char *attr, const char *value,
                         GError **error);
const char *config_on_stop_name(ConfigOnStop on_stop);
