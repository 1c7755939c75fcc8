/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real broker over the fake hypervisor (fake-virt.c): 40 domains whose
 * agent channels are socketpairs written by this test. Every channel opens;
 * a pressure report from one guest raises that guest's balloon and no other;
 * a guest that sends garbage costs only its own reports.
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "fake-virt.h"
#include "protocol.h"
#include "virt-ksm.h"

#define N_VMS   40
#define GIB_KIB (1024 * 1024)

typedef struct {
    int agent_fd[N_VMS];
    Broker *b;
    FakeVirt *fake;
    guint step;
    guint64 seq[N_VMS];
} Ctx;

static void send_hello(Ctx *c, guint i)
{
    g_autoptr(GString) s = g_string_new(NULL);

    fake_agent_hello(s);
    g_assert_cmpint(write(c->agent_fd[i], s->str, s->len), ==, (gssize)s->len);
}

static void send_report(Ctx *c, guint i, gboolean pressure)
{
    g_autoptr(GString) s = g_string_new(NULL);

    c->seq[i]++;
    fake_agent_report(s, c->seq[i], fake_virt_balloon_kib(c->fake, i), pressure,
                      c->seq[i] * 300000);
    g_assert_cmpint(write(c->agent_fd[i], s->str, s->len), ==, (gssize)s->len);
}

/* Has vm i been given memory yet? */
static gboolean raised(const Ctx *c, guint i)
{
    const GArray *log = fake_virt_set_memory_log(c->fake);

    for (guint k = 0; k < log->len; k++)
        if (g_array_index(log, FakeVirtSetMemory, k).vm == i)
            return TRUE;
    return FALSE;
}

/* While the test waits for an answer, the other agents keep reporting, so
 * that none falls silent (a silent agent's VM is raised to a safe size). */
static void keep_alive(Ctx *c)
{
    for (guint i = 0; i < N_VMS; i++)
        if (i != 5 && i != 9)
            send_report(c, i, FALSE);
}

static gboolean on_step(gpointer data)
{
    Ctx *c = data;

    switch (c->step++) {
    case 0: /* every agent says hello and reports, idle */
        for (guint i = 0; i < N_VMS; i++) {
            send_hello(c, i);
            send_report(c, i, FALSE);
        }
        return G_SOURCE_CONTINUE;
    case 1:
        for (guint i = 0; i < N_VMS; i++)
            send_report(c, i, FALSE);
        /* vm00007 floods garbage: a broken line, a schema error, 70 KiB unterminated */
        {
            static const char junk[] = "{\"type\":\"report\",\n{\"type\":\"report\",\"v\":1}\n";
            g_assert_cmpint(write(c->agent_fd[7], junk, strlen(junk)), ==, (gssize)strlen(junk));
            g_autofree char *big = g_malloc(70 * 1024);
            memset(big, 'x', 70 * 1024);
            g_assert_cmpint(write(c->agent_fd[7], big, 70 * 1024), ==, 70 * 1024);
            g_assert_cmpint(write(c->agent_fd[7], "\n", 1), ==, 1);
        }
        return G_SOURCE_CONTINUE;
    case 2: /* one guest under pressure */
        send_report(c, 5, TRUE);
        return G_SOURCE_CONTINUE;
    case 3:
        /* Not a timing: on a loaded machine the answer may take a while. */
        if (!raised(c, 5)) {
            keep_alive(c);
            c->step--;
            return G_SOURCE_CONTINUE;
        }
        send_report(c, 9, TRUE);
        return G_SOURCE_CONTINUE;
    default:
        if (!raised(c, 9)) {
            keep_alive(c);
            return G_SOURCE_CONTINUE;
        }
        broker_quit(c->b, "test over");
        return G_SOURCE_REMOVE;
    }
}

static gboolean hang_guard(gpointer data)
{
    g_error("the broker never answered the pressure reports");
    return G_SOURCE_REMOVE;
}

static void test_fake_broker(void)
{
    Ctx c = {0};
    int broker_fd[N_VMS];
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("ballast-fake-XXXXXX", &e);
    g_assert_no_error(e);
    g_autofree char *conf = g_build_filename(dir, "ballastd.conf", NULL);
    g_autofree char *ctl = g_build_filename(dir, "ctl.sock", NULL);
    g_autofree char *proc = g_build_filename(dir, "proc", NULL);
    g_autofree char *meminfo = g_build_filename(proc, "meminfo", NULL);

    for (guint i = 0; i < N_VMS; i++) {
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        broker_fd[i] = sv[0];
        c.agent_fd[i] = sv[1];
    }
    g_assert_true(g_file_set_contents(conf,
                                      "[broker]\ntick_ms = 200\nchannel_poll_ms = 100\n"
                                      "stats_period_s = 0\n[policy]\nprobe_step = 0\n"
                                      "[ksm]\nmanage = false\n",
                                      -1, NULL));
    /* A host with room for every guest at its maximum: raises are never
     * held back by the host (policy rule 10), only the guests' pressure counts. */
    g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
    g_assert_true(g_file_set_contents(
        meminfo, "MemTotal: 268435456 kB\nMemFree: 260000000 kB\nMemAvailable: 260000000 kB\n", -1,
        NULL));
    c.fake = fake_virt_new(N_VMS, 4ULL * GIB_KIB, GIB_KIB, 512 * 1024, broker_fd);
    BrokerOptions opt = {
        .uri = "backend:///",
        .config_path = conf,
        .config_explicit = TRUE,
        .control_path = ctl,
        .host_root = dir,
        .backend = fake_virt_backend(),
        .backend_data = c.fake,
    };
    c.b = broker_new(&opt, &e);
    g_assert_no_error(e);
    g_timeout_add(300, on_step, &c);
    guint guard = g_timeout_add_seconds(60, hang_guard, NULL);
    g_assert_true(broker_run(c.b, &e));
    g_assert_no_error(e);
    g_source_remove(guard);

    /* Every channel was opened once: none failed, none was reopened. */
    g_assert_cmpuint(fake_virt_channel_opens(c.fake), ==, N_VMS);
    /* Only the two guests under pressure were given memory. */
    const GArray *log = fake_virt_set_memory_log(c.fake);
    gboolean raised[N_VMS] = {0};
    for (guint i = 0; i < log->len; i++) {
        const FakeVirtSetMemory *s = &g_array_index(log, FakeVirtSetMemory, i);
        g_assert_cmpuint(s->vm, <, N_VMS);
        g_assert_cmpuint(s->kib, >, GIB_KIB);
        raised[s->vm] = TRUE;
    }
    for (guint i = 0; i < N_VMS; i++)
        g_assert_cmpint(raised[i], ==, i == 5 || i == 9);
    g_assert_cmpuint(fake_virt_balloon_kib(c.fake, 5), >, GIB_KIB);
    g_assert_cmpuint(fake_virt_balloon_kib(c.fake, 9), >, GIB_KIB);

    broker_free(c.b);
    fake_virt_free(c.fake);
    for (guint i = 0; i < N_VMS; i++) {
        close(c.agent_fd[i]);
        close(broker_fd[i]);
    }
    g_unlink(conf);
    g_unlink(ctl);
    g_unlink(meminfo);
    g_rmdir(proc);
    g_rmdir(dir);
}

/* With a backend, the libvirt-only calls fail cleanly instead of reaching libvirt. */
static void test_backend_unsupported(void)
{
    g_autoptr(FakeVirt) fake = fake_virt_new(1, GIB_KIB, GIB_KIB, 0, NULL);
    g_autoptr(Virt) v = virt_new_backend(fake_virt_backend(), fake, NULL, NULL);
    g_autoptr(GError) e = NULL;

    g_assert_null(virt_list_domains(v, &e)); /* not connected yet */
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_true(virt_connect(v, &e));
    g_assert_no_error(e);
    g_autoptr(GArray) doms = virt_list_domains(v, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(doms->len, ==, 1);
    char uuid[VIRT_UUID_LEN];
    fake_virt_uuid(0, uuid);
    VirtKsmResult r;
    g_assert_false(virt_ksm_apply_uuid(v, uuid, TRUE, FALSE, &r, &e));
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_false(virt_set_domain_metadata(v, uuid, NULL, &e));
    g_assert_nonnull(e);
    g_clear_error(&e);
    /* No channel behind this fake domain. */
    g_assert_null(virt_open_channel(v, uuid, &e));
    g_assert_nonnull(e);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fake-virt/broker", test_fake_broker);
    g_test_add_func("/fake-virt/unsupported", test_backend_unsupported);
    return g_test_run();
}
