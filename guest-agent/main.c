/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballast-agent: checks the guest's virtio-balloon and streams its memory
 * pressure to the host broker over the virtio-serial port org.ballast.agent.0.
 */
#include <errno.h>
#include <glib.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ballast-config.h"
#include "detect.h"
#include "image.h"
#include "protocol.h"
#include "sampler.h"

static gboolean main_verbose;

/* Terse lines for the journal: "ballast-agent: warning: text". */
static GLogWriterOutput main_log_writer(GLogLevelFlags level, const GLogField *fields,
                                        gsize n_fields, gpointer user_data)
{
    const char *msg = NULL;
    const char *tag;

    if ((level & G_LOG_LEVEL_DEBUG) && !main_verbose)
        return G_LOG_WRITER_HANDLED;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            msg = fields[i].value;
    }
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        tag = "error: ";
    else if (level & G_LOG_LEVEL_WARNING)
        tag = "warning: ";
    else if (level & G_LOG_LEVEL_DEBUG)
        tag = "debug: ";
    else
        tag = "";
    fprintf(stderr, "ballast-agent: %s%s\n", tag, msg ? msg : "");
    return G_LOG_WRITER_HANDLED;
}

static int main_check(const char *root)
{
    g_autoptr(Sampler) sampler = sampler_new(root);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    char kernel[BL_PROTO_KERNEL_MAX];
    BlBalloonFacts facts;

    DetectEnv env = detect_environment(root);

    /* No verdict it cannot back: "add a device" in a chroot, or the build
     * host's "usable", would both mislead an image build. */
    if (env != DETECT_ENV_GUEST) {
        printf("verdict: %s\n", detect_env_describe(env));
        fflush(stdout);
        return 2;
    }
    sampler_read_token(sampler, "proc/sys/kernel/osrelease", kernel, sizeof(kernel));
    if (!detect_balloon(root, &facts, &error)) {
        fprintf(stderr, "ballast-agent: error: %s\n", error->message);
        return 2;
    }
    facts.kconfig = detect_kconfig(root, kernel);
    text = detect_describe(&facts, kernel);
    /* a verdict that was not written must not read as "usable" to a build script */
    if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "ballast-agent: error: cannot write the verdict: %s\n", g_strerror(errno));
        return 2;
    }
    return detect_usable(&facts) ? 0 : 1;
}

static int main_check_image(const char *root)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ImageFacts) facts = image_scan(root, &error);
    g_autofree char *text = NULL;

    if (facts == NULL) {
        fprintf(stderr, "ballast-agent: --check-image: %s\n", error->message);
        return 2;
    }
    text = image_describe(facts, root);
    if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "ballast-agent: error: cannot write the verdict: %s\n", g_strerror(errno));
        return 2;
    }
    return image_ready(facts) ? 0 : 1;
}

static gboolean main_check_image_flag;
static char *main_check_image_root;

/* --check-image[=ROOT]; "--check-image ROOT" arrives as a positional argument. */
static gboolean main_on_check_image(const char *name, const char *value, gpointer data,
                                    GError **error)
{
    main_check_image_flag = TRUE;
    g_free(main_check_image_root);
    main_check_image_root = g_strdup(value);
    return TRUE;
}

int main(int argc, char **argv)
{
    g_autofree char *root = NULL;
    g_autofree char *port = NULL;
    gboolean check = FALSE, once = FALSE, version = FALSE;
    gint interval = BL_PROTO_INTERVAL_DEFAULT_MS;
    GOptionEntry entries[] = {
        {"root", 0, 0, G_OPTION_ARG_FILENAME, &root,
         "Read /proc, /sys and /boot under DIR (default /)", "DIR"},
        {"port", 0, 0, G_OPTION_ARG_FILENAME, &port,
         "Port: character device, unix socket, or - for stdout/stdin (default: find "
         "org.ballast.agent.0)",
         "PATH"},
        {"check", 0, 0, G_OPTION_ARG_NONE, &check,
         "Print whether the balloon is usable; exit 0 usable, 1 not, 2 error", NULL},
        {"check-image", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK,
         (gpointer)main_on_check_image,
         "Check a guest image tree before it boots (kernels' virtio_balloon and virtio_console, "
         "unit, udev rule); exit 0 ready, 1 not, 2 error",
         "[ROOT]"},
        {"once", 0, 0, G_OPTION_ARG_NONE, &once, "Send hello and one report, then exit", NULL},
        {"interval", 0, 0, G_OPTION_ARG_INT, &interval,
         "Default report interval in ms (100..60000, default 1000)", "MS"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &main_verbose, "Log debug messages", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- ballast guest agent");
    g_autoptr(GError) error = NULL;
    g_autoptr(Agent) agent = NULL;
    AgentOptions opts = {0};

    setlocale(LC_ALL, "C");
    g_log_set_writer_func(main_log_writer, NULL, NULL);
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Streams guest memory pressure to the ballast broker "
                                      "over the virtio-serial port " BL_PROTO_CHANNEL_NAME ".");
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "ballast-agent: %s (see --help)\n", error->message);
        return 2;
    }
    if (main_check_image_flag) {
        g_autofree char *image_root = g_steal_pointer(&main_check_image_root);

        if (image_root == NULL && argc == 2)
            image_root = g_strdup(argv[1]);
        else if (argc > 1) {
            fprintf(stderr, "ballast-agent: unexpected argument '%s' (see --help)\n", argv[1]);
            return 2;
        }
        return main_check_image(image_root ? image_root : "/");
    }
    if (argc > 1) {
        fprintf(stderr, "ballast-agent: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (version) {
        printf("ballast-agent %s (protocol %d.%d)\n", BALLAST_VERSION, BL_PROTO_MAJOR,
               BL_PROTO_MINOR);
        return 0;
    }
    if (interval < BL_PROTO_INTERVAL_MIN_MS || interval > BL_PROTO_INTERVAL_MAX_MS) {
        fprintf(stderr, "ballast-agent: --interval %d: must be %d..%d ms\n", interval,
                BL_PROTO_INTERVAL_MIN_MS, BL_PROTO_INTERVAL_MAX_MS);
        return 2;
    }
    if (root == NULL)
        root = g_strdup("/");
    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        fprintf(stderr, "ballast-agent: --root %s: not a directory\n", root);
        return 2;
    }
    if (check)
        return main_check(root);

    /* a closed socket or pipe is an error return, not a fatal signal */
    signal(SIGPIPE, SIG_IGN);
    opts.root = root;
    opts.port = port;
    opts.interval_ms = (guint32)interval;
    opts.once = once;
    agent = agent_new(&opts, &error);
    if (agent == NULL) {
        fprintf(stderr, "ballast-agent: %s\n", error->message);
        return 2;
    }
    return agent_run(agent);
}
