/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metrics: the pure renderer over made-up snapshots, the listen address
 * parser, and the libsoup listener (a scrape, a wrong path and method, a
 * port already in use).
 */
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "metrics.h"

static MetricsSnapshot *snapshot_two_vms(void)
{
    MetricsSnapshot *s = g_new0(MetricsSnapshot, 1);

    s->version = "9.8.7";
    s->libvirt_connected = TRUE;
    s->libvirt_answering = TRUE;
    s->has_host = TRUE;
    s->host_available_bytes = 1073741824;
    s->host_reserve_bytes = 2147483648;
    s->host_short_bytes = 1073741824;
    s->has_ksm = TRUE;
    s->ksm_pages_sharing = 1234;
    s->ksm_general_profit_bytes = -4096;
    metrics_histogram_observe(&s->cycle, 0.0003);
    metrics_histogram_observe(&s->cycle, 0.02);
    metrics_histogram_observe(&s->cycle, 7.0);
    s->n_vms = 2;
    s->vms = g_new0(MetricsVm, 2);

    MetricsVm *a = &s->vms[0];
    a->domain = g_strdup("web-1");
    a->agent_connected = TRUE;
    a->has_report = TRUE;
    a->report_age_s = 0.25;
    a->has_balloon = TRUE;
    a->actual_bytes = 805306368;
    a->max_bytes = 1073741824;
    a->target_bytes = 805306368;
    a->floor_bytes = 268435456;
    a->entitlement_bytes = 536870912;
    a->has_available = TRUE;
    a->available_bytes = 104857600;
    a->has_psi = TRUE;
    a->psi_some_avg10_ratio = 0.042;
    a->decisions[POLICY_ACTION_DEFLATE][POLICY_REASON_PRESSURE] = 3;
    a->decisions[POLICY_ACTION_INFLATE][POLICY_REASON_HOST_SHORT] = 2;
    a->has_ksm_merging = TRUE;
    a->ksm_merging_pages = 77;
    a->ksm_decided = TRUE;
    a->ksm_excluded = TRUE;
    g_strlcpy(a->ksm_state, "never", sizeof(a->ksm_state));
    a->rejected[SESSION_REJECT_JSON] = 5;

    /* A hostile name, no agent, no balloon figures yet. */
    MetricsVm *b = &s->vms[1];
    b->domain = g_strdup("we\"ird\\name\nx");
    b->floor_bytes = 134217728;
    return s;
}

static void assert_line(const char *text, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *hay = g_strdup_printf("\n%s", text);
    if (strstr(hay, needle) == NULL)
        g_error("missing line: %s\n--- in ---\n%s", line, text);
}

static void assert_no(const char *text, const char *fragment)
{
    if (strstr(text, fragment) != NULL)
        g_error("unexpected: %s\n--- in ---\n%s", fragment, text);
}

static void test_render(void)
{
    g_autoptr(MetricsSnapshot) s = snapshot_two_vms();
    g_autofree char *t = metrics_render(s);

    assert_line(t, "ballast_build_info{version=\"9.8.7\"} 1");
    assert_line(t, "ballast_libvirt_connected 1");
    assert_line(t, "ballast_libvirt_answering 1");
    assert_line(t, "# TYPE ballast_host_short_bytes gauge");
    assert_line(t, "ballast_host_available_bytes 1073741824");
    assert_line(t, "ballast_host_reserve_bytes 2147483648");
    assert_line(t, "ballast_host_short_bytes 1073741824");
    assert_line(t, "ballast_ksm_pages_sharing 1234");
    assert_line(t, "ballast_ksm_general_profit_bytes -4096");
    assert_line(t, "ballast_vm_agent_connected{domain=\"web-1\"} 1");
    assert_line(t, "ballast_vm_report_age_seconds{domain=\"web-1\"} 0.25");
    assert_line(t, "ballast_vm_balloon_actual_bytes{domain=\"web-1\"} 805306368");
    assert_line(t, "ballast_vm_balloon_target_bytes{domain=\"web-1\"} 805306368");
    assert_line(t, "ballast_vm_floor_bytes{domain=\"web-1\"} 268435456");
    assert_line(t, "ballast_vm_entitlement_bytes{domain=\"web-1\"} 536870912");
    assert_line(t, "ballast_vm_max_bytes{domain=\"web-1\"} 1073741824");
    assert_line(t, "ballast_vm_available_bytes{domain=\"web-1\"} 104857600");
    assert_line(t, "ballast_vm_psi_some_avg10_ratio{domain=\"web-1\"} 0.042");
    assert_line(t, "ballast_vm_ksm_merging_pages{domain=\"web-1\"} 77");
    assert_line(t, "ballast_vm_ksm_excluded{domain=\"web-1\",state=\"never\"} 1");
    assert_line(t, "# TYPE ballast_vm_decisions_total counter");
    assert_line(
        t, "ballast_vm_decisions_total{domain=\"web-1\",kind=\"deflate\",reason=\"pressure\"} 3");
    assert_line(
        t, "ballast_vm_decisions_total{domain=\"web-1\",kind=\"inflate\",reason=\"host-short\"} 2");
    assert_line(t, "ballast_guest_input_rejected_total{domain=\"web-1\",why=\"json\"} 5");

    /* The histogram: cumulative buckets, +Inf = count, sum. */
    assert_line(t, "# TYPE ballast_cycle_duration_seconds histogram");
    assert_line(t, "ballast_cycle_duration_seconds_bucket{le=\"0.0005\"} 1");
    assert_line(t, "ballast_cycle_duration_seconds_bucket{le=\"0.01\"} 1");
    assert_line(t, "ballast_cycle_duration_seconds_bucket{le=\"0.025\"} 2");
    assert_line(t, "ballast_cycle_duration_seconds_bucket{le=\"2.5\"} 2");
    assert_line(t, "ballast_cycle_duration_seconds_bucket{le=\"+Inf\"} 3");
    assert_line(t, "ballast_cycle_duration_seconds_count 3");
    assert_line(t, "ballast_cycle_duration_seconds_sum 7.0203");

    /* The hostile name is escaped; what is unknown about it is absent. */
    assert_line(t, "ballast_vm_agent_connected{domain=\"we\\\"ird\\\\name\\nx\"} 0");
    assert_line(t, "ballast_vm_floor_bytes{domain=\"we\\\"ird\\\\name\\nx\"} 134217728");
    assert_no(t, "ballast_vm_balloon_actual_bytes{domain=\"we\\\"");
    assert_no(t, "ballast_vm_report_age_seconds{domain=\"we\\\"");
    assert_no(t, "ballast_vm_ksm_excluded{domain=\"we\\\"");
    assert_no(t, "ballast_vm_decisions_total{domain=\"we\\\"");
    /* Zero counters are not listed, nor unset reasons. */
    assert_no(t, "reason=\"oom\"");

    /* Each family's HELP and TYPE appear once, before its series. */
    g_auto(GStrv) lines = g_strsplit(t, "\n", -1);
    g_autoptr(GHashTable) typed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "# TYPE ")) {
            g_auto(GStrv) w = g_strsplit(lines[i], " ", 4);
            g_assert_false(g_hash_table_contains(typed, w[2]));
            g_hash_table_add(typed, g_strdup(w[2]));
        } else if (lines[i][0] != '#' && lines[i][0] != '\0') {
            g_autofree char *name = g_strndup(lines[i], strcspn(lines[i], "{ "));
            static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
            for (guint k = 0; k < G_N_ELEMENTS(suffixes); k++)
                if (g_str_has_suffix(name, suffixes[k]) && !g_hash_table_contains(typed, name))
                    name[strlen(name) - strlen(suffixes[k])] = '\0';
            if (!g_hash_table_contains(typed, name))
                g_error("series before its TYPE line: %s", lines[i]);
        }
    }
    g_assert_cmpuint(g_hash_table_size(typed), ==, 22);
}

static void test_render_empty(void)
{
    MetricsSnapshot s = {0};
    g_autofree char *t = metrics_render(&s);

    /* No host facts yet, no VMs: the families are there, with no series. */
    assert_line(t, "ballast_build_info{version=\"unknown\"} 1");
    assert_line(t, "ballast_libvirt_connected 0");
    assert_line(t, "ballast_libvirt_answering 0");
    assert_line(t, "# TYPE ballast_host_available_bytes gauge");
    assert_no(t, "ballast_host_available_bytes 0");
    assert_line(t, "ballast_cycle_duration_seconds_count 0");
    assert_no(t, "domain=");
}

static void test_histogram(void)
{
    MetricsHistogram h = {0};

    metrics_histogram_observe(&h, -1);  /* a clock that went back: 0 */
    metrics_histogram_observe(&h, 0.5); /* on a bound: in it */
    metrics_histogram_observe(&h, 100);
    g_assert_cmpuint(h.count, ==, 3);
    g_assert_cmpuint(h.le[0], ==, 1);
    g_assert_cmpuint(h.le[9], ==, 2); /* le 0.5 */
    g_assert_cmpuint(h.le[METRICS_CYCLE_BUCKETS_N - 1], ==, 2);
    g_assert_cmpfloat_with_epsilon(h.sum, 100.5, 1e-9);
}

static void test_parse_listen(void)
{
    static const char *const good[] = {"127.0.0.1:9178", "[::1]:9178", "0.0.0.0:1",
                                       "10.1.2.3:65535"};
    static const char *const bad[] = {
        "",      "127.0.0.1",   "127.0.0.1:0", "127.0.0.1:65536", "localhost:9178", "9178",
        ":9178", "127.0.0.1:x", "[::1]"};

    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GSocketAddress) a = NULL;
        g_autoptr(GError) e = NULL;
        g_assert_true(metrics_parse_listen(good[i], &a, &e));
        g_assert_no_error(e);
        g_assert_true(G_IS_INET_SOCKET_ADDRESS(a));
    }
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GSocketAddress) a = NULL;
        g_autoptr(GError) e = NULL;
        g_assert_false(metrics_parse_listen(bad[i], &a, &e));
        g_assert_null(a);
        g_assert_nonnull(e);
        g_assert_null(strchr(e->message, '\n')); /* one line */
        g_assert_nonnull(strstr(e->message, bad[i]));
    }
}

/* ---- the listener ---- */

static guint free_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, any, FALSE, NULL));
    g_autoptr(GSocketAddress) got = g_socket_get_local_address(s, NULL);
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
}

static guint renders;

static char *render_fixed(gpointer user_data)
{
    renders++;
    return g_strdup(user_data);
}

typedef struct {
    GMainLoop *loop;
    guint status;
    char *body;
    char *content_type;
} Fetch;

static void on_fetched(GObject *src, GAsyncResult *res, gpointer data)
{
    Fetch *f = data;
    g_autoptr(GError) e = NULL;
    g_autoptr(GBytes) body = soup_session_send_and_read_finish(SOUP_SESSION(src), res, &e);
    SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(src), res);

    g_assert_no_error(e);
    f->status = soup_message_get_status(msg);
    f->body = g_strndup(g_bytes_get_data(body, NULL), g_bytes_get_size(body));
    const char *ct =
        soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL);
    f->content_type = g_strdup(ct);
    g_main_loop_quit(f->loop);
}

static void fetch(const char *method, const char *url, Fetch *f)
{
    g_autoptr(SoupSession) session = soup_session_new();
    g_autoptr(SoupMessage) msg = soup_message_new(method, url);

    f->loop = g_main_loop_new(NULL, FALSE);
    soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL, on_fetched, f);
    g_main_loop_run(f->loop);
    g_main_loop_unref(f->loop);
}

static void fetch_clear(Fetch *f)
{
    g_free(f->body);
    g_free(f->content_type);
    memset(f, 0, sizeof(*f));
}

static void test_server(void)
{
    guint port = free_port();
    g_autofree char *listen = g_strdup_printf("127.0.0.1:%u", port);
    g_autofree char *url = g_strdup_printf("http://%s/metrics", listen);
    g_autofree char *other = g_strdup_printf("http://%s/", listen);
    g_autoptr(GError) e = NULL;
    const char *text = "ballast_build_info{version=\"x\"} 1\n";
    Fetch f = {0};

    g_autoptr(MetricsServer) server = metrics_server_new(listen, render_fixed, (gpointer)text, &e);
    g_assert_no_error(e);
    g_assert_cmpstr(metrics_server_listen(server), ==, listen);

    renders = 0;
    fetch("GET", url, &f);
    g_assert_cmpuint(f.status, ==, 200);
    g_assert_cmpstr(f.body, ==, text);
    g_assert_cmpstr(f.content_type, ==, "text/plain");
    g_assert_cmpuint(renders, ==, 1);
    fetch_clear(&f);

    fetch("GET", other, &f);
    g_assert_cmpuint(f.status, ==, 404);
    fetch_clear(&f);
    fetch("POST", url, &f);
    g_assert_cmpuint(f.status, ==, 405);
    fetch_clear(&f);
    g_assert_cmpuint(renders, ==, 1); /* neither rendered */

    /* The port is taken: a clear one-line error naming the address. */
    g_autoptr(GError) e2 = NULL;
    MetricsServer *second = metrics_server_new(listen, render_fixed, (gpointer)text, &e2);
    g_assert_null(second);
    g_assert_nonnull(e2);
    g_assert_nonnull(strstr(e2->message, listen));
    g_assert_nonnull(strstr(e2->message, "in use"));
    g_assert_null(strchr(e2->message, '\n'));

    /* A bad address never binds. */
    g_autoptr(GError) e3 = NULL;
    g_assert_null(metrics_server_new("localhost:1", render_fixed, NULL, &e3));
    g_assert_nonnull(e3);
}

/* docs/metrics.md names every family, reason code and rejection kind. */
static void test_docs(void)
{
    g_autofree char *path =
        g_build_filename(g_getenv("BALLAST_TEST_DATA"), "..", "..", "docs", "metrics.md", NULL);
    g_autofree char *doc = NULL;
    g_autoptr(MetricsSnapshot) s = snapshot_two_vms();
    g_autofree char *t = metrics_render(s);

    g_assert_true(g_file_get_contents(path, &doc, NULL, NULL));
    g_auto(GStrv) lines = g_strsplit(t, "\n", -1);
    guint families = 0;
    for (guint i = 0; lines[i]; i++) {
        if (!g_str_has_prefix(lines[i], "# TYPE "))
            continue;
        g_auto(GStrv) w = g_strsplit(lines[i], " ", 4);
        g_autofree char *row = g_strdup_printf("| `%s` | %s |", w[2], w[3]);
        if (strstr(doc, row) == NULL)
            g_error("docs/metrics.md has no row \"%s\"", row);
        families++;
    }
    g_assert_cmpuint(families, ==, 22);
    /* ... and no row for a family that does not exist */
    g_auto(GStrv) dl = g_strsplit(doc, "\n", -1);
    for (guint i = 0; dl[i]; i++) {
        if (!g_str_has_prefix(dl[i], "| `ballast_"))
            continue;
        g_autofree char *name = g_strndup(dl[i] + 3, strcspn(dl[i] + 3, "`"));
        g_autofree char *type = g_strdup_printf("# TYPE %s ", name);
        if (strstr(t, type) == NULL)
            g_error("docs/metrics.md lists %s, which ballastd does not serve", name);
    }
    for (guint r = 0; r < POLICY_REASON_N; r++) {
        g_autofree char *q = g_strdup_printf("`%s`", policy_reason_name((PolicyReason)r));
        if (strstr(doc, q) == NULL)
            g_error("docs/metrics.md does not list the reason %s", q);
    }
    for (guint w = 0; w < SESSION_REJECT_N; w++) {
        g_autofree char *q = g_strdup_printf("`%s`", session_reject_name((SessionReject)w));
        if (strstr(doc, q) == NULL)
            g_error("docs/metrics.md does not list the rejection %s", q);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/metrics/render", test_render);
    g_test_add_func("/metrics/render-empty", test_render_empty);
    g_test_add_func("/metrics/histogram", test_histogram);
    g_test_add_func("/metrics/parse-listen", test_parse_listen);
    g_test_add_func("/metrics/server", test_server);
    g_test_add_func("/metrics/docs", test_docs);
    return g_test_run();
}
