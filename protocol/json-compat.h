/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The json-c calls the protocol makes that are newer than the oldest json-c a
 * supported distribution ships (RHEL 8: 0.13), from json-c's ChangeLog:
 *   0.14 json_tokener_get_parse_end(), JSON_TOKENER_VALIDATE_UTF8
 *   0.15 json_object_new_array_ext()
 * Everything else it calls (json_tokener_new_ex/set_flags/parse_ex and
 * JSON_TOKENER_STRICT 0.11, json_object_new_double_s 0.12,
 * json_object_to_json_string_length and JSON_C_TO_STRING_NOSLASHESCAPE 0.13)
 * is in 0.13. On older json-c the fallbacks below give the same behaviour.
 */
#pragma once

#include <json-c/json.h>

#if !defined(JSON_C_VERSION_NUM) || JSON_C_VERSION_NUM < ((0 << 16) | (14 << 8))
/* 0.13 exposes the tokener struct; 0.14 hid the field behind this call. */
#define json_tokener_get_parse_end(tok) ((size_t)(tok)->char_offset)
/* No UTF-8 check in the tokener: the decoder's lexical check runs
 * g_utf8_validate() on every line before json-c sees it anyway. */
#define JSON_TOKENER_VALIDATE_UTF8 0
#endif

#if !defined(JSON_C_VERSION_NUM) || JSON_C_VERSION_NUM < ((0 << 16) | (15 << 8))
/* Only a capacity hint. */
#define json_object_new_array_ext(n) ((void)(n), json_object_new_array())
#endif
