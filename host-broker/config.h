/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballastd.conf: a GKeyFile with groups [broker], [policy] and (later) [ksm].
 *
 * A reload builds a new Config aside and swaps it in only when the whole file
 * is good: on any error the running configuration stays in force. Modules
 * copy the scalars they need rather than keep pointers into a Config. Every key and its default is listed
 * in docs/configuration.md and packaging/ballastd.conf.
 */
#pragma once

#include <glib.h>

#include "ksm.h"
#include "policy.h"

#define CONFIG_DEFAULT_PATH BALLAST_SYSCONFDIR "/ballast/ballastd.conf"
#define CONFIG_PATH_MAX     108 /* sizeof(sun_path) */

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

typedef enum {
    CONFIG_ERROR_MISSING, /* an explicitly named file does not exist */
    CONFIG_ERROR_SYNTAX,  /* not a key file */
    CONFIG_ERROR_GROUP,   /* unknown group */
    CONFIG_ERROR_KEY,     /* unknown key */
    CONFIG_ERROR_VALUE,   /* bad value */
} ConfigError;

typedef enum {
    CONFIG_PSI_TRIGGER_NONE,
    CONFIG_PSI_TRIGGER_SOME,
    CONFIG_PSI_TRIGGER_FULL,
} ConfigPsiTrigger;

typedef struct {
    /* [broker] */
    guint32 interval_ms;         /* report interval asked of every agent (welcome) */
    guint32 tick_ms;             /* period of the decision cycle */
    guint32 stats_period_s;      /* virDomainSetMemoryStatsPeriod; 0 leaves it alone */
    PolicyMode default_mode;     /* for VMs without ballast metadata */
    PolicyKsm default_ksm;       /* likewise */
    gboolean allow_qemu_monitor; /* KSM live exclusion through the QEMU monitor */
    char control_socket[CONFIG_PATH_MAX];
    ConfigPsiTrigger psi_trigger; /* PSI trigger asked of agents */
    guint32 psi_trigger_stall_us;
    guint32 psi_trigger_window_us;
    guint32 rate_limit_per_s;  /* messages per second accepted from one guest */
    guint32 rate_limit_burst;  /* ... and in one burst */
    guint32 read_budget_bytes; /* bytes read from one guest per wakeup */
    guint32 channel_poll_ms;   /* re-check for agent channels without a session */
    guint32 session_retry_ms;  /* first delay before reopening a failed channel */
    guint32 reconnect_min_ms;  /* libvirt reconnect backoff, first delay */
    guint32 reconnect_max_ms;  /* ... and its cap */

    /* [policy] */
    PolicyConfig policy;

    /* [ksm] (ksm.h, docs/ksm.md) */
    KsmConfig ksm;

    /* [metrics] (docs/metrics.md) */
    char metrics_listen[128]; /* "ADDR:PORT" of the Prometheus listener; "" = off */
} Config;

void config_init_defaults(Config *cfg);
/* Free what a group loader allocated ([ksm] latency_sensitive). */
void config_clear(Config *cfg);

/*
 * Load path over the defaults into *cfg (cleared first on success, so *cfg
 * must be initialised). On error *cfg is unchanged and the
 * message is one line: "FILE:LINE: [group] key: what is wrong". A missing
 * file is an error only when must_exist (an explicit --config).
 */
gboolean config_load_file(Config *cfg, const char *path, gboolean must_exist, GError **error);

/* Same, over text already in memory (name is used in messages). */
gboolean config_load_data(Config *cfg, const char *name, const char *text, gsize len,
                          GError **error);

/* 1-based line of key in group (or of the group header when key is NULL)
 * in key-file text; 0 when not found. Locates only, does not parse. */
guint config_locate(const char *text, gsize len, const char *group, const char *key);

/* The [broker] keys, NULL-terminated (tests check the docs against it). */
GStrv config_broker_keys(void);

const char *config_mode_name(PolicyMode mode);
gboolean config_parse_mode(const char *text, PolicyMode *mode);
const char *config_ksm_name(PolicyKsm ksm);
gboolean config_parse_ksm(const char *text, PolicyKsm *ksm);
