/* Loads one YAML document from a file with libyaml's document API and turns its parser errors
 * into one human line with a line number, as every omni config error is reported. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <omni/omni.h>

#include "yamlfile.h"

/* libyaml's reader errors carry a byte offset, not a line: count the newlines before it. */
static size_t yamlfile_offset_line(FILE *f, size_t offset)
{
    size_t line = 1;
    int c;

    if (fseek(f, 0, SEEK_SET) != 0) return line;
    for (size_t i = 0; i < offset && (c = getc(f)) != EOF; i++)
        if (c == '\n') line++;
    return line;
}

static int yamlfile_parse_error(const char *path, yaml_parser_t *parser, FILE *f, char *err, size_t errlen)
{
    size_t line = parser->problem_mark.line + 1;

    if (parser->error == YAML_MEMORY_ERROR) {
        snprintf(err, errlen, "%s: out of memory", path);
        return OMNI_ENOMEM;
    }
    if (parser->error == YAML_READER_ERROR) line = yamlfile_offset_line(f, parser->problem_offset);
    snprintf(err, errlen, "%s:%zu: %s%s%s%s", path, line, parser->problem ? parser->problem : "YAML syntax error",
             parser->context ? " (" : "", parser->context ? parser->context : "", parser->context ? ")" : "");
    return OMNI_ECONFIG;
}

int yamlfile_load(const char *path, yaml_document_t *doc, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    yaml_node_t *root;
    struct stat sb;
    FILE *f;
    int rc = 0, doc_ok = 0;

    if (!(f = fopen(path, "rb"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return OMNI_EIO;
    }
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) { /* fopen happily opens a directory */
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return OMNI_EIO;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return OMNI_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, doc)) {
        rc = yamlfile_parse_error(path, &parser, f, err, errlen);
        goto out;
    }
    doc_ok = 1;
    /* A second document would be ignored by every loader: refuse it instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = yamlfile_parse_error(path, &parser, f, err, errlen);
        goto out;
    }
    if ((root = yaml_document_get_root_node(&extra))) {
        snprintf(err, errlen, "%s:%zu: only one YAML document is allowed", path, (size_t)root->start_mark.line + 1);
        rc = OMNI_ECONFIG;
    }
    yaml_document_delete(&extra);
out:
    if (rc && doc_ok) yaml_document_delete(doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

const char *yamlfile_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

/* Quoted values stay on one line and short, whatever the file holds. */
const char *yamlfile_shown(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* YAML's null is a plain "", "~", null, Null or NULL; a quoted "" is an empty string instead. */
int yamlfile_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)node->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

int yamlfile_verr(char *err, size_t errlen, const char *path, const yaml_node_t *node, const char *fmt,
                  va_list ap)
{
    char msg[320];
    if (!err || !errlen)
        return OMNI_ECONFIG;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (node)
        snprintf(err, errlen, "%s:%zu: %s", path, (size_t)node->start_mark.line + 1, msg);
    else
        snprintf(err, errlen, "%s: %s", path, msg);
    return OMNI_ECONFIG;
}
