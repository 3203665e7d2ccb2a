/* api/s3_attributes.c -- GetObjectAttributes: an object's ETag, checksum,
 * parts, storage class and size in one XML answer, without its bytes.
 *
 * Why: SDKs and tools use it to check an upload (the checksum and the
 * parts' sizes) without downloading the object.
 *
 * Invariants:
 *   (1) x-amz-object-attributes names what to answer (ETag, Checksum,
 *       ObjectParts, StorageClass, ObjectSize, comma-separated); an empty
 *       or unknown name is 400 InvalidArgument, before anything is read.
 *   (2) ETag is unquoted (S3 answers it so here); the checksum is the one
 *       kept with the object, with its type; the parts are those of a
 *       multipart upload, paged by part-number-marker and max-parts (at
 *       most 1000), each with its size.
 *
 * Start reading at s3_get_object_attributes().
 */
#include "api/s3_internal.h"


#include <string.h>

#define PARTS_MAX 1000

enum { A_ETAG = 1, A_CHECKSUM = 2, A_PARTS = 4, A_CLASS = 8, A_SIZE = 16 };

static int wanted(http_req *req, unsigned *out, err *e)
{
  static const struct {
    const char *name;
    unsigned bit;
  } names[] = {{"ETag", A_ETAG}, {"Checksum", A_CHECKSUM}, {"ObjectParts", A_PARTS},
               {"StorageClass", A_CLASS}, {"ObjectSize", A_SIZE}};
  const char *h = http_req_header(req, "x-amz-object-attributes");
  *out = 0;
  if (h == NULL)
    h = "";
  const char *p = h;
  while (*p != '\0') {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (n == 0)
      break;
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] &&
           (strlen(names[i].name) != n || strncmp(names[i].name, p, n) != 0))
      i++;
    if (i == sizeof names / sizeof names[0])
      return err_set(e, ERR_INVALID, "Invalid attribute name specified.");
    *out |= names[i].bit;
    p += n;
  }
  if (*out == 0)
    return err_set(e, ERR_INVALID, "x-amz-object-attributes header specifying attributes to "
                   "be retrieved is either missing or empty");
  return 0;
}

int s3_get_object_attributes(s3_svc *s, http_req *req, s3_call *c, err *e)
{
  unsigned want;
  int rc = wanted(req, &want, e);
  if (rc != 0)
    return rc;
  long marker = 0;
  long max = PARTS_MAX;
  const char *pm = http_req_header(req, "x-amz-part-number-marker");
  const char *mp = http_req_header(req, "x-amz-max-parts");
  if (pm != NULL && !s3_parse_long(pm, 0, STORE_MAX_PARTS, &marker))
    return err_set(e, ERR_INVALID, "Part number marker must be an integer between 0 and %d",
                   STORE_MAX_PARTS);
  if (mp != NULL && !s3_parse_long(mp, 0, 2147483647L, &max))
    return err_set(e, ERR_INVALID, "max-parts must be a non-negative integer");
  if (max > PARTS_MAX)
    max = PARTS_MAX;
  store_object o;
  rc = store_object_get(s->st, c->bucket, c->key, req->arena, &o, NULL, e);
  if (rc != 0)
    return rc;
  char date[30];
  time_format_rfc1123((time_t)(o.mtime_ms / 1000), date);
  http_resp_header(req, "Last-Modified", date);
  s3_xml x;
  s3_xml_open(&x, req, "GetObjectAttributesResponse");
  if (want & A_ETAG)
    s3_xml_text(&x, "ETag", o.etag);
  if (want & A_CHECKSUM) {
    for (size_t i = 0; i < o.nmeta; i++) {
      const char *xname = str_starts(o.meta[i].name, "x-amz-checksum-")
                              ? s3_checksum_xml_name(o.meta[i].name + 15) : NULL;
      if (xname == NULL)
        continue;
      s3_xml_start(&x, "Checksum");
      s3_xml_text(&x, xname, o.meta[i].value);
      s3_xml_text(&x, "ChecksumType",
                  strchr(o.meta[i].value, '-') != NULL ? "COMPOSITE" : "FULL_OBJECT");
      s3_xml_end(&x, "Checksum");
      break;
    }
  }
  if ((want & A_PARTS) && o.nparts > 0) {
    s3_xml_start(&x, "ObjectParts");
    s3_xml_textf(&x, "PartsCount", "%zu", o.nparts);  /* TotalPartsCount in the SDKs */
    s3_xml_textf(&x, "PartNumberMarker", "%ld", marker);
    s3_xml_textf(&x, "MaxParts", "%ld", max);
    long shown = 0;
    long last = marker;
    for (size_t i = (size_t)marker; i < o.nparts && o.part_sizes != NULL && shown < max; i++) {
      s3_xml_start(&x, "Part");
      s3_xml_textf(&x, "PartNumber", "%zu", i + 1);
      s3_xml_textf(&x, "Size", "%llu", (unsigned long long)o.part_sizes[i]);
      s3_xml_end(&x, "Part");
      shown++;
      last = (long)i + 1;
    }
    bool truncated = (size_t)last < o.nparts;
    s3_xml_bool(&x, "IsTruncated", truncated);
    s3_xml_textf(&x, "NextPartNumberMarker", "%ld", last);
    s3_xml_end(&x, "ObjectParts");
  }
  if (want & A_CLASS)
    s3_xml_text(&x, "StorageClass", "STANDARD");
  if (want & A_SIZE)
    s3_xml_textf(&x, "ObjectSize", "%llu", (unsigned long long)o.size);
  s3_xml_close(&x, "GetObjectAttributesResponse");
  return s3_xml_done(&x, e);
}
