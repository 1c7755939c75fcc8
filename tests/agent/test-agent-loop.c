/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent in-process, its main loop driven by this test: a fake PSI
 * trigger (an eventfd) fires and a "pressure" report must follow at once;
 * a burst of requests is answered by one report.
 */
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "framer.h"
#include "protocol.h"

typedef struct {
    int lfd, fd;
    char *dir, *path;
    BlFramer *framer;
    GQueue msgs; /* of BlMessage */
} Peer;

static gboolean peer_collect(const char *line, gsize len, gpointer data)
{
    Peer *p = data;
    BlMessage *m = g_new0(BlMessage, 1);
    g_autoptr(GError) error = NULL;

    g_assert_true(bl_proto_decode(line, len, m, &error));
    g_assert_no_error(error);
    g_queue_push_tail(&p->msgs, m);
    return TRUE;
}

/* Run the agent's loop and read its output until a message arrives. */
static BlMessage *peer_next(Peer *p)
{
    for (int i = 0; i < 20000 && g_queue_is_empty(&p->msgs); i++) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        char buf[4096];

        g_main_context_iteration(NULL, FALSE);
        if (poll(&pfd, 1, 1) == 1) {
            gssize n = read(p->fd, buf, sizeof(buf));

            g_assert_cmpint(n, >, 0);
            bl_framer_feed(p->framer, buf, (gsize)n, peer_collect, p);
        }
    }
    g_assert_false(g_queue_is_empty(&p->msgs));
    return g_queue_pop_head(&p->msgs);
}

static void test_trigger_reports_pressure(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autofree char *root =
        g_build_filename(g_getenv("BALLAST_TEST_DATA"), "guest-1002-bound", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(Agent) agent = NULL;
    g_autofree char *cmd = NULL;
    AgentOptions opts = {0};
    BlMessage *m;
    Peer p = {0};
    guint64 one = 1, first_seq;
    int efd;

    p.dir = g_dir_make_tmp("ballast-loop-XXXXXX", &error);
    p.path = g_build_filename(p.dir, "ch.sock", NULL);
    g_strlcpy(addr.sun_path, p.path, sizeof(addr.sun_path));
    p.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(p.lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(p.lfd, 1), ==, 0);
    p.framer = bl_framer_new(BL_PROTO_MAX_LINE);

    opts.root = root;
    opts.port = p.path;
    opts.interval_ms = 60000; /* no periodic report gets in the way */
    agent = agent_new(&opts, &error);
    g_assert_no_error(error);
    agent_start(agent); /* connects at once: the socket is listening */
    p.fd = accept(p.lfd, NULL, NULL);
    g_assert_cmpint(p.fd, >=, 0);

    m = peer_next(&p);
    g_assert_cmpint(m->type, ==, BL_MSG_HELLO);
    g_free(m);
    m = peer_next(&p);
    g_assert_cmpint(m->type, ==, BL_MSG_REPORT);
    g_assert_cmpint(m->u.report.reason, ==, BL_REPORT_PERIODIC);
    /* the first seq continues from the guest's uptime (restarts stay monotonic) */
    first_seq = m->u.report.seq;
    g_assert_cmpuint(first_seq, >=, 1);
    g_free(m);

    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    agent_attach_trigger_fd(agent, efd, G_IO_IN);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(write(efd, &one, sizeof(one)), ==, sizeof(one));
        m = peer_next(&p);
        g_assert_cmpint(m->type, ==, BL_MSG_REPORT);
        g_assert_cmpint(m->u.report.reason, ==, BL_REPORT_PRESSURE);
        g_assert_cmpuint(m->u.report.seq, ==, first_seq + 1 + (guint64)i);
        g_assert_cmpuint(m->u.report.mem.available_kib, ==, 123456);
        g_free(m);
        g_usleep(120000); /* past the pressure rate limit */
    }

    /* 2000 requests while this side does not read: once the socket is full,
     * a newer report replaces the pending one instead of queueing */
    {
        GString *reqs = g_string_new(NULL);
        guint n_req = 0, n_other = 0;
        guint64 last_seq = first_seq + 3;

        for (int i = 0; i < 2000; i++)
            g_string_append(reqs, "{\"type\":\"request\",\"v\":1}\n");
        g_assert_cmpint(write(p.fd, reqs->str, reqs->len), ==, (gssize)reqs->len);
        g_string_free(reqs, TRUE);
        for (int i = 0; i < 200; i++)
            g_main_context_iteration(NULL, FALSE);
        for (int idle = 0; idle < 300;) {
            char buf[65536];
            gssize n;

            g_main_context_iteration(NULL, FALSE);
            n = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0) {
                bl_framer_feed(p.framer, buf, (gsize)n, peer_collect, &p);
                idle = 0;
            } else {
                idle++;
                g_usleep(1000);
            }
        }
        while ((m = g_queue_pop_head(&p.msgs)) != NULL) {
            if (m->type == BL_MSG_REPORT && m->u.report.reason == BL_REPORT_REQUEST) {
                n_req++;
                g_assert_cmpuint(m->u.report.seq, ==, last_seq + 1); /* none lost mid-line */
                last_seq = m->u.report.seq;
            } else {
                n_other++;
            }
            g_free(m);
        }
        g_test_message("2000 requests, socket not read: %u reports sent", n_req);
        /* the 52 KB of requests fit one wakeup's read budget (64 KiB): they
         * coalesce into one sample and one report */
        g_assert_cmpuint(n_req, ==, 1);
        g_assert_cmpuint(n_other, ==, 0);
    }
    g_assert_cmpuint(agent_stats(agent)->bad_lines, ==, 0);

    g_queue_clear_full(&p.msgs, g_free);
    close(p.fd);
    close(p.lfd);
    bl_framer_free(p.framer);
    cmd = g_strdup_printf("rm -rf '%s'", p.dir);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(p.path);
    g_free(p.dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/agent-loop/trigger-reports-pressure", test_trigger_reports_pressure);
    return g_test_run();
}
