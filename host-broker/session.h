/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One agent session: the broker's side of one guest's org.ballast.agent.0.
 *
 * The session frames and decodes what the guest sends, answers hello with
 * welcome and keeps the latest reports. Everything the guest sends is
 * hostile: a wakeup reads at most read_budget_bytes, decoded lines pass a
 * token bucket, and every bad line is counted, never fatal. Only a wrong
 * protocol major ends the session (with a goodbye).
 *
 * The session does no libvirt call: it talks to a SessionTransport, which the
 * virt module implements over a libvirt stream and the tests over a socketpair.
 * Time comes from an injectable clock.
 */
#pragma once

#include <glib.h>

#include "evlog.h"
#include "protocol.h"

/* ---- transport ---- */

#define SESSION_IO_AGAIN (-2) /* recv/send: would block */

typedef struct SessionTransport SessionTransport;
typedef void (*SessionTransportFunc)(gpointer user_data);

typedef struct {
    /* > 0 bytes read, 0 end of stream, -1 error (error set), SESSION_IO_AGAIN. */
    gssize (*recv)(SessionTransport *t, char *buf, gsize len, GError **error);
    /* > 0 bytes written, -1 error (error set), SESSION_IO_AGAIN. */
    gssize (*send)(SessionTransport *t, const char *buf, gsize len, GError **error);
    /* Call func whenever the transport is readable or hung up; NULL stops. */
    void (*watch)(SessionTransport *t, SessionTransportFunc func, gpointer user_data);
    /* Close and free. */
    void (*close)(SessionTransport *t);
    /* TRUE: a recv shorter than asked means nothing more is waiting, and the
     * watch calls again when more comes (a level-triggered fd), so a reader
     * need not recv once more only to be told SESSION_IO_AGAIN. */
    gboolean short_recv_drains;
} SessionTransportOps;

struct SessionTransport {
    const SessionTransportOps *ops;
};

/* A transport over a stream socket or pipe fd (made non-blocking; owned). */
SessionTransport *session_transport_new_fd(int fd);

/* ---- session ---- */

typedef enum {
    SESSION_REJECT_JSON,
    SESSION_REJECT_SCHEMA,
    SESSION_REJECT_RANGE,
    SESSION_REJECT_OVERLONG,
    SESSION_REJECT_RATE_LIMITED,
    SESSION_REJECT_UNKNOWN_TYPE,
    SESSION_REJECT_VERSION,
    SESSION_REJECT_N,
} SessionReject;

const char *session_reject_name(SessionReject kind);

typedef gint64 (*SessionClock)(void); /* monotonic microseconds */

/* What a session needs of the configuration ([broker] and one [policy] key),
 * by value: config_session() fills it from a Config. */
typedef struct {
    guint32 interval_ms;       /* report interval asked of the agent (welcome) */
    gboolean has_psi_trigger;  /* ask the agent for a PSI trigger ... */
    BlPsiTrigger psi_trigger;  /* ... this one */
    guint32 rate_limit_per_s;  /* messages per second accepted from the guest */
    guint32 rate_limit_burst;  /* ... and in one burst */
    guint32 read_budget_bytes; /* bytes read from the guest per wakeup */
    guint32 stale_ms;          /* no report for this long: stale ([policy] stale_after_ms) */
} SessionConfig;

typedef struct Session Session;

typedef struct {
    /* An agent said hello (again: a rebooted guest says it anew). */
    void (*hello)(Session *s, gpointer user_data);
    /* A report was accepted. */
    void (*report)(Session *s, const BlReport *report, gpointer user_data);
    /* The session ended (hangup, error, goodbye, wrong major). Called once;
     * do not free the session from inside: defer it. */
    void (*closed)(Session *s, const char *why, gpointer user_data);
} SessionCallbacks;

/* Takes ownership of transport and starts watching it. log may be NULL. */
Session *session_new(const char *vm, SessionTransport *transport, const SessionConfig *cfg,
                     const SessionCallbacks *callbacks, gpointer user_data, Evlog *log,
                     SessionClock clock);
void session_free(Session *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Session, session_free)

/* New settings (SIGHUP); sent to the agent in a fresh welcome if they changed. */
void session_set_config(Session *s, const SessionConfig *cfg);

/* Read at most read_budget_bytes and handle the lines. Called by the
 * transport watch; tests call it directly. Returns FALSE once closed. */
gboolean session_on_readable(Session *s);

/* Ask the agent for a report now (PROTOCOL.md 4.4). FALSE when closed. */
gboolean session_request(Session *s);

/* Send goodbye (unless reason is NULL), close the transport, call closed(why). */
void session_close(Session *s, const char *goodbye_reason, const char *why);

gboolean session_is_open(const Session *s);
const char *session_close_reason(const Session *s); /* NULL while open */

/* The agent's hello, or NULL before one arrived. */
const BlHello *session_hello(const Session *s);
/* Latest and previous accepted report, NULL if none; *at_us gets arrival time. */
const BlReport *session_report(const Session *s, gint64 *at_us);
const BlReport *session_prev_report(const Session *s, gint64 *at_us);

/* No report for [policy] stale_after_ms (counted from the session's start before the
 * first report). A stale agent is treated like no agent at all. */
gboolean session_is_stale(const Session *s, gint64 now_us);
gint64 session_opened_at(const Session *s);

guint64 session_rejected(const Session *s, SessionReject kind);
guint64 session_rejected_total(const Session *s);
guint64 session_accepted(const Session *s); /* messages accepted */
guint64 session_bytes(const Session *s);    /* bytes read */
guint64 session_hellos(const Session *s);   /* hellos received */
