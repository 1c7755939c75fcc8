/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Facts from libvirt's domain XML and from ballast's per-VM metadata.
 *
 * Pure functions over strings (GMarkup, no libvirt): the virt module fetches
 * the XML, these parse it. The XML can be edited by tenants' operators, so
 * every value is validated; a bad one falls back to the default and is
 * described in `problems` for the caller to log (once per VM).
 */
#pragma once

#include <glib.h>

#include "policy.h"

#define DOMXML_POLICY_NS     "https://ballast.dev/xmlns/policy/1"
#define DOMXML_POLICY_PREFIX "ballast"
#define DOMXML_MAX_BYTES     (4 * 1024 * 1024)
#define DOMXML_SHARES_MAX    100000

typedef enum {
    DOMXML_CHANNEL_ABSENT,       /* no org.ballast.agent.0 channel */
    DOMXML_CHANNEL_UNKNOWN,      /* channel without a state attribute */
    DOMXML_CHANNEL_CONNECTED,    /* the guest has the port open */
    DOMXML_CHANNEL_DISCONNECTED, /* nobody in the guest listens */
} DomxmlChannel;

typedef struct DomxmlPolicy {
    gboolean has_min;
    guint64 min_kib;
    gboolean has_shares;
    guint32 shares;
    gboolean has_ksm;
    PolicyKsm ksm;
    gboolean has_mode;
    PolicyMode mode;
    gboolean has_latency_sensitive;
    gboolean latency_sensitive;
} DomxmlPolicy;

typedef struct {
    char name[256];
    char uuid[37];
    guint64 memory_kib;        /* <memory>: the maximum */
    guint64 current_kib;       /* <currentMemory> */
    guint64 min_guarantee_kib; /* <memtune><min_guarantee>, 0 when absent */
    DomxmlChannel channel;
    gboolean nosharepages; /* <memoryBacking><nosharepages/> */
    gboolean has_policy;   /* <metadata> holds a ballast policy element */
    DomxmlPolicy policy;
} DomxmlDomain;

/*
 * Parse a domain's XML (virDomainGetXMLDesc). Structural errors fail;
 * bad policy values only land in problems (may be NULL).
 */
gboolean domxml_parse_domain(const char *xml, gssize len, DomxmlDomain *dom, GString *problems,
                             GError **error);

/*
 * Parse the element returned by virDomainGetMetadata(ELEMENT, DOMXML_POLICY_NS):
 * <ballast:policy min="1GiB" shares="1000" ksm="auto" mode="observe"
 * latency-sensitive="no"/>. Unknown attributes are ignored (newer brokers may
 * add some); bad values are left unset and described in problems.
 */
gboolean domxml_parse_policy(const char *xml, gssize len, DomxmlPolicy *policy, GString *problems,
                             GError **error);

/* XML for virDomainSetMetadata from a policy (only the fields that are set):
 * a bare <policy .../>, libvirt adds the namespace. */
char *domxml_format_policy(const DomxmlPolicy *policy);

/* "<memory unit='MiB'>2</memory>"-style value + unit -> KiB. */
gboolean domxml_scale_kib(const char *value, const char *unit, guint64 *kib);
