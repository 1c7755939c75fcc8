/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internals shared by the protocol library's files; not part of the contract. */
#pragma once

#include "protocol.h"

/* BlMem fields in declaration order, as they are named on the wire. */
#define BL_PROTO_MEM_N_FIELDS 7
const char *bl_proto_mem_name(guint field);
