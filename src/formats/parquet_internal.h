/* formats/parquet_internal.h -- what parquet.c (footer) and parquet_page.c
 * (pages) share (private): a reader of Thrift's compact protocol.
 *
 * The reader never fails loudly: a read past the end, a bad type, a count
 * larger than the bytes left or nesting deeper than THRIFT_DEPTH_MAX sets
 * `bad` (with the first reason) and returns zeros; callers check bad once
 * at the end of a struct.
 */
#ifndef TARN_FORMATS_PARQUET_INTERNAL_H
#define TARN_FORMATS_PARQUET_INTERNAL_H

#include "parquet.h"

#define THRIFT_DEPTH_MAX 64

typedef struct thrift {
  const uint8_t *p;
  const uint8_t *end;
  int depth;
  bool bad;
  const char *why;     /* the first problem */
} thrift;

void formats__thrift_init(thrift *t, const uint8_t *p, size_t n);
void formats__thrift_fail(thrift *t, const char *why);
uint64_t formats__thrift_varint(thrift *t);
int64_t formats__thrift_zigzag(thrift *t);
/* A string/binary: pointer into the input and its length. */
const uint8_t *formats__thrift_binary(thrift *t, uint32_t *n);
/* The next field of a struct: false at its end (STOP). *last is the
 * previous field id (start with 0); *bval holds a boolean field's value. */
bool formats__thrift_field(thrift *t, int16_t *last, int16_t *id, int *type, bool *bval);
/* A list header: element type and count (count checked against bytes left). */
uint32_t formats__thrift_list(thrift *t, int *etype);
void formats__thrift_skip(thrift *t, int type);
/* Starts / ends a nested struct (depth limit). */
bool formats__thrift_enter(thrift *t);
void formats__thrift_leave(thrift *t);

/* Reads a value of a simple type given its field type (i8..i64 as ints). */
int64_t formats__thrift_int(thrift *t, int type);

#endif
