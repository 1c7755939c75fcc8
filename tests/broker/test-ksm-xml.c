/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure helpers of live and persistent exclusion: <nosharepages/> added to and
 * removed from domain XML of various shapes, and QMP qom-list replies parsed
 * into memory backend paths.
 */
#include <glib.h>
#include <string.h>

#include "ksm-qom.h"
#include "ksm-xml.h"

/* A libvirt 9.0-shaped inactive definition with namespaces and metadata. */
#define HEAD                                                                                       \
    "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"               \
    "  <name>vm1</name>\n"                                                                         \
    "  <uuid>6c3c9a3e-4d1b-4c1e-9a57-0c7b5d3a1f00</uuid>\n"                                        \
    "  <metadata>\n"                                                                               \
    "    <ballast:vm xmlns:ballast=\"https://ballast.example/xmlns/1\" ksm=\"never\" "             \
    "note='a&lt;b &gt; c'>\n"                                                                      \
    "      <memoryBacking><nosharepages/></memoryBacking>\n"                                       \
    "    </ballast:vm>\n"                                                                          \
    "  </metadata>\n"                                                                              \
    "  <memory unit='KiB'>1048576</memory>\n"                                                      \
    "  <currentMemory unit='KiB'>524288</currentMemory>\n"
#define TAIL                                                                                       \
    "  <vcpu placement='static'>1</vcpu>\n"                                                        \
    "  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n  </os>\n"                   \
    "  <!-- a comment with <memoryBacking/> in it -->\n"                                           \
    "  <qemu:commandline>\n    <qemu:arg value='-name'/>\n  </qemu:commandline>\n"                 \
    "</domain>\n"

#define NSP_BLOCK "  <memoryBacking>\n    <nosharepages/>\n  </memoryBacking>\n"

typedef struct {
    const char *name;
    const char *in;
    gboolean on;
    const char *out; /* NULL: unchanged */
} XmlCase;

static const XmlCase xml_cases[] = {
    {"add: no memoryBacking, after currentMemory", HEAD TAIL, TRUE, HEAD NSP_BLOCK TAIL},
    {"add: already there", HEAD NSP_BLOCK TAIL, TRUE, NULL},
    {"add: self-closing memoryBacking", HEAD "  <memoryBacking/>\n" TAIL, TRUE,
     HEAD NSP_BLOCK TAIL},
    {"add: self-closing with a space", HEAD "  <memoryBacking />\n" TAIL, TRUE,
     HEAD NSP_BLOCK TAIL},
    {"add: empty memoryBacking", HEAD "  <memoryBacking>\n  </memoryBacking>\n" TAIL, TRUE,
     HEAD NSP_BLOCK TAIL},
    {"add: into memoryBacking with hugepages",
     HEAD "  <memoryBacking>\n    <hugepages/>\n    <locked/>\n  </memoryBacking>\n" TAIL, TRUE,
     HEAD "  <memoryBacking>\n    <nosharepages/>\n    <hugepages/>\n    <locked/>\n"
          "  </memoryBacking>\n" TAIL},
    {"add: memoryBacking before memory (order kept)",
     "<domain type='kvm'>\n  <name>a</name>\n  <memoryBacking>\n    <source type='memfd'/>\n"
     "  </memoryBacking>\n  <memory>1</memory>\n</domain>\n",
     TRUE,
     "<domain type='kvm'>\n  <name>a</name>\n  <memoryBacking>\n    <nosharepages/>\n"
     "    <source type='memfd'/>\n  </memoryBacking>\n  <memory>1</memory>\n</domain>\n"},
    {"add: no memory element, before </domain>", "<domain>\n  <name>a</name>\n</domain>\n", TRUE,
     "<domain>\n  <name>a</name>\n" NSP_BLOCK "</domain>\n"},
    {"add: one-line document", "<domain><name>a</name><memory>1</memory></domain>", TRUE,
     "<domain><name>a</name><memory>1</memory><memoryBacking><nosharepages/></memoryBacking>"
     "</domain>"},
    {"add: xml declaration and tab indent",
     "<?xml version='1.0'?>\n<domain>\n\t<memory>1</memory>\n</domain>", TRUE,
     "<?xml version='1.0'?>\n<domain>\n\t<memory>1</memory>\n\t<memoryBacking>\n\t  "
     "<nosharepages/>\n\t</memoryBacking>\n</domain>"},
    {"add: attribute values holding < and >",
     "<domain a='<memoryBacking>' b=\"x>y\">\n  <memory unit='K>'>1</memory>\n</domain>", TRUE,
     "<domain a='<memoryBacking>' b=\"x>y\">\n  <memory unit='K>'>1</memory>\n" NSP_BLOCK
     "</domain>"},
    {"remove: only child, block goes", HEAD NSP_BLOCK TAIL, FALSE, HEAD TAIL},
    {"remove: other children stay",
     HEAD "  <memoryBacking>\n    <hugepages/>\n    <nosharepages/>\n  </memoryBacking>\n" TAIL,
     FALSE, HEAD "  <memoryBacking>\n    <hugepages/>\n  </memoryBacking>\n" TAIL},
    {"remove: duplicates",
     HEAD "  <memoryBacking>\n    <nosharepages/>\n    <nosharepages/>\n"
          "    <locked/>\n  </memoryBacking>\n" TAIL,
     FALSE, HEAD "  <memoryBacking>\n    <locked/>\n  </memoryBacking>\n" TAIL},
    {"remove: a comment inside keeps memoryBacking",
     "<domain>\n  <memoryBacking>\n    <!-- keep -->\n    <nosharepages/>\n  </memoryBacking>\n"
     "</domain>",
     FALSE, "<domain>\n  <memoryBacking>\n    <!-- keep -->\n  </memoryBacking>\n</domain>"},
    {"remove: inline", "<domain><memoryBacking><nosharepages/><locked/></memoryBacking></domain>",
     FALSE, "<domain><memoryBacking><locked/></memoryBacking></domain>"},
    {"remove: non-empty element form",
     "<domain>\n  <memoryBacking>\n    <nosharepages></nosharepages>\n  </memoryBacking>\n"
     "</domain>",
     FALSE, "<domain>\n</domain>"},
    {"remove: nothing there (only in metadata and a comment)", HEAD TAIL, FALSE, NULL},
    {"remove: nothing, self-closing memoryBacking", HEAD "  <memoryBacking/>\n" TAIL, FALSE, NULL},
};

static void test_xml_table(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(xml_cases); i++) {
        const XmlCase *c = &xml_cases[i];
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        gboolean changed = TRUE, has = !c->on;

        g_test_message("xml case %zu: %s", i, c->name);
        g_assert_true(ksm_xml_set_nosharepages(c->in, c->on, &out, &changed, &error));
        g_assert_no_error(error);
        g_assert_cmpint(changed, ==, c->out != NULL);
        g_assert_cmpstr(out, ==, c->out ? c->out : c->in);
        g_assert_true(ksm_xml_has_nosharepages(out, &has, &error));
        g_assert_cmpint(has, ==, c->on);
    }
}

/* add then remove gives the original back */
static void test_xml_round_trip(void)
{
    static const char *const docs[] = {
        HEAD TAIL,
        HEAD "  <memoryBacking>\n    <hugepages/>\n  </memoryBacking>\n" TAIL,
        "<domain><name>a</name></domain>",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(docs); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *on = NULL;
        g_autofree char *off = NULL;
        gboolean changed;

        g_assert_true(ksm_xml_set_nosharepages(docs[i], TRUE, &on, &changed, &error));
        g_assert_true(changed);
        g_assert_true(ksm_xml_set_nosharepages(on, FALSE, &off, &changed, &error));
        g_assert_true(changed);
        g_assert_cmpstr(off, ==, docs[i]);
    }
}

static void test_xml_bad(void)
{
    static const char *const bad[] = {
        "",
        "not xml",
        "<domain>",
        "<domain></domian>",
        "<vm><memory>1</memory></vm>",
        "<domain/><domain/>",
        "<domain><memoryBacking/><memoryBacking/></domain>",
        "<domain>&bogus;</domain>",
        "<domain a='1' a='2'/>",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        for (int on = 0; on < 2; on++) {
            g_autoptr(GError) error = NULL;
            char *out = (char *)"untouched";
            gboolean changed = FALSE;

            g_test_message("bad xml %zu", i);
            g_assert_false(ksm_xml_set_nosharepages(bad[i], on, &out, &changed, &error));
            g_assert_nonnull(error);
            g_assert_cmpstr(out, ==, "untouched");
        }
    }
}

/* Mangled documents: either an error, or a well-formed result that says
 * what was asked (run under ASan for the memory side). */
static void test_xml_mutations(void)
{
    static const char *const seeds[] = {
        HEAD TAIL,
        HEAD NSP_BLOCK TAIL,
        HEAD "  <memoryBacking>\n    <hugepages/>\n    <nosharepages/>\n  </memoryBacking>\n" TAIL,
    };
    static const char alphabet[] = "<>/='\"&; \nmemoryBackingnosharepages!-?[]";
    guint ok = 0;

    for (guint i = 0; i < 3000; i++) {
        g_autofree char *doc = g_strdup(seeds[i % G_N_ELEMENTS(seeds)]);
        gsize len = strlen(doc);
        guint edits = 1 + g_test_rand_int_range(0, 4);
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        gboolean on = g_test_rand_bit(), changed, has;

        for (guint k = 0; k < edits; k++)
            doc[g_test_rand_int_range(0, (gint32)len)] =
                alphabet[g_test_rand_int_range(0, sizeof(alphabet) - 1)];
        if (!ksm_xml_set_nosharepages(doc, on, &out, &changed, &error)) {
            g_assert_nonnull(error);
            continue;
        }
        ok++;
        g_assert_true(ksm_xml_has_nosharepages(out, &has, &error));
        g_assert_cmpint(has, ==, on);
        if (!changed)
            g_assert_cmpstr(out, ==, doc);
    }
    g_test_message("%u of 3000 mangled documents were still valid", ok);
    g_assert_cmpuint(ok, >, 0);
}

static void test_qom_commands(void)
{
    g_autofree char *list = ksm_qom_list_command();
    g_autofree char *off = ksm_qom_set_merge_command("/objects/pc.ram", FALSE);
    g_autofree char *on = ksm_qom_set_merge_command("/objects/ram\"node0", TRUE);

    g_assert_cmpstr(list, ==, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/objects\"}}");
    g_assert_cmpstr(off, ==,
                    "{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/objects/pc.ram\","
                    "\"property\":\"merge\",\"value\":false}}");
    /* json-c escapes: a name cannot break out of the string */
    g_assert_nonnull(strstr(on, "ram\\\"node0"));
    g_assert_nonnull(strstr(on, "\"value\":true"));
}

static void assert_backends(const char *reply, const char *const *want)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) paths = NULL;

    g_assert_true(ksm_qom_parse_backends(reply, &paths, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(paths->len, ==, g_strv_length((char **)want));
    for (guint i = 0; i < paths->len; i++)
        g_assert_cmpstr(paths->pdata[i], ==, want[i]);
}

static void test_qom_backends(void)
{
    /* libvirt 9.0 + QEMU 7.2, one pc.ram (as measured on this host) */
    static const char single[] =
        "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, {\"name\": \"pc.ram\", "
        "\"type\": \"child<memory-backend-ram>\"}, {\"name\": \"masterKey0\", \"type\": "
        "\"child<secret>\"}, {\"name\": \"throttle\", \"type\": \"child<throttle-group>\"}], "
        "\"id\": \"libvirt-412\"}";
    static const char *const single_want[] = {"/objects/pc.ram", NULL};
    /* a NUMA guest: one backend per node, file and memfd kinds too */
    static const char numa[] =
        "{\"return\":[{\"name\":\"ram-node0\",\"type\":\"child<memory-backend-ram>\"},"
        "{\"name\":\"ram-node1\",\"type\":\"child<memory-backend-file>\"},"
        "{\"name\":\"memdimm0\",\"type\":\"child<memory-backend-memfd>\"},"
        "{\"name\":\"iothread1\",\"type\":\"child<iothread>\"}]}\n";
    static const char *const numa_want[] = {"/objects/ram-node0", "/objects/ram-node1",
                                            "/objects/memdimm0", NULL};

    assert_backends(single, single_want);
    assert_backends(numa, numa_want);
    /* odd entries are skipped, not fatal */
    assert_backends("{\"return\":[7,{\"name\":1,\"type\":\"child<memory-backend-ram>\"},"
                    "{\"name\":\"pc.ram\",\"type\":\"child<memory-backend-ram>\"}]}",
                    single_want);
}

static void test_qom_backends_bad(void)
{
    static const struct {
        const char *reply, *msg;
    } cases[] = {
        {"{\"return\":[{\"name\":\"masterKey0\",\"type\":\"child<secret>\"}]}",
         "no memory backend"},
        {"{\"return\":[]}", "no memory backend"},
        {"{\"error\":{\"class\":\"DeviceNotFound\",\"desc\":\"Device '/objects' not found\"}}",
         "DeviceNotFound"},
        {"{\"return\":{}}", "not an array"},
        {"{\"id\":\"x\"}", "neither"},
        {"[1,2]", "not a JSON object"},
        {"{\"return\":[] } trailing", "not a JSON object"},
        {"{\"return\":[", "not a JSON object"},
        {"", "empty"},
        {"{\"return\":[{\"name\":\"a/b\",\"type\":\"child<memory-backend-ram>\"}]}",
         "bad memory backend name"},
        {"{\"return\":[{\"name\":\"\",\"type\":\"child<memory-backend-ram>\"}]}",
         "bad memory backend name"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        GPtrArray *paths = NULL;

        g_assert_false(ksm_qom_parse_backends(cases[i].reply, &paths, &error));
        g_assert_null(paths);
        g_assert_error(error, KSM_QOM_ERROR, 0);
        if (!strstr(error->message, cases[i].msg))
            g_error("case %zu: \"%s\" lacks \"%s\"", i, error->message, cases[i].msg);
    }

    /* too many backends */
    {
        g_autoptr(GString) s = g_string_new("{\"return\":[");
        g_autoptr(GError) error = NULL;
        GPtrArray *paths = NULL;

        for (int i = 0; i <= KSM_QOM_MAX_BACKENDS; i++)
            g_string_append_printf(s, "%s{\"name\":\"n%d\",\"type\":\"child<memory-backend-ram>\"}",
                                   i ? "," : "", i);
        g_string_append(s, "]}");
        g_assert_false(ksm_qom_parse_backends(s->str, &paths, &error));
        g_assert_nonnull(strstr(error->message, "too many"));
    }
}

static void test_qom_check_reply(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(ksm_qom_check_reply("{\"return\": {}, \"id\": \"libvirt-20\"}", &error));
    g_assert_no_error(error);
    g_assert_false(ksm_qom_check_reply(
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Property 'merge' not found\"}}",
        &error));
    g_assert_nonnull(strstr(error->message, "Property 'merge' not found"));
    g_clear_error(&error);
    g_assert_false(ksm_qom_check_reply("garbage", &error));
    g_clear_error(&error);
    g_assert_false(ksm_qom_check_reply(NULL, &error));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ksm/xml/table", test_xml_table);
    g_test_add_func("/ksm/xml/round-trip", test_xml_round_trip);
    g_test_add_func("/ksm/xml/bad", test_xml_bad);
    g_test_add_func("/ksm/xml/mutations", test_xml_mutations);
    g_test_add_func("/ksm/qom/commands", test_qom_commands);
    g_test_add_func("/ksm/qom/backends", test_qom_backends);
    g_test_add_func("/ksm/qom/backends-bad", test_qom_backends_bad);
    g_test_add_func("/ksm/qom/check-reply", test_qom_check_reply);
    return g_test_run();
}
