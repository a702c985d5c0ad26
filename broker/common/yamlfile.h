/* One YAML document from one file, for the broker's config loaders (config.c, routecfg.c,
 * router/match.c): opening, parsing and the pieces of their "PATH:LINE: message" errors. */
#ifndef OMNI_YAMLFILE_H
#define OMNI_YAMLFILE_H

#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

/* Load exactly one document from the regular file at path. Returns 0 with *doc loaded (free it
 * with yaml_document_delete; its root is NULL for an empty file), else OMNI_EIO (unreadable or
 * not a regular file), OMNI_ECONFIG (YAML syntax, a second document) or OMNI_ENOMEM, with one
 * line "PATH[:LINE]: message" in err. */
int yamlfile_load(const char *path, yaml_document_t *doc, char *err, size_t errlen);

/* Writes "PATH:LINE: message" (node NULL: "PATH: message") into err; returns OMNI_ECONFIG. */
int yamlfile_verr(char *err, size_t errlen, const char *path, const yaml_node_t *node, const char *fmt,
                  va_list ap);

/* "a mapping", "a list" or "a scalar", for error messages. */
const char *yamlfile_kind(const yaml_node_t *node);
/* s for an error message: control bytes as '?', cut to len - 1 bytes; returns buf. */
const char *yamlfile_shown(const char *s, char *buf, size_t len);
/* 1 for a plain empty scalar, "~" or "null" (a key with no value). */
int yamlfile_is_null(const yaml_node_t *node);

#endif
