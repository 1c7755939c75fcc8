/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loading protocol/vectors/ for the protocol tests (naming: protocol/vectors/README.md). */
#pragma once

#include <glib.h>

typedef struct {
    char *name; /* file name, "range-seq-zero.json" */
    char *line; /* contents without the final '\n' */
    gsize len;
    int expected; /* BlProtoError code from the name prefix; -1 for valid/ */
} Vector;

/* All vectors of "valid" or "invalid", sorted by name; fails the test if none. */
GPtrArray *vectors_load(const char *kind);

/* The BlProtoError a file name announces, or -1 when the prefix is unknown. */
int vectors_expected_error(const char *name);

/* A report line padded with an unknown field to exactly content_len bytes. */
char *vectors_padded_report(gsize content_len);
