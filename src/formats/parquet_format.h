/* formats/parquet_format.h -- the numbers of the Parquet file format
 * (parquet.thrift) and of Thrift's compact protocol, shared by the Parquet
 * reader and writer so that neither spells them again.
 *
 * File layout: "PAR1", column chunks (pages), the footer (a FileMetaData
 * struct in the compact protocol), its length (4 bytes little-endian),
 * "PAR1". Field ids below are those of parquet.thrift.
 */
#ifndef TARN_FORMATS_PARQUET_FORMAT_H
#define TARN_FORMATS_PARQUET_FORMAT_H

#define PARQUET_MAGIC "PAR1"
#define PARQUET_MAGIC_LEN 4
#define PARQUET_FOOTER_TAIL 8  /* footer length (4) + magic (4) */

/* Thrift compact protocol: the type nibble of a field header or list. */
enum thrift_ctype {
  THRIFT_STOP = 0,
  THRIFT_TRUE = 1,     /* booleans live in the field header */
  THRIFT_FALSE = 2,
  THRIFT_I8 = 3,
  THRIFT_I16 = 4,
  THRIFT_I32 = 5,
  THRIFT_I64 = 6,
  THRIFT_DOUBLE = 7,
  THRIFT_BINARY = 8,
  THRIFT_LIST = 9,
  THRIFT_SET = 10,
  THRIFT_MAP = 11,
  THRIFT_STRUCT = 12,
};

/* Type: physical types. */
enum parquet_type {
  PQ_BOOLEAN = 0,
  PQ_INT32 = 1,
  PQ_INT64 = 2,
  PQ_INT96 = 3,        /* legacy timestamps: nanoseconds of day (8) + Julian day (4) */
  PQ_FLOAT = 4,
  PQ_DOUBLE = 5,
  PQ_BYTE_ARRAY = 6,
  PQ_FIXED_LEN_BYTE_ARRAY = 7,
};

/* ConvertedType: the legacy logical annotation. */
enum parquet_converted {
  PQ_CT_UTF8 = 0,
  PQ_CT_MAP = 1,
  PQ_CT_MAP_KEY_VALUE = 2,
  PQ_CT_LIST = 3,
  PQ_CT_ENUM = 4,
  PQ_CT_DECIMAL = 5,
  PQ_CT_DATE = 6,
  PQ_CT_TIME_MILLIS = 7,
  PQ_CT_TIME_MICROS = 8,
  PQ_CT_TIMESTAMP_MILLIS = 9,
  PQ_CT_TIMESTAMP_MICROS = 10,
  PQ_CT_UINT_8 = 11,
  PQ_CT_UINT_16 = 12,
  PQ_CT_UINT_32 = 13,
  PQ_CT_UINT_64 = 14,
  PQ_CT_INT_8 = 15,
  PQ_CT_INT_16 = 16,
  PQ_CT_INT_32 = 17,
  PQ_CT_INT_64 = 18,
  PQ_CT_JSON = 19,
  PQ_CT_BSON = 20,
  PQ_CT_INTERVAL = 21,
};

/* LogicalType: the union's field ids. */
enum parquet_logical {
  PQ_LT_STRING = 1,
  PQ_LT_MAP = 2,
  PQ_LT_LIST = 3,
  PQ_LT_ENUM = 4,
  PQ_LT_DECIMAL = 5,     /* struct: scale (1), precision (2) */
  PQ_LT_DATE = 6,
  PQ_LT_TIME = 7,        /* struct: isAdjustedToUTC (1), unit (2) */
  PQ_LT_TIMESTAMP = 8,   /* struct: isAdjustedToUTC (1), unit (2) */
  PQ_LT_INTEGER = 10,    /* struct: bitWidth (1), isSigned (2) */
  PQ_LT_UNKNOWN = 11,    /* always null */
  PQ_LT_JSON = 12,
  PQ_LT_BSON = 13,
  PQ_LT_UUID = 14,
  PQ_LT_FLOAT16 = 15,
};

/* TimeUnit: the union's field ids. */
enum parquet_time_unit {
  PQ_UNIT_MILLIS = 1,
  PQ_UNIT_MICROS = 2,
  PQ_UNIT_NANOS = 3,
};

/* FieldRepetitionType. */
enum parquet_repetition {
  PQ_REQUIRED = 0,
  PQ_OPTIONAL = 1,
  PQ_REPEATED = 2,
};

/* Encoding. */
enum parquet_encoding {
  PQ_ENC_PLAIN = 0,
  PQ_ENC_PLAIN_DICTIONARY = 2,
  PQ_ENC_RLE = 3,
  PQ_ENC_BIT_PACKED = 4,          /* deprecated, levels only */
  PQ_ENC_DELTA_BINARY_PACKED = 5,
  PQ_ENC_DELTA_LENGTH_BYTE_ARRAY = 6,
  PQ_ENC_DELTA_BYTE_ARRAY = 7,
  PQ_ENC_RLE_DICTIONARY = 8,
  PQ_ENC_BYTE_STREAM_SPLIT = 9,
};

/* CompressionCodec. */
enum parquet_codec {
  PQ_CODEC_UNCOMPRESSED = 0,
  PQ_CODEC_SNAPPY = 1,
  PQ_CODEC_GZIP = 2,
  PQ_CODEC_LZO = 3,
  PQ_CODEC_BROTLI = 4,
  PQ_CODEC_LZ4 = 5,               /* the old Hadoop-framed LZ4 */
  PQ_CODEC_ZSTD = 6,
  PQ_CODEC_LZ4_RAW = 7,
};

/* PageType. */
enum parquet_page_type {
  PQ_PAGE_DATA = 0,
  PQ_PAGE_INDEX = 1,
  PQ_PAGE_DICTIONARY = 2,
  PQ_PAGE_DATA_V2 = 3,
};

#endif
