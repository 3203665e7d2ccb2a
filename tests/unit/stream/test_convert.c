/* tests/unit/stream/test_convert.c -- Firehose's record format conversion
 * without a server: DataFormatConversionConfiguration validated as
 * Firehose does, and JSON records converted over a schema the test builds,
 * the Parquet file read back with tarn's Parquet reader: values exact,
 * failing records reported one by one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "stream/convert.h"
#include "stream/stream.h"

#include "formats/parquet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---- */

static json_t *dest(const char *extra_json)
{
  json_error_t je;
  json_t *d = json_loads(extra_json, 0, &je);
  assert_non_null(d);
  return d;
}

#define GOOD_CONV                                                                              \
  "\"DataFormatConversionConfiguration\": {"                                                   \
  "  \"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {}}},"              \
  "  \"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": {}}},"                 \
  "  \"SchemaConfiguration\": {\"DatabaseName\": \"db\", \"TableName\": \"t\","                \
  "                            \"RoleARN\": \"arn:aws:iam::000000000000:role/r\"}}"

static int parse(const char *json, conv_config **c, err *e)
{
  json_t *d = dest(json);
  err_clear(e);
  int rc = stream__conv_parse(d, "extendedS3DestinationConfiguration", c, e);
  json_decref(d);
  return rc;
}

static void test_validation(void **state)
{
  (void)state;
  conv_config *c = NULL;
  err e;
  assert_int_equal(parse("{" GOOD_CONV "}", &c, &e), 0);
  assert_non_null(c);
  assert_true(c->openx && c->case_insensitive && !c->dots_to_underscores);
  assert_int_equal(c->codec, PQW_SNAPPY);
  assert_string_equal(c->database, "db");
  c = stream__conv_free(c);

  /* no conversion, or disabled: nothing */
  assert_int_equal(parse("{}", &c, &e), 0);
  assert_null(c);
  assert_int_equal(parse("{\"DataFormatConversionConfiguration\": {\"Enabled\": false}}", &c, &e),
                   0);
  assert_null(c);

  assert_int_equal(parse("{\"CompressionFormat\": \"GZIP\", " GOOD_CONV "}", &c, &e),
                   STREAM_ERR_INVALID);
  assert_non_null(strstr(e.msg, "compression format must be set to UNCOMPRESSED"));
  assert_int_equal(
      parse("{\"BufferingHints\": {\"SizeInMBs\": 5}, " GOOD_CONV "}", &c, &e), STREAM_ERR_INVALID);
  assert_string_equal(e.msg, "BufferingHints.SizeInMBs must be at least 64 when data format "
                             "conversion is enabled.");
  assert_int_equal(parse("{\"DataFormatConversionConfiguration\": {}}", &c, &e),
                   STREAM_ERR_INVALID);
  assert_string_equal(e.msg, "InputFormatConfiguration must not be null");
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {"
            "\"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {}}},"
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"OrcSerDe\": {}}},"
            "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", "
            "\"RoleARN\": \"r\"}}}",
            &c, &e),
      STREAM_ERR_INVALID);
  assert_non_null(strstr(e.msg, "OrcSerDe is not supported"));
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {"
            "\"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {}}},"
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": {}}},"
            "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"RoleARN\": \"r\"}}}",
            &c, &e),
      STREAM_ERR_INVALID);
  assert_string_equal(e.msg, "SchemaConfiguration.TableName must not be null or empty");
  /* member constraints apply even when disabled */
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {\"Enabled\": false, "
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": "
            "{\"BlockSizeBytes\": 10, \"Compression\": \"LZO\"}}}}}",
            &c, &e),
      STREAM_ERR_VALIDATION);
  assert_string_equal(
      e.msg, "2 validation errors detected: Value at 'extendedS3DestinationConfiguration."
             "dataFormatConversionConfiguration.outputFormatConfiguration.serializer.parquetSerDe."
             "blockSizeBytes' failed to satisfy constraint: Member must have value greater than or "
             "equal to 67108864; Value at 'extendedS3DestinationConfiguration."
             "dataFormatConversionConfiguration.outputFormatConfiguration.serializer.parquetSerDe."
             "compression' failed to satisfy constraint: Member must satisfy enum value set: "
             "[SNAPPY, GZIP, UNCOMPRESSED]");
  /* a Hive pattern tarn cannot read is refused at once */
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {"
            "\"InputFormatConfiguration\": {\"Deserializer\": {\"HiveJsonSerDe\": "
            "{\"TimestampFormats\": [\"EEE, dd MMM yyyy\"]}}},"
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": {}}},"
            "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", "
            "\"RoleARN\": \"r\"}}}",
            &c, &e),
      STREAM_ERR_INVALID);
  assert_non_null(strstr(e.msg, "pattern letter 'E'"));
}

/* ---- conversion ---- */

typedef struct readback {
  uint8_t *file;
  size_t n;
  pq_file *pf;
} readback;

static void open_file(readback *rb, const buf *b)
{
  err e;
  err_clear(&e);
  rb->file = (uint8_t *)b->data;
  rb->n = b->len;
  assert_true(rb->n > 12);
  assert_memory_equal(rb->file, "PAR1", 4);
  uint32_t fl;
  assert_int_equal(pq_footer_len("x", rb->n, rb->file + rb->n - 8, 8, &fl, &e), 0);
  assert_int_equal(pq_file_parse("x", rb->n, rb->file + rb->n - 8 - fl, fl, &rb->pf, &e), 0);
}

static void column(readback *rb, int fi, pq_column *c)
{
  err e;
  err_clear(&e);
  const pq_field *f = &rb->pf->fields[fi];
  const uint8_t *p[16];
  size_t l[16];
  assert_true(f->nleaves <= 16);
  for (int k = 0; k < f->nleaves; k++) {
    uint64_t off, len;
    assert_int_equal(pq_chunk_range(rb->pf, 0, f->first_leaf + k, &off, &len, &e), 0);
    p[k] = rb->file + off;
    l[k] = (size_t)len;
  }
  int rc = pq_column_read(rb->pf, 0, fi, p, l, 1 << 24, c, &e);
  if (rc != 0)
    fail_msg("%s", e.msg);
}

static conv_schema *schema(const conv_config *cfg, const char *cols_json)
{
  json_t *cols = dest(cols_json);
  conv_schema *s = NULL;
  err e;
  err_clear(&e);
  int rc = stream__conv_schema_new(cfg, cols, &s, &e);
  if (rc != 0)
    fail_msg("%s", e.msg);
  json_decref(cols);
  return s;
}

static bool str_is(const pq_column *c, int row, const char *want)
{
  return (c->nulls == NULL || !c->nulls[row]) && c->s[row].len == strlen(want) &&
         memcmp(c->s[row].ptr, want, c->s[row].len) == 0;
}

static void test_convert_openx(void **state)
{
  (void)state;
  conv_config *cfg = NULL;
  err e;
  assert_int_equal(parse("{" GOOD_CONV "}", &cfg, &e), 0);
  conv_schema *s = schema(
      cfg, "[{\"Name\": \"id\", \"Type\": \"string\"}, {\"Name\": \"n\", \"Type\": \"int\"},"
           " {\"Name\": \"price\", \"Type\": \"decimal(10,2)\"},"
           " {\"Name\": \"ok\", \"Type\": \"boolean\"}, {\"Name\": \"day\", \"Type\": \"date\"},"
           " {\"Name\": \"ts\", \"Type\": \"timestamp\"}, {\"Name\": \"t\", \"Type\": \"tinyint\"},"
           " {\"Name\": \"f\", \"Type\": \"float\"},"
           " {\"Name\": \"tags\", \"Type\": \"array<string>\"},"
           " {\"Name\": \"attrs\", \"Type\": \"struct<a:int,b:string>\"}]");
  const char *in[] = {
      /* 0: everything, keys in any case */
      "{\"ID\": \"000042\", \"n\": 7, \"Price\": 12.345, \"ok\": true, \"day\": \"2024-3-5\","
      " \"ts\": \"2024-03-05T07:08:09.123456Z\", \"t\": -128, \"f\": 1.5,"
      " \"tags\": [\"a\", \"b\"], \"attrs\": {\"a\": 1, \"b\": \"x\"}, \"extra\": 1}",
      /* 1: two objects in one record, numbers as strings, epoch timestamps */
      "{\"id\": 17, \"n\": \"8\", \"price\": \"0.5\", \"ts\": 1709622489}\n"
      "{\"id\": \"caf\\u00e9\", \"ts\": 1709622489123, \"price\": -3}",
      /* 2: not JSON */
      "{\"id\": \"x\",",
      /* 3: not the schema */
      "{\"n\": \"abc\"}",
      /* 4: out of range */
      "{\"t\": 300}",
      /* 5: empty */
      "  ",
      /* 6: a second object that fails fails the whole record */
      "{\"id\": \"fine\"}{\"n\": 1.5}",
      /* 7: a string in the space-separated form */
      "{\"id\": \"last\", \"ts\": \"2024-03-05 07:08:09.5\", \"price\": 99999999.99}",
  };
  size_t n = sizeof in / sizeof in[0];
  conv_rec recs[8];
  for (size_t i = 0; i < n; i++)
    recs[i] = (conv_rec){(const uint8_t *)in[i], strlen(in[i]), NULL, NULL};
  buf out;
  buf_init(&out, 1u << 24);
  arena *a = arena_new();
  err_clear(&e);
  assert_int_equal(stream__conv_write(cfg, s, recs, n, &out, a, &e), 0);
  assert_null(recs[0].err_code);
  assert_null(recs[1].err_code);
  assert_string_equal(recs[2].err_code, "DataFormatConversion.ParseError");
  assert_string_equal(recs[3].err_code, "DataFormatConversion.MalformedData");
  assert_non_null(strstr(recs[3].err_msg, "Column 'n'"));
  assert_string_equal(recs[4].err_code, "DataFormatConversion.MalformedData");
  assert_string_equal(recs[5].err_code, "DataFormatConversion.ParseError");
  assert_string_equal(recs[6].err_code, "DataFormatConversion.MalformedData");
  assert_null(recs[7].err_code);

  readback rb;
  open_file(&rb, &out);
  assert_int_equal(rb.pf->num_rows, 4);
  assert_int_equal(rb.pf->nfields, 10);
  pq_column c;
  column(&rb, 0, &c); /* id */
  assert_true(str_is(&c, 0, "000042"));
  assert_true(str_is(&c, 1, "17"));
  assert_true(str_is(&c, 2, "caf\xc3\xa9"));
  assert_true(str_is(&c, 3, "last"));
  pq_column_release(&c);
  column(&rb, 1, &c); /* n */
  assert_int_equal(c.i[0], 7);
  assert_int_equal(c.i[1], 8);
  assert_true(c.nulls != NULL && c.nulls[2] && c.nulls[3]);
  pq_column_release(&c);
  column(&rb, 2, &c); /* price, decimal(10,2): 12.345 rounds half up */
  assert_int_equal(c.i[0], 1235);
  assert_int_equal(c.i[1], 50);
  assert_int_equal(c.i[2], -300);
  assert_int_equal(c.i[3], 9999999999LL);
  pq_column_release(&c);
  column(&rb, 3, &c); /* ok */
  assert_int_equal(c.i[0], 1);
  assert_true(c.nulls[1]);
  pq_column_release(&c);
  column(&rb, 4, &c); /* day: 2024-03-05 */
  assert_int_equal(c.i[0], 19787);
  pq_column_release(&c);
  column(&rb, 5, &c); /* ts */
  assert_int_equal(c.i[0], 1709622489123456LL);
  assert_int_equal(c.i[1], 1709622489000000LL);
  assert_int_equal(c.i[2], 1709622489123000LL);
  assert_int_equal(c.i[3], 1709622489500000LL);
  pq_column_release(&c);
  column(&rb, 6, &c); /* t */
  assert_int_equal(c.i[0], -128);
  pq_column_release(&c);
  column(&rb, 7, &c); /* f */
  assert_true(c.f[0] == 1.5);
  pq_column_release(&c);
  column(&rb, 8, &c); /* tags: a Parquet LIST, read back as JSON text */
  assert_true(str_is(&c, 0, "[\"a\",\"b\"]"));
  pq_column_release(&c);
  column(&rb, 9, &c); /* attrs: a STRUCT */
  assert_true(str_is(&c, 0, "{\"a\":1,\"b\":\"x\"}"));
  pq_column_release(&c);
  pq_file_free(rb.pf);

  /* nothing converts: no file */
  buf none;
  buf_init(&none, 1u << 20);
  conv_rec bad = {(const uint8_t *)"[1]", 3, NULL, NULL};
  assert_int_equal(stream__conv_write(cfg, s, &bad, 1, &none, a, &e), 0);
  assert_int_equal(none.len, 0);
  assert_string_equal(bad.err_code, "DataFormatConversion.MalformedData");
  buf_release(&none);
  buf_release(&out);
  arena_free(a);
  stream__conv_schema_free(s);
  stream__conv_free(cfg);
}

/* Nested columns: lists, maps and structs inside each other, their parts
   converted by the columns' rules; a part that does not match fails the
   record. */
static void test_convert_nested(void **state)
{
  (void)state;
  conv_config *cfg = NULL;
  err e;
  assert_int_equal(parse("{" GOOD_CONV "}", &cfg, &e), 0);
  conv_schema *s = schema(
      cfg, "[{\"Name\": \"id\", \"Type\": \"string\"},"
           " {\"Name\": \"counts\", \"Type\": \"map<string,bigint>\"},"
           " {\"Name\": \"who\", \"Type\": \"struct<Name:string,zip:string,"
           "tags:array<string>,at:timestamp,amt:decimal(30,2)>\"},"
           " {\"Name\": \"grid\", \"Type\": \"array<array<int>>\"},"
           " {\"Name\": \"byid\", \"Type\": \"map<int,struct<ok:boolean>>\"}]");
  const char *in[] = {
      /* 0: all present; struct keys in another case, numbers kept exact */
      "{\"id\": \"a\", \"counts\": {\"x\": 1, \"y\": null}, \"WHO\": {\"name\": \"Ann\","
      " \"ZIP\": \"000042\", \"tags\": [\"p\", null], \"at\": \"2024-03-05T07:08:09Z\","
      " \"amt\": \"12345678901234567890.25\", \"other\": 1},"
      " \"grid\": [[1, 2], [], null], \"byid\": {\"7\": {\"ok\": true}, \"8\": null}}",
      /* 1: empty and missing parts */
      "{\"id\": \"b\", \"counts\": {}, \"who\": {}, \"grid\": []}",
      /* 2: a part of the wrong kind fails the record */
      "{\"id\": \"c\", \"grid\": [[1], \"x\"]}",
      /* 3: a map key that is not of the key type fails the record */
      "{\"id\": \"d\", \"byid\": {\"seven\": {\"ok\": true}}}",
      /* 4: a struct field of the wrong type */
      "{\"id\": \"e\", \"who\": {\"at\": \"yesterday\"}}",
  };
  size_t n = sizeof in / sizeof in[0];
  conv_rec recs[5];
  for (size_t i = 0; i < n; i++)
    recs[i] = (conv_rec){(const uint8_t *)in[i], strlen(in[i]), NULL, NULL};
  buf out;
  buf_init(&out, 1u << 24);
  arena *a = arena_new();
  assert_int_equal(stream__conv_write(cfg, s, recs, n, &out, a, &e), 0);
  assert_null(recs[0].err_code);
  assert_null(recs[1].err_code);
  assert_string_equal(recs[2].err_code, "DataFormatConversion.MalformedData");
  assert_non_null(strstr(recs[2].err_msg, "Column 'grid[]' (array<int>): not a JSON array"));
  assert_string_equal(recs[3].err_code, "DataFormatConversion.MalformedData");
  assert_non_null(strstr(recs[3].err_msg, "byid.key"));
  assert_string_equal(recs[4].err_code, "DataFormatConversion.MalformedData");
  assert_non_null(strstr(recs[4].err_msg, "who.at"));

  readback rb;
  open_file(&rb, &out);
  assert_int_equal(rb.pf->num_rows, 2);
  assert_int_equal(rb.pf->nfields, 5);
  pq_column c;
  column(&rb, 1, &c);
  assert_true(str_is(&c, 0, "{\"x\":1,\"y\":null}"));
  assert_true(str_is(&c, 1, "{}"));
  pq_column_release(&c);
  column(&rb, 2, &c);
  assert_true(str_is(&c, 0, "{\"Name\":\"Ann\",\"zip\":\"000042\",\"tags\":[\"p\",null],"
                            "\"at\":\"2024-03-05 07:08:09\",\"amt\":\"12345678901234567890.25\"}"));
  assert_true(str_is(&c, 1, "{\"Name\":null,\"zip\":null,\"tags\":null,\"at\":null,"
                            "\"amt\":null}"));
  pq_column_release(&c);
  column(&rb, 3, &c);
  assert_true(str_is(&c, 0, "[[1,2],[],null]"));
  assert_true(str_is(&c, 1, "[]"));
  pq_column_release(&c);
  column(&rb, 4, &c);
  assert_true(str_is(&c, 0, "{\"7\":{\"ok\":true},\"8\":null}"));
  assert_true(c.nulls != NULL && c.nulls[1]);
  pq_column_release(&c);
  pq_file_free(rb.pf);
  buf_release(&out);
  arena_free(a);
  stream__conv_schema_free(s);

  /* types tarn cannot write are refused when the schema is read */
  static const char *bad[] = {"array<>", "map<string>", "struct<a int>", "array<uniontype<int>>",
                              "array<string", "struct<a:int>>", "varchar"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char cols[256];
    snprintf(cols, sizeof cols, "[{\"Name\": \"x\", \"Type\": \"%s\"}]", bad[i]);
    json_t *j = json_loads(cols, 0, NULL);
    conv_schema *b = NULL;
    if (stream__conv_schema_new(cfg, j, &b, &e) != ERR_INVALID)
      fail_msg("type %s accepted", bad[i]);
    json_decref(j);
  }
  stream__conv_free(cfg);
}

static void test_convert_mappings_and_hive(void **state)
{
  (void)state;
  conv_config *cfg = NULL;
  err e;
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {"
            "\"InputFormatConfiguration\": {\"Deserializer\": {\"OpenXJsonSerDe\": {"
            "\"CaseInsensitive\": false, \"ConvertDotsInJsonKeysToUnderscores\": true,"
            "\"ColumnToJsonKeyMappings\": {\"when_\": \"when\"}}}},"
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": "
            "{\"Compression\": \"GZIP\"}}},"
            "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", "
            "\"RoleARN\": \"r\"}}}",
            &cfg, &e),
      0);
  assert_int_equal(cfg->codec, PQW_GZIP);
  conv_schema *s = schema(cfg, "[{\"Name\": \"a_b\", \"Type\": \"bigint\"},"
                               " {\"Name\": \"when_\", \"Type\": \"string\"}]");
  const char *in = "{\"a.b\": 9007199254740993, \"when\": \"now\", \"A_B\": 1}";
  conv_rec r = {(const uint8_t *)in, strlen(in), NULL, NULL};
  buf out;
  buf_init(&out, 1u << 20);
  arena *a = arena_new();
  assert_int_equal(stream__conv_write(cfg, s, &r, 1, &out, a, &e), 0);
  assert_null(r.err_code);
  readback rb;
  open_file(&rb, &out);
  pq_column c;
  column(&rb, 0, &c);
  assert_int_equal(c.i[0], 9007199254740993LL); /* exact: never through a double */
  pq_column_release(&c);
  column(&rb, 1, &c);
  assert_true(str_is(&c, 0, "now"));
  pq_column_release(&c);
  pq_file_free(rb.pf);
  buf_release(&out);
  stream__conv_schema_free(s);
  stream__conv_free(cfg);

  /* Hive: TimestampFormats (Joda patterns and millis) */
  assert_int_equal(
      parse("{\"DataFormatConversionConfiguration\": {"
            "\"InputFormatConfiguration\": {\"Deserializer\": {\"HiveJsonSerDe\": {"
            "\"TimestampFormats\": [\"dd/MM/yyyy HH:mm:ss\", \"yyyyMMdd'T'HHmmssZ\", "
            "\"millis\"]}}},"
            "\"OutputFormatConfiguration\": {\"Serializer\": {\"ParquetSerDe\": "
            "{\"Compression\": \"UNCOMPRESSED\"}}},"
            "\"SchemaConfiguration\": {\"DatabaseName\": \"d\", \"TableName\": \"t\", "
            "\"RoleARN\": \"r\"}}}",
            &cfg, &e),
      0);
  s = schema(cfg, "[{\"Name\": \"ts\", \"Type\": \"timestamp\"}]");
  const char *hin[] = {"{\"TS\": \"05/03/2024 07:08:09\"}", "{\"ts\": \"20240305T090809+0200\"}",
                       "{\"ts\": 1709622489123}", "{\"ts\": \"5 March\"}"};
  conv_rec hr[4];
  for (int i = 0; i < 4; i++)
    hr[i] = (conv_rec){(const uint8_t *)hin[i], strlen(hin[i]), NULL, NULL};
  buf_init(&out, 1u << 20);
  assert_int_equal(stream__conv_write(cfg, s, hr, 4, &out, a, &e), 0);
  assert_null(hr[0].err_code);
  assert_null(hr[1].err_code);
  assert_null(hr[2].err_code);
  assert_string_equal(hr[3].err_code, "DataFormatConversion.MalformedData");
  open_file(&rb, &out);
  column(&rb, 0, &c);
  assert_int_equal(c.i[0], 1709622489000000LL);
  assert_int_equal(c.i[1], 1709622489000000LL);
  assert_int_equal(c.i[2], 1709622489123000LL);
  pq_column_release(&c);
  pq_file_free(rb.pf);
  buf_release(&out);
  stream__conv_schema_free(s);

  /* decimals past 18 digits: exact, as big-endian bytes */
  s = schema(cfg, "[{\"Name\": \"d\", \"Type\": \"decimal(38,4)\"}]");
  const char *din[] = {"{\"d\": 1234567890123456789012345678901234.56789}",
                       "{\"d\": \"-1.5\"}", "{\"d\": 0}", "{\"d\": -128}",
                       "{\"d\": 1e40}"};
  conv_rec dr[5];
  for (int i = 0; i < 5; i++)
    dr[i] = (conv_rec){(const uint8_t *)din[i], strlen(din[i]), NULL, NULL};
  buf_init(&out, 1u << 20);
  assert_int_equal(stream__conv_write(cfg, s, dr, 5, &out, a, &e), 0);
  for (int i = 0; i < 4; i++)
    assert_null(dr[i].err_code);
  assert_string_equal(dr[4].err_code, "DataFormatConversion.MalformedData");
  open_file(&rb, &out);
  column(&rb, 0, &c);
  assert_true(str_is(&c, 0, "1234567890123456789012345678901234.5679"));
  assert_true(str_is(&c, 1, "-1.5000"));
  assert_true(str_is(&c, 2, "0.0000"));
  assert_true(str_is(&c, 3, "-128.0000"));
  pq_column_release(&c);
  pq_file_free(rb.pf);
  buf_release(&out);
  stream__conv_schema_free(s);

  /* types tarn cannot write are named */
  json_t *cols = dest("[{\"Name\": \"big\", \"Type\": \"binary\"}]");
  err_clear(&e);
  assert_int_equal(stream__conv_schema_new(cfg, cols, &s, &e), ERR_INVALID);
  assert_non_null(strstr(e.msg, "'big'"));
  json_decref(cols);
  stream__conv_free(cfg);
  arena_free(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_convert_openx),
      cmocka_unit_test(test_convert_nested),
      cmocka_unit_test(test_convert_mappings_and_hive),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
