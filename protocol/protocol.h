/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballast wire protocol v1: C view of the messages in PROTOCOL.md.
 *
 * The document is the truth; this header mirrors it. Every string is held in a
 * fixed-size buffer so that decoding never allocates and a hostile peer cannot
 * make the receiver grow: a string longer than its buffer is a decode error,
 * not a truncation.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#define BL_PROTO_MAJOR        1
#define BL_PROTO_MINOR        0
#define BL_PROTO_MAX_LINE     65536 /* bytes, including the terminating '\n' */
#define BL_PROTO_CHANNEL_NAME "org.ballast.agent.0"
/* Largest JSON integer on the wire: 2^53-1, exact in an IEEE double (PROTOCOL.md 3). */
#define BL_PROTO_MAX_INT   9007199254740991ULL
#define BL_PROTO_MAX_DEPTH 8 /* JSON nesting, the top-level object counts 1 */
/* Per line, so that a hostile line cannot make the JSON tree large (PROTOCOL.md 3). */
#define BL_PROTO_MAX_CONTAINERS 256  /* objects + arrays */
#define BL_PROTO_MAX_MEMBERS    4096 /* object members + array elements, counted by ',' + 1 */

/* String bounds, in bytes including the NUL. */
#define BL_PROTO_NAME_MAX     64 /* agent/broker names, versions */
#define BL_PROTO_BOOT_ID_MAX  64
#define BL_PROTO_KERNEL_MAX   128
#define BL_PROTO_PCI_ADDR_MAX 32
#define BL_PROTO_PCI_MAX      16 /* list entries */
#define BL_PROTO_FEATURE_MAX  32
#define BL_PROTO_FEATURES_MAX 32 /* list entries */
#define BL_PROTO_REASON_MAX   128

/* Bounds on what the broker may ask for in `welcome`. */
#define BL_PROTO_INTERVAL_MIN_MS     100
#define BL_PROTO_INTERVAL_MAX_MS     60000
#define BL_PROTO_INTERVAL_DEFAULT_MS 1000
/* Kernel PSI trigger limits (Documentation/accounting/psi.rst). */
#define BL_PROTO_PSI_WINDOW_MIN_US 500000
#define BL_PROTO_PSI_WINDOW_MAX_US 10000000

typedef enum {
    BL_MSG_HELLO,   /* guest -> host */
    BL_MSG_REPORT,  /* guest -> host */
    BL_MSG_PONG,    /* either way, answer to ping */
    BL_MSG_WELCOME, /* host -> guest */
    BL_MSG_REQUEST, /* host -> guest */
    BL_MSG_PING,    /* either way */
    BL_MSG_GOODBYE, /* either way: the sender is closing, with a reason */
} BlMsgType;

typedef enum {
    BL_KCONFIG_UNKNOWN,
    BL_KCONFIG_Y,
    BL_KCONFIG_M,
    BL_KCONFIG_N,
} BlKconfig;

typedef enum {
    BL_REPORT_PERIODIC,
    BL_REPORT_PRESSURE,
    BL_REPORT_REQUEST,
} BlReportReason;

typedef enum {
    BL_PSI_SOME,
    BL_PSI_FULL,
} BlPsiKind;

typedef struct {
    gboolean present;      /* a virtio-balloon PCI function exists */
    gboolean driver_bound; /* virtio_balloon driver is bound to it */
    guint n_pci;
    char pci[BL_PROTO_PCI_MAX][BL_PROTO_PCI_ADDR_MAX]; /* "0000:01:00.0" */
    BlKconfig kconfig;                                 /* CONFIG_VIRTIO_BALLOON */
} BlBalloonFacts;

typedef struct {
    char agent[BL_PROTO_NAME_MAX];         /* "ballast-agent" */
    char agent_version[BL_PROTO_NAME_MAX]; /* "0.1.0" */
    guint32 minor;                         /* protocol minor the agent speaks */
    char boot_id[BL_PROTO_BOOT_ID_MAX];    /* /proc/sys/kernel/random/boot_id */
    char kernel[BL_PROTO_KERNEL_MAX];      /* /proc/sys/kernel/osrelease */
    guint32 interval_ms;                   /* the agent's current report interval */
    BlBalloonFacts balloon;
    guint n_features;
    char features[BL_PROTO_FEATURES_MAX][BL_PROTO_FEATURE_MAX]; /* "psi", "psi-trigger", ... */
} BlHello;

typedef struct {
    guint64 total_kib;        /* MemTotal */
    guint64 available_kib;    /* MemAvailable, <= total_kib */
    guint64 free_kib;         /* MemFree, <= total_kib */
    guint64 cached_kib;       /* Cached */
    guint64 swap_total_kib;   /* SwapTotal */
    guint64 swap_free_kib;    /* SwapFree, <= swap_total_kib */
    guint64 committed_as_kib; /* Committed_AS */
} BlMem;

typedef struct {
    double avg10, avg60, avg300; /* percent, finite, 0..100 */
    guint64 total_us;            /* cumulative stall time */
} BlPsiLine;

typedef struct {
    BlPsiLine some;
    BlPsiLine full;
} BlPsi;

/* Cumulative /proc/vmstat counters; a counter the guest kernel lacks is absent. */
typedef enum {
    BL_VMSTAT_PGMAJFAULT,
    BL_VMSTAT_PSWPIN,
    BL_VMSTAT_PSWPOUT,
    BL_VMSTAT_WORKINGSET_REFAULT_ANON,
    BL_VMSTAT_WORKINGSET_REFAULT_FILE,
    BL_VMSTAT_OOM_KILL,
    BL_VMSTAT_N_COUNTERS,
} BlVmstatCounter;

typedef struct {
    guint32 present; /* bit (1u << BlVmstatCounter) set when value[] is valid */
    guint64 value[BL_VMSTAT_N_COUNTERS];
} BlVmstat;

typedef struct {
    guint64 seq;       /* monotonic within a boot, starts at 1 */
    guint64 uptime_ms; /* guest /proc/uptime */
    BlReportReason reason;
    BlMem mem;
    gboolean has_psi; /* false when the guest has no PSI */
    BlPsi psi;
    BlVmstat vmstat;
} BlReport;

typedef struct {
    BlPsiKind kind;   /* "some" or "full" */
    guint32 stall_us; /* stall threshold within the window */
    guint32 window_us;
} BlPsiTrigger;

typedef struct {
    char broker[BL_PROTO_NAME_MAX];
    char broker_version[BL_PROTO_NAME_MAX];
    guint32 minor;       /* protocol minor the broker speaks */
    guint32 interval_ms; /* wanted report interval, BL_PROTO_INTERVAL_MIN_MS..MAX_MS */
    gboolean has_psi_trigger;
    BlPsiTrigger psi_trigger;
} BlWelcome;

typedef struct {
    guint64 id; /* echoed in the pong */
} BlPing;

typedef struct {
    guint32 supported_major;          /* the major the sender speaks */
    char reason[BL_PROTO_REASON_MAX]; /* "unsupported-version", "shutdown", ... */
} BlGoodbye;

typedef struct {
    BlMsgType type;
    guint32 v; /* protocol major; on BL_PROTO_ERROR_VERSION the peer's major */
    union {
        BlHello hello;
        BlReport report;
        BlWelcome welcome;
        BlPing ping; /* BL_MSG_PING and BL_MSG_PONG */
        BlGoodbye goodbye;
        /* BL_MSG_REQUEST has no body */
    } u;
} BlMessage;

#define BL_PROTO_ERROR (bl_proto_error_quark())
GQuark bl_proto_error_quark(void);

typedef enum {
    BL_PROTO_ERROR_JSON,         /* not valid UTF-8 JSON, or not an object */
    BL_PROTO_ERROR_SCHEMA,       /* a field is missing or of the wrong type */
    BL_PROTO_ERROR_RANGE,        /* a value is out of its documented range */
    BL_PROTO_ERROR_VERSION,      /* "v" is another major: msg->v holds it */
    BL_PROTO_ERROR_UNKNOWN_TYPE, /* a type this side does not know: skip, count */
    BL_PROTO_ERROR_TOO_LONG,     /* line exceeds BL_PROTO_MAX_LINE */
} BlProtoError;

/*
 * Decode one line (without its '\n'; need not be NUL-terminated) into *msg.
 * Strict: every constraint of PROTOCOL.md is checked. Unknown fields are
 * ignored. On failure *msg is unspecified, except msg->v on
 * BL_PROTO_ERROR_VERSION.
 */
gboolean bl_proto_decode(const char *line, gsize len, BlMessage *msg, GError **error);

/*
 * Is this line a goodbye, whatever its major? For a line that failed with
 * BL_PROTO_ERROR_VERSION: a goodbye is never answered with a goodbye, and its
 * layout is frozen across majors (PROTOCOL.md 4.6, 6). FALSE for anything
 * that is not a bounded, strict JSON object whose "type" is "goodbye".
 */
gboolean bl_proto_line_is_goodbye(const char *line, gsize len);

/*
 * Append the encoding of *msg, terminated by '\n', to out. Fails (and leaves
 * out unchanged) when *msg violates PROTOCOL.md: the sender checks itself.
 */
gboolean bl_proto_encode(const BlMessage *msg, GString *out, GError **error);

/*
 * Check *msg against every range and cross-field rule of PROTOCOL.md (the
 * encoder and decoder both call it). Errors are BL_PROTO_ERROR_RANGE.
 */
gboolean bl_proto_validate(const BlMessage *msg, GError **error);

/* Wire names, and back. */
const char *bl_proto_type_name(BlMsgType type);
const char *bl_proto_kconfig_name(BlKconfig kconfig);
const char *bl_proto_reason_name(BlReportReason reason);
const char *bl_proto_vmstat_name(BlVmstatCounter counter);
/* The error class as PROTOCOL.md section 5 and the vector file prefixes name it: "json", ... */
const char *bl_proto_error_name(BlProtoError code);

/* Convenience: fill a message header. */
void bl_proto_init(BlMessage *msg, BlMsgType type);
