/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fake hypervisor behind virt.h's VirtBackend, for benchmarks and tests:
 * N running domains, each with an agent channel that is one end of a
 * socketpair (the other end is the simulated agent's), a balloon that moves
 * to its target at once, and balloon-change events delivered from an idle
 * source as libvirt delivers them (later, not inside the call). Every
 * set-memory call is recorded with its time so that a benchmark can measure
 * report → decision applied.
 *
 * Never linked into ballastd: virt.c stays the only libvirt caller.
 */
#pragma once

#include <glib.h>

#include "protocol.h"
#include "virt.h"

typedef struct FakeVirt FakeVirt;

typedef struct {
    guint vm;     /* domain index */
    gint64 at_us; /* monotonic time of the call */
    guint64 kib;  /* the target asked for */
} FakeVirtSetMemory;

/* n domains "vm00000".., max_kib each, balloon at start_kib, metadata
 * <ballast:policy min=floor_kib/>; broker_fds[i] is the broker's end of
 * domain i's channel (dup'ed on every open, never closed by the fake). */
FakeVirt *fake_virt_new(guint n, guint64 max_kib, guint64 start_kib, guint64 floor_kib,
                        const int *broker_fds);
void fake_virt_free(FakeVirt *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeVirt, fake_virt_free)

const VirtBackend *fake_virt_backend(void);

/* Every set-memory call so far (FakeVirtSetMemory), in call order. */
const GArray *fake_virt_set_memory_log(const FakeVirt *f);
guint64 fake_virt_balloon_kib(const FakeVirt *f, guint vm);
guint fake_virt_channel_opens(const FakeVirt *f);
void fake_virt_uuid(guint vm, char out[VIRT_UUID_LEN]);
/* Also write every balloon size into mirror[vm] (e.g. memory shared with the
 * process that plays the guests, whose MemTotal follows their balloon). */
void fake_virt_mirror_balloons(FakeVirt *f, volatile guint64 *mirror);

/* What a simulated agent sends, encoded as the real agent encodes it (one
 * line into out): a hello, and a report of a guest whose MemTotal follows its
 * balloon (less 128 MiB the kernel keeps), idle at 60 % available or short
 * (40 MiB available, PSI some 30 %) under pressure. */
void fake_agent_hello(GString *out);
void fake_agent_report(GString *out, guint64 seq, guint64 balloon_kib, gboolean pressure,
                       guint64 stall_us);
