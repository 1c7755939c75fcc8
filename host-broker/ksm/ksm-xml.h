/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * <memoryBacking><nosharepages/></memoryBacking> in a libvirt domain XML:
 * pure string in, string out.
 *
 * GMarkup validates the document and locates the elements; the edit splices
 * the original text, so everything else (namespaces, <metadata>, comments,
 * formatting) is left byte for byte. The result is parsed again before it is
 * returned.
 */
#pragma once

#include <glib.h>

/* Does /domain/memoryBacking/nosharepages exist? */
gboolean ksm_xml_has_nosharepages(const char *xml, gboolean *has, GError **error);

/*
 * on: add <nosharepages/> (inside an existing <memoryBacking>, expanding a
 * self-closing one, or in a new <memoryBacking> after <currentMemory> or
 * <memory>). off: remove every <nosharepages>, and the <memoryBacking> too
 * when nothing else is left in it. *changed is FALSE (and *out a copy) when
 * the document already is as asked. Errors: not well-formed, the root is not
 * <domain>, or more than one <memoryBacking>.
 */
gboolean ksm_xml_set_nosharepages(const char *xml, gboolean on, char **out, gboolean *changed,
                                  GError **error);
