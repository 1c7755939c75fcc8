/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Codec tests: vectors, encoder self-checks, version skew, line-length limits. */
#include "protocol.h"
#include "vectors.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static void assert_decodes(const char *line, gsize len, BlMessage *msg)
{
    g_autoptr(GError) error = NULL;

    if (!bl_proto_decode(line, len, msg, &error))
        g_error("decode failed: %s\n  line: %.*s", error->message, (int)MIN(len, 300), line);
}

/* decode -> encode -> decode gives the same struct, and encoding is a fixed point. */
static void assert_round_trip(const BlMessage *msg)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) again = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    BlMessage back;

    g_assert_true(bl_proto_encode(msg, out, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(out->len, >, 1);
    g_assert_cmpint(out->str[out->len - 1], ==, '\n');
    g_assert_null(memchr(out->str, '\n', out->len - 1));
    assert_decodes(out->str, out->len - 1, &back);
    g_assert_cmpmem(msg, sizeof *msg, &back, sizeof back);
    g_assert_true(bl_proto_encode(&back, again, &error));
    g_assert_cmpstr(out->str, ==, again->str);
}

static void test_valid_vectors(void)
{
    g_autoptr(GPtrArray) vectors = vectors_load("valid");
    guint seen_types = 0;

    for (guint i = 0; i < vectors->len; i++) {
        const Vector *v = vectors->pdata[i];
        BlMessage msg;

        g_test_message("valid/%s", v->name);
        {
            /* An exact-size copy without NUL: the decoder must not read past len. */
            g_autofree char *exact = g_memdup2(v->line, v->len);

            assert_decodes(exact, v->len, &msg);
        }
        g_assert_cmpuint(msg.v, ==, BL_PROTO_MAJOR);
        /* The file name starts with the type it holds. */
        g_assert_true(g_str_has_prefix(v->name, bl_proto_type_name(msg.type)));
        seen_types |= 1u << msg.type;
        assert_round_trip(&msg);
    }
    g_assert_cmpuint(vectors->len, >=, 12);
    g_assert_cmpuint(seen_types, ==, (1u << (BL_MSG_GOODBYE + 1)) - 1); /* every type */
}

static void test_invalid_vectors(void)
{
    g_autoptr(GPtrArray) vectors = vectors_load("invalid");
    guint per_code[BL_PROTO_ERROR_TOO_LONG + 1] = {0};

    for (guint i = 0; i < vectors->len; i++) {
        const Vector *v = vectors->pdata[i];
        g_autoptr(GError) error = NULL;
        BlMessage msg;

        g_autofree char *exact = g_memdup2(v->line, v->len);

        g_test_message("invalid/%s", v->name);
        if (v->expected < 0)
            g_error("invalid/%s: the name has no known error prefix", v->name);
        if (bl_proto_decode(exact, v->len, &msg, &error))
            g_error("invalid/%s decoded", v->name);
        if (!g_error_matches(error, BL_PROTO_ERROR, v->expected))
            g_error("invalid/%s: expected code %d, got %d: %s", v->name, v->expected, error->code,
                    error->message);
        g_assert_cmpstr(error->message, !=, "");
        per_code[v->expected]++;
    }
    g_assert_cmpuint(vectors->len, >=, 30);
    /* too-long is generated (see vectors/README.md), every other class has files. */
    for (int code = BL_PROTO_ERROR_JSON; code < BL_PROTO_ERROR_TOO_LONG; code++)
        g_assert_cmpuint(per_code[code], >, 0);
}

static void test_line_limit(void)
{
    const gsize max = BL_PROTO_MAX_LINE - 1; /* content bytes, without '\n' */
    g_autofree char *at_limit = vectors_padded_report(max);
    g_autofree char *over = vectors_padded_report(max + 1);
    g_autoptr(GError) error = NULL;
    BlMessage msg;

    assert_decodes(at_limit, max, &msg);
    g_assert_cmpuint(msg.u.report.mem.total_kib, ==, 4);
    g_assert_false(bl_proto_decode(over, max + 1, &msg, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_TOO_LONG);
}

/* vectors/gen-too-long.sh writes vectors that fail as too-long. */
static void test_generated_too_long(void)
{
    g_autofree char *script =
        g_build_filename(g_getenv("BALLAST_VECTORS"), "gen-too-long.sh", NULL);
    g_autofree char *dir = g_dir_make_tmp("ballast-too-long-XXXXXX", NULL);
    const char *argv[] = {"/bin/sh", script, dir, NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) d = NULL;
    const char *name;
    int status = -1;
    guint n = 0;

    g_assert_nonnull(dir);
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                 &error);
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    d = g_dir_open(dir, 0, &error);
    g_assert_no_error(error);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *text = NULL;
        g_autoptr(GError) derr = NULL;
        gsize len = 0;
        BlMessage msg;

        g_assert_true(g_file_get_contents(path, &text, &len, NULL));
        g_assert_cmpint(vectors_expected_error(name), ==, BL_PROTO_ERROR_TOO_LONG);
        g_assert_cmpint(text[len - 1], ==, '\n');
        g_assert_false(bl_proto_decode(text, len - 1, &msg, &derr));
        g_assert_error(derr, BL_PROTO_ERROR, BL_PROTO_ERROR_TOO_LONG);
        /* One byte shorter it is a valid report: the limit is what rejects it. */
        if (len - 1 == BL_PROTO_MAX_LINE) {
            g_autofree char *shorter = g_strdup_printf("%.*s\"}", (int)(len - 4), text);

            assert_decodes(shorter, len - 2, &msg);
        }
        g_unlink(path);
        n++;
    }
    g_assert_cmpuint(n, ==, 2);
    g_rmdir(dir);
}

static void test_version_skew(void)
{
    static const char v2[] = "{\"type\":\"report\",\"v\":2,\"whatever\":[1,2,3]}";
    static const char v1_minor7[] =
        "{\"type\":\"welcome\",\"v\":1,\"broker\":\"ballastd\",\"broker_version\":\"9.0\","
        "\"minor\":7,\"interval_ms\":500,\"new_thing\":{\"deep\":[{\"x\":1}]},"
        "\"psi_trigger\":{\"kind\":\"full\",\"stall_us\":100000,\"window_us\":1000000,\"cg\":\"/"
        "\"}}";
    g_autoptr(GError) error = NULL;
    BlMessage msg;

    g_assert_false(bl_proto_decode(v2, strlen(v2), &msg, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_VERSION);
    g_assert_cmpuint(msg.v, ==, 2);

    assert_decodes(v1_minor7, strlen(v1_minor7), &msg);
    g_assert_cmpint(msg.type, ==, BL_MSG_WELCOME);
    g_assert_cmpuint(msg.u.welcome.minor, ==, 7);
    g_assert_cmpuint(msg.u.welcome.interval_ms, ==, 500);
    g_assert_true(msg.u.welcome.has_psi_trigger);
    g_assert_cmpint(msg.u.welcome.psi_trigger.kind, ==, BL_PSI_FULL);
    g_assert_cmpuint(msg.u.welcome.psi_trigger.stall_us, ==, 100000);
}

/* A ping with an unknown array of n items "item": the container and member bounds. */
static gboolean decode_ping_with(const char *item, guint n, GError **error)
{
    g_autoptr(GString) s = g_string_new("{\"type\":\"ping\",\"v\":1,\"id\":7,\"x\":[");
    BlMessage msg;

    for (guint i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", item);
    g_string_append(s, "]}");
    return bl_proto_decode(s->str, s->len, &msg, error);
}

static void test_json_bounds(void)
{
    g_autoptr(GError) error = NULL;

    /* The top-level object and "x" are 2 containers; 3 members before "x". */
    g_assert_true(decode_ping_with("{}", BL_PROTO_MAX_CONTAINERS - 2, NULL));
    g_assert_false(decode_ping_with("{}", BL_PROTO_MAX_CONTAINERS - 1, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON);
    g_clear_error(&error);
    g_assert_true(decode_ping_with("0", BL_PROTO_MAX_MEMBERS - 3, NULL));
    g_assert_false(decode_ping_with("0", BL_PROTO_MAX_MEMBERS - 2, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON);
    g_clear_error(&error);
    /* Brackets and commas inside strings do not count. */
    g_assert_true(decode_ping_with("\"{[,,,]}\"", 1000, NULL));
}

/* The examples in PROTOCOL.md section 8 are valid messages. */
static void test_document_examples(void)
{
    g_autofree char *path =
        g_build_filename(g_getenv("BALLAST_VECTORS"), "..", "PROTOCOL.md", NULL);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    const char *section;
    guint n = 0;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    section = strstr(text, "## 8. Examples");
    g_assert_nonnull(section);
    lines = g_strsplit(section, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        BlMessage msg;

        if (lines[i][0] != '{')
            continue;
        assert_decodes(lines[i], strlen(lines[i]), &msg);
        assert_round_trip(&msg);
        n++;
    }
    g_assert_cmpuint(n, ==, 7); /* one per type */
}

/*
 * Seeded mutations of every valid vector (a small deterministic fuzz that also
 * runs without clang): each result is a clean error or a message that
 * round-trips.
 */
static void test_mutations(void)
{
    g_autoptr(GPtrArray) vectors = vectors_load("valid");
    g_autoptr(GRand) rand = g_rand_new_with_seed(53);
    static const char junk[] = "{}[]\",:\\0-1e.9tfn \xff\xc3\x80";
    guint decoded = 0, failed = 0;

    for (guint i = 0; i < vectors->len; i++) {
        const Vector *v = vectors->pdata[i];

        for (int round = 0; round < 300; round++) {
            g_autoptr(GString) s = g_string_new_len(v->line, (gssize)v->len);
            g_autoptr(GError) error = NULL;
            int edits = g_rand_int_range(rand, 1, 4);
            BlMessage msg;

            for (int e = 0; e < edits && s->len > 0; e++) {
                gsize at = (gsize)g_rand_int_range(rand, 0, (gint32)s->len);
                char c = junk[g_rand_int_range(rand, 0, sizeof junk - 1)];

                switch (g_rand_int_range(rand, 0, 3)) {
                case 0:
                    s->str[at] = c;
                    break;
                case 1:
                    g_string_insert_c(s, (gssize)at, c);
                    break;
                default:
                    g_string_erase(s, (gssize)at, 1);
                    break;
                }
            }
            if (bl_proto_decode(s->str, s->len, &msg, &error)) {
                assert_round_trip(&msg);
                decoded++;
            } else {
                g_assert_true(error->domain == BL_PROTO_ERROR);
                g_assert_cmpint(error->code, <=, BL_PROTO_ERROR_TOO_LONG);
                failed++;
            }
        }
    }
    /* Both outcomes happen, or the mutations were too tame or too wild to test anything. */
    g_test_message("mutations: %u decoded, %u rejected", decoded, failed);
    g_assert_cmpuint(decoded, >, 100);
    g_assert_cmpuint(failed, >, 1000);
}

static void test_empty(void)
{
    g_autoptr(GError) error = NULL;
    BlMessage msg;

    g_assert_false(bl_proto_decode(NULL, 0, &msg, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_JSON);
}

static void test_unknown_type(void)
{
    static const char line[] = "{\"type\":\"telemetry\",\"v\":1,\"x\":1}";
    g_autoptr(GError) error = NULL;
    BlMessage msg;

    g_assert_false(bl_proto_decode(line, strlen(line), &msg, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_UNKNOWN_TYPE);
    g_assert_nonnull(strstr(error->message, "telemetry"));
    g_assert_cmpuint(msg.v, ==, 1);
}

/* Error messages name the field and the reason. */
static void test_error_messages(void)
{
    static const struct {
        const char *line;
        const char *expect;
    } cases[] = {
        {"{\"type\":\"report\",\"v\":1,\"seq\":1,\"uptime_ms\":1,\"reason\":\"periodic\",\"mem\":"
         "{\"total_kib\":800,\"available_kib\":900,\"free_kib\":1,\"cached_kib\":1,"
         "\"swap_total_kib\":0,\"swap_free_kib\":0,\"committed_as_kib\":1},\"vmstat\":{}}",
         "report.mem.available_kib (900) > total_kib (800)"},
        {"{\"type\":\"ping\",\"v\":1}", "ping.id: missing"},
        {"{\"type\":\"ping\",\"v\":1,\"id\":1.5}", "ping.id: expected integer"},
        {"{\"type\":\"ping\",\"v\":\"1\",\"id\":1}", "v: expected integer, got string"},
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        BlMessage msg;

        g_assert_false(bl_proto_decode(cases[i].line, strlen(cases[i].line), &msg, &error));
        g_assert_nonnull(error);
        if (!strstr(error->message, cases[i].expect))
            g_error("\"%s\" does not contain \"%s\"", error->message, cases[i].expect);
    }
}

static void make_valid(BlMessage *m, BlMsgType type)
{
    bl_proto_init(m, type);
    switch (type) {
    case BL_MSG_HELLO:
        strcpy(m->u.hello.agent, "ballast-agent");
        strcpy(m->u.hello.agent_version, "0.1.0");
        strcpy(m->u.hello.boot_id, "5c3b2a9e-7f1d-4e0a-9b8c-2d4e6f8a0b1c");
        strcpy(m->u.hello.kernel, "6.1.0");
        m->u.hello.balloon.present = TRUE;
        m->u.hello.balloon.n_pci = 1;
        strcpy(m->u.hello.balloon.pci[0], "0000:00:05.0");
        m->u.hello.n_features = 1;
        strcpy(m->u.hello.features[0], "psi");
        break;
    case BL_MSG_REPORT:
        m->u.report.seq = 1;
        m->u.report.mem.total_kib = 1000;
        m->u.report.mem.available_kib = 500;
        m->u.report.has_psi = TRUE;
        m->u.report.psi.some.avg10 = 1.5;
        m->u.report.vmstat.present = 1u << BL_VMSTAT_OOM_KILL;
        break;
    case BL_MSG_WELCOME:
        strcpy(m->u.welcome.broker, "ballastd");
        strcpy(m->u.welcome.broker_version, "0.1.0");
        m->u.welcome.has_psi_trigger = TRUE;
        m->u.welcome.psi_trigger.stall_us = 100000;
        m->u.welcome.psi_trigger.window_us = 1000000;
        break;
    case BL_MSG_GOODBYE:
        strcpy(m->u.goodbye.reason, "shutdown");
        break;
    case BL_MSG_PING:
    case BL_MSG_PONG:
    case BL_MSG_REQUEST:
        break;
    }
}

typedef void (*Breaker)(BlMessage *m);

static void b_type(BlMessage *m)
{
    m->type = (BlMsgType)99;
}
static void b_major(BlMessage *m)
{
    m->v = 2;
}
static void b_agent_unterminated(BlMessage *m)
{
    memset(m->u.hello.agent, 'a', sizeof m->u.hello.agent);
}
static void b_agent_empty(BlMessage *m)
{
    m->u.hello.agent[0] = '\0';
}
static void b_agent_control(BlMessage *m)
{
    strcpy(m->u.hello.agent, "a\033[2Jb");
}
static void b_agent_rlo(BlMessage *m)
{
    strcpy(m->u.hello.agent, "ballast \xe2\x80\xaegnp.exe"); /* RIGHT-TO-LEFT OVERRIDE */
}
static void b_version_nel(BlMessage *m)
{
    strcpy(m->u.hello.agent_version, "0.1\xc2\x85"); /* C1 NEXT LINE */
}
static void b_kernel_zwsp(BlMessage *m)
{
    strcpy(m->u.hello.kernel, "6.1\xe2\x80\x8b"); /* ZERO WIDTH SPACE */
}
static void b_broker_bom(BlMessage *m)
{
    strcpy(m->u.welcome.broker, "\xef\xbb\xbf"
                                "ballastd");
}
static void b_reason_ls(BlMessage *m)
{
    strcpy(m->u.goodbye.reason, "shutdown\xe2\x80\xa8ok"); /* LINE SEPARATOR */
}
static void b_agent_bad_utf8(BlMessage *m)
{
    strcpy(m->u.hello.agent, "a\xc3\x28");
}
static void b_kernel_space(BlMessage *m)
{
    strcpy(m->u.hello.kernel, "6.1 x");
}
static void b_pci_count(BlMessage *m)
{
    m->u.hello.balloon.n_pci = BL_PROTO_PCI_MAX + 1;
}
static void b_pci_char(BlMessage *m)
{
    strcpy(m->u.hello.balloon.pci[0], "0000:00:05.0/");
}
static void b_features_count(BlMessage *m)
{
    m->u.hello.n_features = BL_PROTO_FEATURES_MAX + 1;
}
static void b_kconfig(BlMessage *m)
{
    m->u.hello.balloon.kconfig = (BlKconfig)9;
}
static void b_bound_absent(BlMessage *m)
{
    m->u.hello.balloon.present = FALSE;
    m->u.hello.balloon.n_pci = 0;
    m->u.hello.balloon.driver_bound = TRUE;
}
static void b_interval(BlMessage *m)
{
    m->u.hello.interval_ms = 99;
}
static void b_seq(BlMessage *m)
{
    m->u.report.seq = 0;
}
static void b_uptime(BlMessage *m)
{
    m->u.report.uptime_ms = BL_PROTO_MAX_INT + 1;
}
static void b_reason(BlMessage *m)
{
    m->u.report.reason = (BlReportReason)3;
}
static void b_avail(BlMessage *m)
{
    m->u.report.mem.available_kib = 1001;
}
static void b_free(BlMessage *m)
{
    m->u.report.mem.free_kib = 1001;
}
static void b_swap(BlMessage *m)
{
    m->u.report.mem.swap_free_kib = 1;
}
static void b_total0(BlMessage *m)
{
    m->u.report.mem = (BlMem){0};
}
static void b_cached(BlMessage *m)
{
    m->u.report.mem.cached_kib = G_MAXUINT64;
}
static void b_psi_nan(BlMessage *m)
{
    m->u.report.psi.some.avg60 = NAN;
}
static void b_psi_inf(BlMessage *m)
{
    m->u.report.psi.full.avg300 = INFINITY;
}
static void b_psi_high(BlMessage *m)
{
    m->u.report.psi.full.avg10 = 100.5;
}
static void b_psi_neg(BlMessage *m)
{
    m->u.report.psi.some.avg10 = -0.1;
}
static void b_psi_total(BlMessage *m)
{
    m->u.report.psi.some.total_us = BL_PROTO_MAX_INT + 1;
}
static void b_vmstat_bits(BlMessage *m)
{
    m->u.report.vmstat.present |= 1u << BL_VMSTAT_N_COUNTERS;
}
static void b_vmstat_value(BlMessage *m)
{
    m->u.report.vmstat.value[BL_VMSTAT_OOM_KILL] = BL_PROTO_MAX_INT + 1;
}
static void b_broker_empty(BlMessage *m)
{
    m->u.welcome.broker[0] = '\0';
}
static void b_w_interval(BlMessage *m)
{
    m->u.welcome.interval_ms = 60001;
}
static void b_kind(BlMessage *m)
{
    m->u.welcome.psi_trigger.kind = (BlPsiKind)2;
}
static void b_window(BlMessage *m)
{
    m->u.welcome.psi_trigger.window_us = 400000;
    m->u.welcome.psi_trigger.stall_us = 1;
}
static void b_stall0(BlMessage *m)
{
    m->u.welcome.psi_trigger.stall_us = 0;
}
static void b_stall_big(BlMessage *m)
{
    m->u.welcome.psi_trigger.stall_us = 1000001;
}
static void b_ping_id(BlMessage *m)
{
    m->u.ping.id = BL_PROTO_MAX_INT + 1;
}
static void b_reason_empty(BlMessage *m)
{
    m->u.goodbye.reason[0] = '\0';
}

static void test_encoder_refuses(void)
{
    static const struct {
        BlMsgType type;
        Breaker breaker;
    } cases[] = {
        {BL_MSG_PING, b_type},
        {BL_MSG_PING, b_major},
        {BL_MSG_HELLO, b_agent_unterminated},
        {BL_MSG_HELLO, b_agent_empty},
        {BL_MSG_HELLO, b_agent_control},
        {BL_MSG_HELLO, b_agent_bad_utf8},
        {BL_MSG_HELLO, b_agent_rlo},
        {BL_MSG_HELLO, b_version_nel},
        {BL_MSG_HELLO, b_kernel_zwsp},
        {BL_MSG_WELCOME, b_broker_bom},
        {BL_MSG_GOODBYE, b_reason_ls},
        {BL_MSG_HELLO, b_kernel_space},
        {BL_MSG_HELLO, b_pci_count},
        {BL_MSG_HELLO, b_pci_char},
        {BL_MSG_HELLO, b_features_count},
        {BL_MSG_HELLO, b_kconfig},
        {BL_MSG_HELLO, b_bound_absent},
        {BL_MSG_HELLO, b_interval},
        {BL_MSG_REPORT, b_seq},
        {BL_MSG_REPORT, b_uptime},
        {BL_MSG_REPORT, b_reason},
        {BL_MSG_REPORT, b_avail},
        {BL_MSG_REPORT, b_free},
        {BL_MSG_REPORT, b_swap},
        {BL_MSG_REPORT, b_total0},
        {BL_MSG_REPORT, b_cached},
        {BL_MSG_REPORT, b_psi_nan},
        {BL_MSG_REPORT, b_psi_inf},
        {BL_MSG_REPORT, b_psi_high},
        {BL_MSG_REPORT, b_psi_neg},
        {BL_MSG_REPORT, b_psi_total},
        {BL_MSG_REPORT, b_vmstat_bits},
        {BL_MSG_REPORT, b_vmstat_value},
        {BL_MSG_WELCOME, b_broker_empty},
        {BL_MSG_WELCOME, b_w_interval},
        {BL_MSG_WELCOME, b_kind},
        {BL_MSG_WELCOME, b_window},
        {BL_MSG_WELCOME, b_stall0},
        {BL_MSG_WELCOME, b_stall_big},
        {BL_MSG_PONG, b_ping_id},
        {BL_MSG_GOODBYE, b_reason_empty},
    };
    g_autoptr(GString) out = g_string_new("prefix");

    for (BlMsgType t = BL_MSG_HELLO; t <= BL_MSG_GOODBYE; t++) {
        BlMessage m;

        make_valid(&m, t);
        assert_round_trip(&m); /* the unbroken base is fine */
    }
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        BlMessage m;

        make_valid(&m, cases[i].type);
        cases[i].breaker(&m);
        if (bl_proto_encode(&m, out, &error))
            g_error("case %u: encoded an invalid %s", i, bl_proto_type_name(cases[i].type));
        g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_RANGE);
        g_assert_cmpstr(out->str, ==, "prefix"); /* untouched */
    }
}

/* A line carrying code point c, JSON-escaped, in hello.agent (a free-text field). */
static char *hello_with_agent_char(gunichar c)
{
    g_autofree char *esc = NULL;
    gunichar2 *u16 = g_ucs4_to_utf16(&c, 1, NULL, NULL, NULL);

    esc = u16[1] ? g_strdup_printf("\\u%04x\\u%04x", u16[0], u16[1])
                 : g_strdup_printf("\\u%04x", u16[0]);
    g_free(u16);
    return g_strdup_printf("{\"type\":\"hello\",\"v\":1,\"agent\":\"a%sb\",\"agent_version\":\"1\","
                           "\"minor\":0,\"boot_id\":\"b\",\"kernel\":\"k\",\"interval_ms\":1000,"
                           "\"balloon\":{\"present\":false,\"driver_bound\":false,\"pci\":[],"
                           "\"kconfig\":\"n\"},\"features\":[]}",
                           esc);
}

/*
 * Free text must be safe to show to a person: every code point of category Cc, Cf, Zl, Zp, Co
 * and every noncharacter is refused by both the decoder and the encoder, naming it as U+XXXX;
 * other non-ASCII text (letters of any script, RTL letters, symbols, spaces) passes.
 */
static void test_unsafe_code_points(void)
{
    static const gunichar unsafe[] = {
        0x01,    0x1f,    0x7f,    0x80,    0x85,    0x9f,     0xad,     0x061c, 0x180e,
        0x200b,  0x200e,  0x200f,  0x202a,  0x202e,  0x2028,   0x2029,   0x2060, 0x2066,
        0x2069,  0xfeff,  0xfff9,  0xe000,  0xf8ff,  0xfdd0,   0xfdef,   0xfffe, 0xffff,
        0x1fffe, 0x1ffff, 0xe0001, 0xe007f, 0xf0000, 0x10fffd, 0x10ffff,
    };
    static const gunichar safe[] = {
        0x20,   0x7e,   0xa0,   0xe9,   0x3b2,  0x5d0,   0x627,  0x2014,
        0x3000, 0x5185, 0xfdcf, 0xfdf0, 0xfffd, 0x1f388, 0x20ac,
    };

    for (guint i = 0; i < G_N_ELEMENTS(unsafe); i++) {
        g_autofree char *line = hello_with_agent_char(unsafe[i]);
        g_autofree char *want = g_strdup_printf("U+%04X", unsafe[i]);
        g_autoptr(GError) error = NULL;
        g_autoptr(GString) out = g_string_new(NULL);
        BlMessage m;
        char utf8[8] = {0};

        if (bl_proto_decode(line, strlen(line), &m, &error))
            g_error("decoded U+%04X in hello.agent", unsafe[i]);
        g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_RANGE);
        if (!strstr(error->message, "hello.agent") || !strstr(error->message, want))
            g_error("\"%s\" does not name hello.agent and %s", error->message, want);
        g_clear_error(&error);

        make_valid(&m, BL_MSG_GOODBYE);
        g_unichar_to_utf8(unsafe[i], utf8);
        g_snprintf(m.u.goodbye.reason, sizeof m.u.goodbye.reason, "x%sy", utf8);
        g_assert_false(bl_proto_encode(&m, out, &error));
        g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_RANGE);
        g_assert_nonnull(strstr(error->message, want));
        g_assert_cmpuint(out->len, ==, 0);
    }
    for (guint i = 0; i < G_N_ELEMENTS(safe); i++) {
        g_autofree char *line = hello_with_agent_char(safe[i]);
        g_autoptr(GError) error = NULL;
        BlMessage m;
        char utf8[8] = {0};

        if (!bl_proto_decode(line, strlen(line), &m, &error))
            g_error("U+%04X refused: %s", safe[i], error->message);
        g_unichar_to_utf8(safe[i], utf8);
        g_assert_true(g_str_has_prefix(m.u.hello.agent, "a"));
        g_assert_cmpstr(m.u.hello.agent + 1, ==, strcat(utf8, "b"));
        assert_round_trip(&m);
    }
}

/* A token names a non-ASCII character by its code point too. */
static void test_token_code_point(void)
{
    g_autoptr(GError) error = NULL;
    BlMessage m;

    make_valid(&m, BL_MSG_HELLO);
    strcpy(m.u.hello.kernel, "6.1\xe2\x80\x8b-x");
    g_assert_false(bl_proto_validate(&m, &error));
    g_assert_error(error, BL_PROTO_ERROR, BL_PROTO_ERROR_RANGE);
    g_assert_nonnull(strstr(error->message, "hello.kernel contains U+200B at offset 3"));
    g_clear_error(&error);
    strcpy(m.u.hello.kernel, "6.1\xe2\x80");
    g_assert_false(bl_proto_validate(&m, &error));
    g_assert_nonnull(strstr(error->message, "hello.kernel: byte 0xe2 at offset 3"));
}

static void test_names(void)
{
    g_assert_cmpstr(bl_proto_type_name(BL_MSG_WELCOME), ==, "welcome");
    g_assert_cmpstr(bl_proto_kconfig_name(BL_KCONFIG_M), ==, "m");
    g_assert_cmpstr(bl_proto_reason_name(BL_REPORT_REQUEST), ==, "request");
    g_assert_cmpstr(bl_proto_vmstat_name(BL_VMSTAT_WORKINGSET_REFAULT_ANON), ==,
                    "workingset_refault_anon");
    g_assert_cmpstr(bl_proto_error_name(BL_PROTO_ERROR_UNKNOWN_TYPE), ==, "unknown-type");
    g_assert_cmpstr(bl_proto_error_name(BL_PROTO_ERROR_JSON), ==, "json");
    g_assert_cmpint(vectors_expected_error("too-long-x.json"), ==, BL_PROTO_ERROR_TOO_LONG);
    g_assert_cmpint(vectors_expected_error("schema-x.json"), ==, BL_PROTO_ERROR_SCHEMA);
    g_assert_cmpint(vectors_expected_error("unknown-x.json"), ==, -1);
    g_assert_null(bl_proto_error_name((BlProtoError)17));
    g_assert_null(bl_proto_type_name((BlMsgType)42));
    g_assert_null(bl_proto_vmstat_name(BL_VMSTAT_N_COUNTERS));
}

/* Floats come back exactly, and are written short. */
static void test_float_text(void)
{
    static const double values[] = {0, 0.01, 12.34, 99.99, 100, 1e-300, 33.333333333333336};
    BlMessage m, back;

    make_valid(&m, BL_MSG_REPORT);
    for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
        g_autoptr(GString) out = g_string_new(NULL);

        m.u.report.psi.full.avg60 = values[i];
        g_assert_true(bl_proto_encode(&m, out, NULL));
        assert_decodes(out->str, out->len - 1, &back);
        g_assert_true(back.u.report.psi.full.avg60 == values[i]);
    }
    {
        g_autoptr(GString) out = g_string_new(NULL);

        m.u.report.psi.full.avg60 = 12.34;
        g_assert_true(bl_proto_encode(&m, out, NULL));
        g_assert_nonnull(strstr(out->str, "\"avg60\":12.34,"));
    }
}

/* A goodbye is recognised whatever its major, and only a well-formed one. */
static void test_line_is_goodbye(void)
{
    const char *no[] = {
        "{\"type\":\"Goodbye\",\"v\":2}",
        "{\"type\":[\"goodbye\"],\"v\":2}",
        "{\"v\":2,\"kind\":\"goodbye\"}",
        "[{\"type\":\"goodbye\"}]",
        "{\"type\":\"goodbye\",\"v\":2",                  /* truncated */
        "{\"type\":\"goodbye\",\"v\":2} x",               /* trailing garbage */
        "{'type':'goodbye','v':2}",                       /* not strict JSON */
        "{\"type\":\"goodbye\\u0000\",\"v\":2}",          /* escaped NUL */
        "{\"type\":\"goodbye\",\"x\":[[[[[[[[1]]]]]]]]}", /* too deep */
        "",
    };
    g_autoptr(GPtrArray) valid = vectors_load("valid");
    g_autoptr(GPtrArray) invalid = vectors_load("invalid");
    g_autofree char *big = vectors_padded_report(BL_PROTO_MAX_LINE);
    guint n_yes = 0;

    for (guint k = 0; k < 2; k++) {
        GPtrArray *vectors = k ? invalid : valid;

        for (guint i = 0; i < vectors->len; i++) {
            const Vector *v = vectors->pdata[i];
            gboolean want = strstr(v->name, "goodbye") != NULL;

            if (bl_proto_line_is_goodbye(v->line, v->len) != want)
                g_error("%s: line_is_goodbye should be %d", v->name, want);
            n_yes += want;
        }
    }
    g_assert_cmpuint(n_yes, >=, 3); /* version-v2-goodbye among them */
    for (gsize i = 0; i < G_N_ELEMENTS(no); i++)
        g_assert_false(bl_proto_line_is_goodbye(no[i], strlen(no[i])));
    g_assert_false(bl_proto_line_is_goodbye(NULL, 0));
    g_assert_false(bl_proto_line_is_goodbye(big, strlen(big)));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/protocol/vectors/valid", test_valid_vectors);
    g_test_add_func("/protocol/vectors/invalid", test_invalid_vectors);
    g_test_add_func("/protocol/line-limit", test_line_limit);
    g_test_add_func("/protocol/generated-too-long", test_generated_too_long);
    g_test_add_func("/protocol/version-skew", test_version_skew);
    g_test_add_func("/protocol/unknown-type", test_unknown_type);
    g_test_add_func("/protocol/empty", test_empty);
    g_test_add_func("/protocol/mutations", test_mutations);
    g_test_add_func("/protocol/document-examples", test_document_examples);
    g_test_add_func("/protocol/json-bounds", test_json_bounds);
    g_test_add_func("/protocol/error-messages", test_error_messages);
    g_test_add_func("/protocol/encoder-refuses", test_encoder_refuses);
    g_test_add_func("/protocol/unsafe-code-points", test_unsafe_code_points);
    g_test_add_func("/protocol/token-code-point", test_token_code_point);
    g_test_add_func("/protocol/names", test_names);
    g_test_add_func("/protocol/float-text", test_float_text);
    g_test_add_func("/protocol/line-is-goodbye", test_line_is_goodbye);
    return g_test_run();
}
