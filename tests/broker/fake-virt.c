/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fake-virt.h"

#include <stdio.h>
#include <string.h>
#include <gio/gio.h>
#include <unistd.h>

typedef struct {
    char uuid[VIRT_UUID_LEN];
    char name[VIRT_NAME_MAX];
    guint64 max_kib, current_kib;
    int broker_fd;
    gboolean balloon_event_pending;
} FakeDomain;

struct FakeVirt {
    FakeDomain *doms;
    guint n;
    guint64 floor_kib;
    GHashTable *by_uuid; /* uuid -> FakeDomain* */
    GArray *setmem_log;  /* FakeVirtSetMemory */
    Virt *virt;
    guint event_idle;
    guint channel_opens;
    volatile guint64 *mirror;
};

void fake_virt_uuid(guint vm, char out[VIRT_UUID_LEN])
{
    g_snprintf(out, VIRT_UUID_LEN, "00000000-0000-4000-8000-%012x", vm);
}

FakeVirt *fake_virt_new(guint n, guint64 max_kib, guint64 start_kib, guint64 floor_kib,
                        const int *broker_fds)
{
    FakeVirt *f = g_new0(FakeVirt, 1);

    f->n = n;
    f->floor_kib = floor_kib;
    f->doms = g_new0(FakeDomain, n);
    f->by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
    f->setmem_log = g_array_new(FALSE, FALSE, sizeof(FakeVirtSetMemory));
    for (guint i = 0; i < n; i++) {
        FakeDomain *d = &f->doms[i];
        fake_virt_uuid(i, d->uuid);
        g_snprintf(d->name, sizeof(d->name), "vm%05u", i);
        d->max_kib = max_kib;
        d->current_kib = start_kib;
        d->broker_fd = broker_fds ? broker_fds[i] : -1;
        g_hash_table_insert(f->by_uuid, d->uuid, d);
    }
    return f;
}

void fake_virt_free(FakeVirt *f)
{
    if (f == NULL)
        return;
    g_clear_handle_id(&f->event_idle, g_source_remove);
    g_hash_table_destroy(f->by_uuid);
    g_array_unref(f->setmem_log);
    g_free(f->doms);
    g_free(f);
}

static void fake_attached(gpointer data, Virt *v)
{
    ((FakeVirt *)data)->virt = v;
}

const GArray *fake_virt_set_memory_log(const FakeVirt *f)
{
    return f->setmem_log;
}

guint64 fake_virt_balloon_kib(const FakeVirt *f, guint vm)
{
    return vm < f->n ? f->doms[vm].current_kib : 0;
}

guint fake_virt_channel_opens(const FakeVirt *f)
{
    return f->channel_opens;
}

void fake_virt_mirror_balloons(FakeVirt *f, volatile guint64 *mirror)
{
    f->mirror = mirror;
    for (guint i = 0; mirror != NULL && i < f->n; i++)
        mirror[i] = f->doms[i].current_kib;
}

static FakeDomain *find(FakeVirt *f, const char *uuid, GError **error)
{
    FakeDomain *d = g_hash_table_lookup(f->by_uuid, uuid);

    if (d == NULL)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no domain %s", uuid);
    return d;
}

static void fill_info(const FakeDomain *d, VirtDomainInfo *info)
{
    memset(info, 0, sizeof(*info));
    g_strlcpy(info->uuid, d->uuid, sizeof(info->uuid));
    g_strlcpy(info->name, d->name, sizeof(info->name));
    info->active = TRUE;
    info->persistent = TRUE;
    info->state = VIRT_STATE_RUNNING;
}

static GArray *fake_list_domains(gpointer data, GError **error)
{
    FakeVirt *f = data;
    GArray *out = g_array_sized_new(FALSE, TRUE, sizeof(VirtDomainInfo), f->n);

    for (guint i = 0; i < f->n; i++) {
        VirtDomainInfo info;
        fill_info(&f->doms[i], &info);
        g_array_append_val(out, info);
    }
    return out;
}

static gboolean fake_domain_info(gpointer data, const char *uuid, VirtDomainInfo *info,
                                 GError **error)
{
    FakeDomain *d = find(data, uuid, error);

    if (d == NULL)
        return FALSE;
    fill_info(d, info);
    return TRUE;
}

static char *policy_xml(const FakeVirt *f)
{
    return g_strdup_printf("<ballast:policy xmlns:ballast=\"https://ballast.dev/xmlns/policy/1\" "
                           "min=\"%" G_GUINT64_FORMAT "KiB\"/>",
                           f->floor_kib);
}

static char *fake_domain_xml(gpointer data, const char *uuid, GError **error)
{
    FakeVirt *f = data;
    FakeDomain *d = find(f, uuid, error);

    if (d == NULL)
        return NULL;
    g_autofree char *policy = policy_xml(f);
    return g_strdup_printf(
        "<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
        "<memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>"
        "<currentMemory unit='KiB'>%" G_GUINT64_FORMAT "</currentMemory>"
        "<metadata>%s</metadata><devices>"
        "<channel type='unix'><target type='virtio' name='org.ballast.agent.0' "
        "state='connected'/></channel><memballoon model='virtio'/></devices></domain>",
        d->name, d->uuid, d->max_kib, d->current_kib, policy);
}

static char *fake_domain_metadata(gpointer data, const char *uuid, GError **error)
{
    FakeVirt *f = data;

    if (find(f, uuid, error) == NULL)
        return NULL;
    return policy_xml(f);
}

static void fill_stats(const FakeDomain *d, VirtStats *s)
{
    memset(s, 0, sizeof(*s));
    g_strlcpy(s->uuid, d->uuid, sizeof(s->uuid));
    g_strlcpy(s->name, d->name, sizeof(s->name));
    s->state = VIRT_STATE_RUNNING;
    s->has_current = TRUE;
    s->current_kib = d->current_kib;
    s->maximum_kib = d->max_kib;
}

static GArray *fake_balloon_stats(gpointer data, GError **error)
{
    FakeVirt *f = data;
    GArray *out = g_array_sized_new(FALSE, TRUE, sizeof(VirtStats), f->n);

    for (guint i = 0; i < f->n; i++) {
        VirtStats s;
        fill_stats(&f->doms[i], &s);
        g_array_append_val(out, s);
    }
    return out;
}

static gboolean fake_set_stats_period(gpointer data, const char *uuid, int period_s, GError **error)
{
    return find(data, uuid, error) != NULL;
}

/* libvirt delivers BALLOON_CHANGE later, from its event loop: so does the fake. */
static gboolean on_balloon_events(gpointer data)
{
    FakeVirt *f = data;

    f->event_idle = 0;
    for (guint i = 0; i < f->n; i++) {
        FakeDomain *d = &f->doms[i];
        if (!d->balloon_event_pending)
            continue;
        d->balloon_event_pending = FALSE;
        if (f->virt != NULL)
            virt_backend_emit_balloon_change(f->virt, d->uuid, d->name, d->current_kib);
    }
    return G_SOURCE_REMOVE;
}

static gboolean fake_set_memory(gpointer data, const char *uuid, guint64 kib, GError **error)
{
    FakeVirt *f = data;
    FakeDomain *d = find(f, uuid, error);

    if (d == NULL)
        return FALSE;
    FakeVirtSetMemory rec = {
        .vm = (guint)(d - f->doms),
        .at_us = g_get_monotonic_time(),
        .kib = kib,
    };
    g_array_append_val(f->setmem_log, rec);
    d->current_kib = MIN(kib, d->max_kib);
    if (f->mirror != NULL)
        f->mirror[rec.vm] = d->current_kib;
    d->balloon_event_pending = TRUE;
    if (f->event_idle == 0)
        f->event_idle = g_idle_add(on_balloon_events, f);
    return TRUE;
}

static SessionTransport *fake_open_channel(gpointer data, const char *uuid, GError **error)
{
    FakeVirt *f = data;
    FakeDomain *d = find(f, uuid, error);
    int fd;

    if (d == NULL)
        return NULL;
    if (d->broker_fd < 0 || (fd = dup(d->broker_fd)) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: no channel", d->name);
        return NULL;
    }
    f->channel_opens++;
    return session_transport_new_fd(fd);
}

static const VirtBackend fake_backend = {
    .attached = fake_attached,
    .list_domains = fake_list_domains,
    .domain_info = fake_domain_info,
    .domain_xml = fake_domain_xml,
    .domain_metadata = fake_domain_metadata,
    .balloon_stats = fake_balloon_stats,
    .set_stats_period = fake_set_stats_period,
    .set_memory = fake_set_memory,
    .open_channel = fake_open_channel,
};

const VirtBackend *fake_virt_backend(void)
{
    return &fake_backend;
}

void fake_agent_hello(GString *out)
{
    BlMessage m;

    bl_proto_init(&m, BL_MSG_HELLO);
    g_strlcpy(m.u.hello.agent, "fake-agent", sizeof(m.u.hello.agent));
    g_strlcpy(m.u.hello.agent_version, "0.1.0", sizeof(m.u.hello.agent_version));
    g_strlcpy(m.u.hello.boot_id, "fake", sizeof(m.u.hello.boot_id));
    g_strlcpy(m.u.hello.kernel, "6.1", sizeof(m.u.hello.kernel));
    m.u.hello.interval_ms = 1000;
    m.u.hello.balloon.present = TRUE;
    m.u.hello.balloon.driver_bound = TRUE;
    m.u.hello.balloon.kconfig = BL_KCONFIG_M;
    g_string_truncate(out, 0);
    if (!bl_proto_encode(&m, out, NULL))
        g_error("cannot encode hello");
}

void fake_agent_report(GString *out, guint64 seq, guint64 balloon_kib, gboolean pressure,
                       guint64 stall_us)
{
    BlMessage m;
    BlReport *r = &m.u.report;

    bl_proto_init(&m, BL_MSG_REPORT);
    r->seq = seq;
    r->uptime_ms = 60000 + seq * 1000;
    r->reason = pressure ? BL_REPORT_PRESSURE : BL_REPORT_PERIODIC;
    r->mem.total_kib = balloon_kib - 128 * 1024;
    r->mem.available_kib = pressure ? 40 * 1024 : r->mem.total_kib * 6 / 10;
    r->mem.free_kib = r->mem.available_kib / 2;
    r->mem.cached_kib = 100 * 1024;
    r->mem.committed_as_kib = r->mem.total_kib / 2;
    r->has_psi = TRUE;
    r->psi.some.avg10 = pressure ? 30.0 : 0.0;
    r->psi.some.total_us = stall_us;
    r->psi.full.avg10 = pressure ? 10.0 : 0.0;
    r->psi.full.total_us = stall_us / 3;
    g_string_truncate(out, 0);
    if (!bl_proto_encode(&m, out, NULL))
        g_error("cannot encode report");
}
