/* One YAML document from one file, for the broker's config loaders (config.c, router/match.c):
 * opening, parsing and the "PATH:LINE: message" errors live here once. */
#ifndef OMNI_YAMLFILE_H
#define OMNI_YAMLFILE_H

#include <stddef.h>
#include <yaml.h>

/* Load exactly one document from the regular file at path. Returns 0 with *doc loaded (free it
 * with yaml_document_delete; its root is NULL for an empty file), else OMNI_EIO (unreadable or
 * not a regular file), OMNI_ECONFIG (YAML syntax, a second document) or OMNI_ENOMEM, with one
 * line "PATH[:LINE]: message" in err. */
int yamlfile_load(const char *path, yaml_document_t *doc, char *err, size_t errlen);

#endif
