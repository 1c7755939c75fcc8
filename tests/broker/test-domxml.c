/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Domain XML and ballast metadata: pure parsing over strings, hostile values included. */
#include <string.h>

#include "domxml.h"

#define NS "https://ballast.dev/xmlns/policy/1"

static const char *domain_xml =
    "<domain type='qemu' id='3'>\n"
    "  <name>vm1</name>\n"
    "  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
    "  <metadata>\n"
    "    <other:thing xmlns:other='https://example.com/x'><policy min='9GiB'/></other:thing>\n"
    "    <ballast:policy xmlns:ballast='" NS "' min='1GiB' shares='2000' ksm='never'"
    " mode='observe' latency-sensitive='yes' future='ignored'/>\n"
    "  </metadata>\n"
    "  <memory unit='KiB'>2097152</memory>\n"
    "  <currentMemory unit='KiB'>1048576</currentMemory>\n"
    "  <memtune><min_guarantee unit='MiB'>512</min_guarantee></memtune>\n"
    "  <memoryBacking><nosharepages/></memoryBacking>\n"
    "  <devices>\n"
    "    <channel type='unix'>\n"
    "      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/ga.0'/>\n"
    "      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>\n"
    "    </channel>\n"
    "    <channel type='unix'>\n"
    "      <target type='virtio' name='org.ballast.agent.0' state='disconnected'/>\n"
    "      <alias name='channel1'/>\n"
    "    </channel>\n"
    "  </devices>\n"
    "</domain>\n";

static void test_domain(void)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GString) problems = g_string_new(NULL);
    DomxmlDomain d;

    g_assert_true(domxml_parse_domain(domain_xml, -1, &d, problems, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(problems->str, ==, "");
    g_assert_cmpstr(d.name, ==, "vm1");
    g_assert_cmpstr(d.uuid, ==, "6695eb01-f6a4-8304-79aa-97f2502e193f");
    g_assert_cmpuint(d.memory_kib, ==, 2097152);
    g_assert_cmpuint(d.current_kib, ==, 1048576);
    g_assert_cmpuint(d.min_guarantee_kib, ==, 512 * 1024);
    g_assert_true(d.nosharepages);
    /* qemu-ga's state is not ours. */
    g_assert_cmpint(d.channel, ==, DOMXML_CHANNEL_DISCONNECTED);
    g_assert_true(d.has_policy);
    g_assert_true(d.policy.has_min);
    g_assert_cmpuint(d.policy.min_kib, ==, 1024 * 1024);
    g_assert_true(d.policy.has_shares);
    g_assert_cmpuint(d.policy.shares, ==, 2000);
    g_assert_true(d.policy.has_ksm);
    g_assert_cmpint(d.policy.ksm, ==, POLICY_KSM_NEVER);
    g_assert_true(d.policy.has_mode);
    g_assert_cmpint(d.policy.mode, ==, POLICY_MODE_OBSERVE);
    g_assert_true(d.policy.has_latency_sensitive);
    g_assert_true(d.policy.latency_sensitive);
}

static void test_channel_states(void)
{
    static const struct {
        const char *devices;
        DomxmlChannel want;
    } cases[] = {
        {"", DOMXML_CHANNEL_ABSENT},
        {"<channel type='unix'><target type='virtio' name='org.ballast.agent.0'/></channel>",
         DOMXML_CHANNEL_UNKNOWN},
        {"<channel type='unix'><target type='virtio' name='org.ballast.agent.0' "
         "state='connected'/></channel>",
         DOMXML_CHANNEL_CONNECTED},
        /* Same name, wrong target type; and a target outside a channel. */
        {"<channel type='unix'><target type='guestfwd' name='org.ballast.agent.0' "
         "state='connected'/></channel><console><target type='virtio' "
         "name='org.ballast.agent.0' state='connected'/></console>",
         DOMXML_CHANNEL_ABSENT},
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml = g_strdup_printf("<domain><name>a</name><uuid>u</uuid>"
                                               "<devices>%s</devices></domain>",
                                               cases[i].devices);
        g_autoptr(GError) e = NULL;
        DomxmlDomain d;
        g_assert_true(domxml_parse_domain(xml, -1, &d, NULL, &e));
        g_assert_cmpint(d.channel, ==, cases[i].want);
        g_assert_false(d.has_policy);
        g_assert_cmpuint(d.min_guarantee_kib, ==, 0);
    }
}

static void test_namespace(void)
{
    g_autoptr(GError) e = NULL;
    DomxmlDomain d;

    /* Any prefix bound to our namespace is ours... */
    const char *ok = "<domain><name>a</name><uuid>u</uuid><metadata><b:policy xmlns:b='" NS
                     "' mode='off'/></metadata></domain>";
    g_assert_true(domxml_parse_domain(ok, -1, &d, NULL, &e));
    g_assert_true(d.has_policy);
    g_assert_cmpint(d.policy.mode, ==, POLICY_MODE_OFF);

    /* ... a "ballast:" prefix in another namespace is not, nor one deeper down. */
    const char *other = "<domain><name>a</name><uuid>u</uuid><metadata>"
                        "<ballast:policy xmlns:ballast='https://evil.example/' mode='off'/>"
                        "<x:y xmlns:x='z'><ballast:policy xmlns:ballast='" NS "' mode='off'/>"
                        "</x:y></metadata><ballast:policy xmlns:ballast='" NS "' mode='off'/>"
                        "</domain>";
    g_assert_true(domxml_parse_domain(other, -1, &d, NULL, &e));
    g_assert_false(d.has_policy);
}

static void test_hostile_values(void)
{
    static const char *const bad[] = {
        "min='12XB'",
        "min='-1GiB'",
        "min=''",
        "min='99999999999999999999GiB'",
        "min='2PiB'",
        "shares='0'",
        "shares='1e3'",
        "shares='-5'",
        "shares='100001'",
        "shares='abc'",
        "ksm='sometimes'",
        "ksm='AUTO'",
        "mode='&lt;script&gt;'",
        "mode=''",
        "latency-sensitive='maybe'",
        "mode='\xc3\x28'",
    };

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *xml =
            g_strdup_printf("<ballast:policy xmlns:ballast='" NS "' %s/>", bad[i]);
        g_autoptr(GString) problems = g_string_new(NULL);
        g_autoptr(GError) e = NULL;
        DomxmlPolicy p;
        gboolean ok = domxml_parse_policy(xml, -1, &p, problems, &e);
        if (!ok) {
            /* Only invalid UTF-8 may fail the whole element: GMarkup rejects it. */
            g_assert_nonnull(e);
            continue;
        }
        g_assert_cmpuint(problems->len, >, 0);
        g_assert_false(p.has_min || p.has_shares || p.has_ksm || p.has_mode ||
                       p.has_latency_sensitive);
        /* The message is one printable line. */
        for (const char *c = problems->str; *c; c++)
            g_assert_true(g_ascii_isprint(*c) || (guchar)*c >= 0x80);
    }

    /* Good values around the bad ones still count. */
    g_autoptr(GString) problems = g_string_new(NULL);
    DomxmlPolicy p;
    g_assert_true(domxml_parse_policy("<ballast:policy xmlns:ballast='" NS "' min='bad' "
                                      "shares='1' ksm='always'/>",
                                      -1, &p, problems, NULL));
    g_assert_false(p.has_min);
    g_assert_true(p.has_shares);
    g_assert_cmpuint(p.shares, ==, 1);
    g_assert_cmpint(p.ksm, ==, POLICY_KSM_ALWAYS);
    /* The configuration engine's words, as for a key of ballastd.conf. */
    g_assert_nonnull(strstr(problems->str, "min: invalid value \"bad\""));
}

static void test_broken_xml(void)
{
    static const char *const broken[] = {
        "",
        "<domain>",
        "<domain><name>a</name></domain>", /* no uuid */
        "<notdomain><name>a</name><uuid>u</uuid></notdomain>",
        "<domain><name>a</name><uuid>u</uuid><memory unit='parsec'>1</memory></domain>",
        "<domain><name>a</name><uuid>u</uuid><memory>-5</memory></domain>",
        "<domain><name>a</name><uuid>u</uuid></domain><domain/>",
        "\xff\xfe<domain/>",
    };
    for (guint i = 0; i < G_N_ELEMENTS(broken); i++) {
        g_autoptr(GError) e = NULL;
        DomxmlDomain d;
        g_test_message("case %u", i);
        g_assert_false(domxml_parse_domain(broken[i], -1, &d, NULL, &e));
        g_assert_nonnull(e);
        g_assert_cmpstr(d.name, ==, "");
    }

    /* Deep nesting is refused, not recursed into. */
    g_autoptr(GString) deep = g_string_new("<domain><name>a</name><uuid>u</uuid>");
    for (int i = 0; i < 200; i++)
        g_string_append(deep, "<x>");
    for (int i = 0; i < 200; i++)
        g_string_append(deep, "</x>");
    g_string_append(deep, "</domain>");
    DomxmlDomain d;
    g_autoptr(GError) e = NULL;
    g_assert_false(domxml_parse_domain(deep->str, (gssize)deep->len, &d, NULL, &e));

    /* So is a huge document. */
    gsize n = DOMXML_MAX_BYTES + 1;
    g_autofree char *huge = g_malloc(n);
    memset(huge, ' ', n);
    g_clear_error(&e);
    g_assert_false(domxml_parse_domain(huge, (gssize)n, &d, NULL, &e));
    DomxmlPolicy p;
    g_clear_error(&e);
    g_assert_false(domxml_parse_policy(huge, (gssize)n, &p, NULL, &e));
    g_clear_error(&e);
    g_assert_false(
        domxml_parse_policy("<ballast:other xmlns:ballast='" NS "'/>", -1, &p, NULL, &e));
}

static void test_round_trip(void)
{
    DomxmlPolicy in = {
        .has_min = TRUE,
        .min_kib = 768 * 1024,
        .has_mode = TRUE,
        .mode = POLICY_MODE_OBSERVE,
        .has_latency_sensitive = TRUE,
        .latency_sensitive = FALSE,
    };
    g_autofree char *xml = domxml_format_policy(&in);
    g_autoptr(GString) problems = g_string_new(NULL);
    g_autoptr(GError) e = NULL;
    DomxmlPolicy out;

    g_assert_true(domxml_parse_policy(xml, -1, &out, problems, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(problems->str, ==, "");
    g_assert_cmpmem(&in, sizeof(in), &out, sizeof(out));
}

static void test_scale(void)
{
    guint64 k;

    g_assert_true(domxml_scale_kib("1", "GiB", &k));
    g_assert_cmpuint(k, ==, 1048576);
    g_assert_true(domxml_scale_kib(" 2048 ", NULL, &k));
    g_assert_cmpuint(k, ==, 2048);
    g_assert_true(domxml_scale_kib("1024", "bytes", &k));
    g_assert_cmpuint(k, ==, 1);
    g_assert_true(domxml_scale_kib("1024000", "KB", &k));
    g_assert_cmpuint(k, ==, 1000000);
    g_assert_true(domxml_scale_kib("3", "M", &k));
    g_assert_cmpuint(k, ==, 3072);
    g_assert_false(domxml_scale_kib("1", "parsec", &k));
    g_assert_false(domxml_scale_kib("x", "KiB", &k));
    g_assert_false(domxml_scale_kib("-1", "KiB", &k));
    g_assert_false(domxml_scale_kib("18446744073709551615", "TiB", &k));
    g_assert_false(domxml_scale_kib(NULL, "KiB", &k));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/domxml/domain", test_domain);
    g_test_add_func("/domxml/channel-states", test_channel_states);
    g_test_add_func("/domxml/namespace", test_namespace);
    g_test_add_func("/domxml/hostile-values", test_hostile_values);
    g_test_add_func("/domxml/broken-xml", test_broken_xml);
    g_test_add_func("/domxml/round-trip", test_round_trip);
    g_test_add_func("/domxml/scale", test_scale);
    return g_test_run();
}
